// Singularity definition files: a header of `Key: value` lines and `%section` blocks, possibly several such
// blocks (stages, each opened by `Bootstrap:`), with {{ NAME }} build-argument templating. Every error names the
// line it is about, counted from 1 in the file as written.
import { RuntimeError } from '../../errors.js';

export class DefFileError extends RuntimeError {
  constructor(
    readonly line: number,
    message: string,
    readonly file = 'definition file',
  ) {
    super(`${file} line ${line}: ${message}`, { op: 'definition file', path: file });
  }
}

/** Header keys Singularity accepts (compared case-insensitively); `OtherURLn` is matched by prefix. */
const HEADER_KEYS = [
  'bootstrap',
  'from',
  'stage',
  'osversion',
  'mirrorurl',
  'updateurl',
  'include',
  'includecmd',
  'library',
  'registry',
  'namespace',
  'fingerprints',
  'setopt',
  'product',
  'user',
  'regcode',
  'productpgp',
  'registerurl',
  'modules',
];

const SECTIONS = ['setup', 'files', 'post', 'environment', 'runscript', 'startscript', 'test', 'labels', 'help', 'arguments', 'pre'];
/** App sections take the app name as their argument. */
const APP_SECTIONS = ['appinstall', 'apprun', 'appenv', 'applabels', 'apphelp', 'appfiles', 'apptest', 'appstart'];

export interface HeaderValue {
  value: string;
  line: number;
}

export interface Section {
  name: string;
  /** Text after the section name on its line (`-c /bin/bash`, `from stage1`, an app name). */
  args: string;
  body: string;
  /** Line of the `%name` header. */
  line: number;
}

export interface Stage {
  /** Lower-cased header keys. */
  header: Map<string, HeaderValue>;
  sections: Section[];
  /** The `Stage:` name, when given. */
  name?: string;
  bootstrap: HeaderValue;
  /** Line where the stage starts. */
  line: number;
}

export interface DefFile {
  stages: Stage[];
  /** The text as given (what /.singularity.d/Singularity and the SIF deffile object record). */
  raw: string;
}

const SECTION_LINE = /^%([A-Za-z]+)(?:\s+(.*?))?\s*$/;
const TEMPLATE = /\{\{\s*([^}\s]*)\s*\}\}/g;

/** `NAME=default` lines of every %arguments section. */
function argumentDefaults(lines: string[]): Map<string, string> {
  const defaults = new Map<string, string>();
  let inArguments = false;
  lines.forEach((line, i) => {
    const m = SECTION_LINE.exec(line);
    if (m) {
      inArguments = m[1]!.toLowerCase() === 'arguments';
      return;
    }
    if (!inArguments) return;
    const text = line.trim();
    if (text === '' || text.startsWith('#')) return;
    const eq = text.indexOf('=');
    if (eq <= 0) throw new DefFileError(i + 1, `%arguments entry ${JSON.stringify(text)} is not NAME=value`);
    defaults.set(
      text.slice(0, eq).trim(),
      text
        .slice(eq + 1)
        .trim()
        .replace(/^"(.*)"$/, '$1'),
    );
  });
  return defaults;
}

export interface ParseOptions {
  buildArgs?: Map<string, string>;
  /** Told about --build-arg names the file never uses. */
  warn?: (message: string) => void;
}

/** Parses and templates a definition file; throws DefFileError naming the line of anything invalid. */
export function parseDefFile(text: string, opts: ParseOptions = {}): DefFile {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const defaults = argumentDefaults(lines);
  const buildArgs = opts.buildArgs ?? new Map<string, string>();
  const used = new Set<string>();
  const templated = lines.map((line, i) =>
    line.replace(TEMPLATE, (_all, name: string) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        throw new DefFileError(i + 1, `invalid build argument name ${JSON.stringify(name)} in {{ }}`);
      used.add(name);
      const value = buildArgs.get(name) ?? defaults.get(name);
      if (value === undefined) {
        throw new DefFileError(i + 1, `build argument ${JSON.stringify(name)} is not defined through --build-arg or an %arguments default`);
      }
      return value;
    }),
  );
  for (const name of buildArgs.keys()) {
    if (!used.has(name)) opts.warn?.(`build argument ${JSON.stringify(name)} is not used by the definition file`);
  }

  const stages: Stage[] = [];
  let stage: { header: Map<string, HeaderValue>; sections: Section[]; line: number } | undefined;
  let section: { name: string; args: string; line: number; body: string[] } | undefined;
  const closeSection = () => {
    if (section && stage) {
      // Trailing blank lines belong to the gap before the next section, not to the script.
      while (section.body.length && section.body[section.body.length - 1]!.trim() === '') section.body.pop();
      stage.sections.push({ name: section.name, args: section.args, line: section.line, body: section.body.join('\n') });
    }
    section = undefined;
  };
  const closeStage = () => {
    closeSection();
    if (!stage) return;
    const bootstrap = stage.header.get('bootstrap');
    if (!bootstrap) throw new DefFileError(stage.line, 'the header has no Bootstrap: key');
    stages.push({ header: stage.header, sections: stage.sections, bootstrap, line: stage.line, name: stage.header.get('stage')?.value });
    stage = undefined;
  };

  templated.forEach((line, i) => {
    const lineNo = i + 1;
    const header = /^\s*([A-Za-z][A-Za-z0-9]*)\s*:\s*(.*?)\s*$/.exec(line);
    // A Bootstrap line after a stage's sections (or a second one in a header) opens the next stage.
    if (header && header[1]!.toLowerCase() === 'bootstrap' && (section || stage?.header.has('bootstrap'))) closeStage();
    const sectionLine = SECTION_LINE.exec(line);
    if (sectionLine) {
      const name = sectionLine[1]!.toLowerCase();
      if (!SECTIONS.includes(name) && !APP_SECTIONS.includes(name)) {
        throw new DefFileError(lineNo, `unknown section %${sectionLine[1]}`);
      }
      if (!stage) throw new DefFileError(lineNo, `section %${name} comes before any header (a Bootstrap: line is needed first)`);
      closeSection();
      const args = sectionLine[2] ?? '';
      if (APP_SECTIONS.includes(name) && !/^[A-Za-z0-9_.-]+$/.test(args)) {
        throw new DefFileError(lineNo, `%${name} needs one app name (letters, digits, '.', '_', '-'), got ${JSON.stringify(args)}`);
      }
      section = { name, args, line: lineNo, body: [] };
      return;
    }
    if (section) {
      section.body.push(line);
      return;
    }
    const text = line.trim();
    if (text === '' || text.startsWith('#')) return;
    if (!header) throw new DefFileError(lineNo, `expected a "Key: value" header line or a %section, got ${JSON.stringify(text)}`);
    const key = header[1]!.toLowerCase();
    if (!HEADER_KEYS.includes(key) && !/^otherurl\d+$/.test(key))
      throw new DefFileError(lineNo, `unknown header key ${JSON.stringify(header[1])}`);
    if (!stage) stage = { header: new Map(), sections: [], line: lineNo };
    if (header[2] === '') throw new DefFileError(lineNo, `header key ${header[1]} has no value`);
    stage.header.set(key, { value: header[2]!, line: lineNo });
  });
  closeStage();
  if (stages.length === 0) throw new DefFileError(1, 'no Bootstrap: header found');
  const names = new Map<string, number>();
  for (const s of stages) {
    if (s.name === undefined) continue;
    if (names.has(s.name))
      throw new DefFileError(
        s.header.get('stage')!.line,
        `stage name ${JSON.stringify(s.name)} is used twice (first on line ${names.get(s.name)})`,
      );
    names.set(s.name, s.header.get('stage')!.line);
  }
  return { stages, raw: text };
}

/** The bodies of a stage's sections of one name, joined in file order (Singularity appends repeats). */
export function sectionText(stage: Stage, name: string, args?: string): string | undefined {
  const parts = stage.sections.filter(s => s.name === name && (args === undefined || s.args === args));
  return parts.length ? parts.map(s => s.body).join('\n') : undefined;
}

/** The names of the stage's SCIF apps, in order of first appearance. */
export function appNames(stage: Stage): string[] {
  return [...new Set(stage.sections.filter(s => s.name.startsWith('app')).map(s => s.args))];
}

/**
 * %labels / %applabels lines: `KEY value` (the value may be quoted); `#` lines are comments. A key alone is a
 * label with an empty value, as Singularity and Apptainer record it.
 */
export function parseLabels(sections: Section[]): Map<string, string> {
  const labels = new Map<string, string>();
  for (const section of sections) {
    for (const raw of section.body.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const m = /^(\S+)(?:\s+(.*))?$/.exec(line)!;
      labels.set(m[1]!, (m[2] ?? '').replace(/^"(.*)"$/, '$1'));
    }
  }
  return labels;
}

/** %files lines: `src [dest]` (quotes keep spaces together); a missing dest means the same path as src. */
export function parseFiles(section: Section): { src: string; dest: string; line: number }[] {
  const entries: { src: string; dest: string; line: number }[] = [];
  section.body.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const words = [...line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map(m => m[1] ?? m[2] ?? m[3]!);
    if (words.length > 2)
      throw new DefFileError(section.line + 1 + i, `a %files line is "source [destination]", got ${words.length} words`);
    entries.push({ src: words[0]!, dest: words[1] ?? words[0]!, line: section.line + 1 + i });
  });
  return entries;
}
