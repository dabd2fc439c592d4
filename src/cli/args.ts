// runc's flag grammar (urfave/cli v1): --flag value, --flag=value, -flag value, short -b value, booleans with
// optional =true/=false, flags may follow positional arguments unless the command stops at its first one
// (exec), and "--" ends the flags.
import { RuntimeError } from '../errors.js';

/** 'strings' and 'ints' may repeat (urfave's StringSlice and Int64Slice): every occurrence is kept, in order. */
export type FlagKind = 'bool' | 'string' | 'int' | 'strings' | 'ints';

export interface FlagSpec {
  name: string;
  short?: string;
  kind: FlagKind;
  aliases?: string[];
}

export type FlagValues = Record<string, string | boolean | number | string[] | number[] | undefined>;

export interface Parsed {
  flags: FlagValues;
  positional: string[];
}

export function usageError(message: string): RuntimeError {
  return new RuntimeError(message, { op: 'usage' });
}

export function parseArgs(argv: string[], specs: FlagSpec[], stopAtPositional = false): Parsed {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(s.name, s);
    if (s.short) byName.set(s.short, s);
    for (const a of s.aliases ?? []) byName.set(a, s);
  }
  const flags: FlagValues = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (stopAtPositional && positional.length > 0) {
      positional.push(...argv.slice(i));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const spec = byName.get(name);
    if (!spec) throw usageError(`flag provided but not defined: -${name}`);
    let value: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    if (spec.kind === 'bool') {
      if (value === undefined) flags[spec.name] = true;
      else if (/^(true|1|t)$/i.test(value)) flags[spec.name] = true;
      else if (/^(false|0|f)$/i.test(value)) flags[spec.name] = false;
      else throw usageError(`invalid boolean value "${value}" for -${name}`);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw usageError(`flag needs an argument: -${name}`);
      value = argv[++i]!;
    }
    if (spec.kind === 'int' || spec.kind === 'ints') {
      if (!/^-?\d+$/.test(value)) throw usageError(`invalid value "${value}" for flag -${name}: parse error`);
      if (spec.kind === 'int') flags[spec.name] = Number(value);
      else flags[spec.name] = [...((flags[spec.name] as number[] | undefined) ?? []), Number(value)];
    } else if (spec.kind === 'strings') {
      flags[spec.name] = [...((flags[spec.name] as string[] | undefined) ?? []), value];
    } else {
      flags[spec.name] = value;
    }
  }
  return { flags, positional };
}

export function exactlyOne(cmd: string, positional: string[]): string {
  if (positional.length !== 1) throw usageError(`"${cmd}" requires exactly 1 argument(s)`);
  return positional[0]!;
}
