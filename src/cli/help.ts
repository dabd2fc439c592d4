// `tsrt --help`, `tsrt help <verb>` and `tsrt <verb> --help`, laid out as runc's (urfave/cli) help is, from
// the parsers' flag definitions and the words of manual.ts.
import { parseArgs, type FlagSpec } from './args.js';
import type { Command } from './context.js';
import { globalDocs, programDoc, verbDocs, type FlagDoc, type Verb } from './manual.js';

/** A flag as help shows it: the parser's names, the manual's words (text is empty when the manual lacks it). */
export interface DocumentedFlag extends FlagDoc {
  spec: FlagSpec;
  /** --name first, then the short and alias forms, each with its dashes. */
  names: string[];
}

export function documentedFlags(specs: FlagSpec[], docs: Record<string, FlagDoc>): DocumentedFlag[] {
  return specs.map(spec => {
    const doc = docs[spec.name] ?? { text: '' };
    const others = [...(spec.short ? [spec.short] : []), ...(spec.aliases ?? [])];
    return { ...doc, spec, names: [`--${spec.name}`, ...others.map(n => (n.length === 1 ? `-${n}` : `--${n}`))] };
  });
}

const HELP_FLAG: FlagSpec = { name: 'help', short: 'h', kind: 'bool' };

/** Help is asked for when the verb's own parser would read a --help or -h flag (never one after exec's id). */
export function asksForHelp(command: Command, argv: string[]): boolean {
  try {
    return parseArgs(argv, [...command.flags, HELP_FLAG], command.stopAtPositional).flags['help'] === true;
  } catch {
    return false; // the verb reports the bad command line itself
  }
}

function flagLines(flags: DocumentedFlag[]): string {
  const heads = flags.map(f => f.names.map(n => (f.arg ? `${n} ${f.arg}` : n)).join(', '));
  const width = Math.max(0, ...heads.map(h => h.length)) + 2;
  return flags.map((f, i) => `   ${heads[i]!.padEnd(width)}${f.text}`.trimEnd()).join('\n');
}

/** Paragraphs wrapped at 100 columns, indented by three spaces as urfave/cli indents. */
function indent(text: string): string {
  return text
    .split('\n')
    .map(paragraph => {
      const lines: string[] = [];
      let line = '';
      for (const word of paragraph.split(' ').filter(Boolean)) {
        if (line && line.length + 1 + word.length > 97) {
          lines.push(`   ${line}`);
          line = word;
        } else {
          line = line ? `${line} ${word}` : word;
        }
      }
      if (line) lines.push(`   ${line}`);
      return lines.join('\n');
    })
    .join('\n');
}

export function verbHelp(verb: Verb, command: Command): string {
  const doc = verbDocs[verb];
  const usage = `tsrt ${verb}${doc.usage ? ` ${doc.usage}` : ''}`;
  let text = `NAME:\n   tsrt ${verb} - ${doc.summary}\n\nUSAGE:\n   ${usage}\n\nDESCRIPTION:\n${indent(doc.description)}\n`;
  if (command.flags.length) text += `\nOPTIONS:\n${flagLines(documentedFlags(command.flags, doc.flags))}\n`;
  return text;
}

export function programHelp(version: string, commands: Record<Verb, Command>, globalFlags: FlagSpec[]): string {
  const width = Math.max(...Object.keys(commands).map(v => v.length)) + 2;
  const verbs = (Object.keys(commands) as Verb[]).map(v => `   ${v.padEnd(width)}${verbDocs[v].summary}`).join('\n');
  return (
    `NAME:\n   tsrt - ${programDoc.summary}\n\nUSAGE:\n   tsrt [global options] command [command options] [arguments...]\n\n` +
    `VERSION:\n   ${version}\n\nCOMMANDS:\n${verbs}\n   ${'help'.padEnd(width)}show the commands, or one command's help\n\n` +
    `GLOBAL OPTIONS:\n${flagLines(documentedFlags(globalFlags, globalDocs))}\n`
  );
}
