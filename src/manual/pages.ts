// The man pages tsrt(8), tsrt-<verb>(8) and tsrt-singularity(1), written from the tables --help reads:
// src/cli/manual.ts with the verbs' own flag definitions, and tsrt-singularity's command table.
import { documentedFlags, type DocumentedFlag } from '../cli/help.js';
import { commands, globalFlags } from '../cli/main.js';
import { globalDocs, programDoc, verbDocs, type Verb } from '../cli/manual.js';
import * as singularity from '../singularity/main.js';
import { bold, bullet, example, italic, paragraphs, reference, section, tagged, text, title } from './roff.js';

export interface ManPage {
  /** The file name: NAME.SECTION. */
  file: string;
  section: 1 | 8;
  roff: string;
}

export interface Edition {
  version: string;
  /** The date in the title line (YYYY-MM-DD), given by the build so that pages are reproducible. */
  date: string;
}

const verbs = Object.keys(verbDocs) as Verb[];

function flagTag(f: DocumentedFlag): string {
  return f.names.map(n => (f.arg ? `${bold(n)} ${italic(f.arg)}` : bold(n))).join(', ');
}

function options(flags: DocumentedFlag[]): string {
  return flags.map(f => tagged(flagTag(f), f.text)).join('\n');
}

function page(name: string, sectionNumber: 1 | 8, edition: Edition, body: string[]): ManPage {
  const head = [
    `.\\" Generated from the help tables of tsrt ${edition.version}; edit the tables, not this file.`,
    title(name, sectionNumber, edition.date, `tsrt ${edition.version}`),
  ];
  return { file: `${name}.${sectionNumber}`, section: sectionNumber, roff: `${[...head, ...body].join('\n')}\n` };
}

function verbPage(verb: Verb, edition: Edition): ManPage {
  const doc = verbDocs[verb];
  const flags = documentedFlags(commands[verb].flags, doc.flags);
  const body = [
    section('name'),
    `${text(`tsrt-${verb}`)} \\- ${text(doc.summary)}`,
    section('synopsis'),
    `${bold('tsrt')} [${italic('global options')}] ${bold(verb)} ${text(doc.usage)}`.trimEnd(),
    section('description'),
    paragraphs(doc.description),
  ];
  if (flags.length) body.push(section('options'), options(flags));
  body.push(section('exit status'), ...doc.exitStatus.map(bullet));
  body.push(
    section('examples'),
    ...doc.examples.flatMap(e => [`.PP\n${text(`${e.text[0]!.toUpperCase()}${e.text.slice(1)}:`)}`, example(e.command)]),
  );
  body.push(section('see also'), `${reference('tsrt', 8, ',')}\n${reference('tsrt-singularity', 1)}`);
  return page(`tsrt-${verb}`, 8, edition, body);
}

function programPage(edition: Edition): ManPage {
  const body = [
    section('name'),
    `tsrt \\- ${text(programDoc.summary)}`,
    section('synopsis'),
    `${bold('tsrt')} [${italic('global options')}] ${italic('command')} [${italic('command options')}] [${italic('arguments')}...]`,
    section('description'),
    paragraphs(programDoc.description),
    '.PP',
    `${text('Each command has its own page, tsrt-COMMAND(8), and answers')} ${bold('tsrt')} ${italic('command')} ${bold('--help')}.`,
    section('global options'),
    options(documentedFlags(globalFlags, globalDocs)),
    section('commands'),
    ...verbs.map(v => tagged(`${bold(v)} (see tsrt\\-${text(v)}(8))`, verbDocs[v].summary)),
    tagged(`${bold('help')} [${italic('command')}]`, "show the commands, or one command's help"),
    section('exit status'),
    ...programDoc.exitStatus.map(bullet),
    section('environment'),
    tagged(bold('XDG_RUNTIME_DIR'), "where an unprivileged user's state directory is made (XDG_RUNTIME_DIR/tsrt) when --root is not given"),
    section('files'),
    tagged(italic('/run/tsrt'), 'the state directory of containers created by root, one directory per container id'),
    section('see also'),
    [...verbs.map(v => reference(`tsrt-${v}`, 8, ',')), reference('tsrt-singularity', 1)].join('\n'),
  ];
  return page('tsrt', 8, edition, body);
}

function singularityPage(edition: Edition): ManPage {
  const names = Object.keys(singularity.commands).sort();
  const global = singularity.globalOptions.map(o => {
    const forms = [`--${o.long}`, ...(o.short ? [`-${o.short}`] : [])];
    return tagged(forms.map(n => (o.arg ? `${bold(n)} ${italic(o.arg)}` : bold(n))).join(', '), o.text);
  });
  const body = [
    section('name'),
    `tsrt\\-singularity \\- ${text(singularity.programDoc.summary)}`,
    section('synopsis'),
    `${bold('tsrt-singularity')} [${italic('global options')}] ${italic('command')} [${italic('options')}] [${italic('arguments')}...]`,
    section('description'),
    paragraphs(singularity.programDoc.description),
    '.PP',
    `${text('Every command answers')} ${bold('tsrt-singularity help')} ${italic('command')} ${text('and')} ${italic('command')} ${bold('--help')} ${text('with what this page shows of it.')}`,
    section('global options'),
    ...global,
    section('commands'),
    ...names.flatMap(n => {
      const c = singularity.commands[n]!;
      // Help indents the usage's later lines under "Usage:\n  "; the page sets the whole block apart instead.
      const usage = singularity
        .usage(c)
        .split('\n')
        .map((l, i) => (i > 0 && l.startsWith('  ') ? l.slice(2) : l))
        .join('\n');
      return [`.SS ${text(n)}`, text(c.summary), example(usage)];
    }),
    section('exit status'),
    ...singularity.programDoc.exitStatus.map(bullet),
    section('see also'),
    reference('tsrt', 8),
  ];
  return page('tsrt-singularity', 1, edition, body);
}

export function manPages(edition: Edition): ManPage[] {
  return [programPage(edition), ...verbs.map(v => verbPage(v, edition)), singularityPage(edition)];
}
