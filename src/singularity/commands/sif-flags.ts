// Flag parsing shared by the sif, sign and verify commands: GNU-style long flags (--name value, --name=value),
// single-dash short aliases, booleans, and repeatable flags, with pflag's error wording.

import { UsageError } from '../command.js';

export interface FlagSpec {
  short?: string;
  boolean?: boolean;
}

export { UsageError };

export interface ParsedFlags {
  /** Values per long name, in command-line order (booleans hold "true"). */
  values: Map<string, string[]>;
  args: string[];
}

export function parseFlags(argv: string[], spec: Record<string, FlagSpec>): ParsedFlags {
  const byShort = new Map(
    Object.entries(spec)
      .filter(([, s]) => s.short)
      .map(([name, s]) => [s.short!, name]),
  );
  const values = new Map<string, string[]>();
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      args.push(a);
      continue;
    }
    const long = /^--([^=]+)(?:=(.*))?$/.exec(a);
    const short = long ? undefined : /^-([^-=])(?:=?(.+))?$/.exec(a);
    const name = long ? long[1]! : short ? byShort.get(short[1]!) : undefined;
    if (name === undefined || !spec[name]) throw new UsageError(`unknown flag: ${a}`);
    let value = long ? long[2] : short![2];
    if (spec[name].boolean) value ??= 'true';
    else value ??= argv[++i];
    if (value === undefined) throw new UsageError(`flag needs an argument: ${a}`);
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  return { values, args };
}

/** The last value of an integer flag, or undefined when absent. */
export function intFlag(flags: ParsedFlags, name: string): number | undefined {
  const v = flags.values.get(name)?.at(-1);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new UsageError(`invalid argument "${v}" for "--${name}" flag`);
  return Number(v);
}

export function stringFlag(flags: ParsedFlags, name: string): string | undefined {
  return flags.values.get(name)?.at(-1);
}

export function boolFlag(flags: ParsedFlags, name: string): boolean {
  const v = flags.values.get(name)?.at(-1);
  return v !== undefined && v !== 'false';
}

/** All values of a repeatable integer flag (comma lists allowed, as pflag's uintSlice). */
export function intListFlag(flags: ParsedFlags, name: string): number[] {
  return (flags.values.get(name) ?? [])
    .flatMap(v => v.split(','))
    .map(v => {
      if (!/^\d+$/.test(v)) throw new UsageError(`invalid argument "${v}" for "--${name}" flag`);
      return Number(v);
    });
}

/** Runs a command body; a UsageError goes up to main.ts, which reports it with the command's usage. */
export function withUsage(_usage: string, body: () => number): number {
  return body();
}
