// The man pages and bash completion written from the help tables (src/manual/): every page renders with
// groff without a warning and shows every flag its command's parser accepts; both completion scripts load
// in bash and complete a command, a flag and a flag's value.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';

import { documentedFlags } from '../../src/cli/help.js';
import { commands, globalFlags } from '../../src/cli/main.js';
import { globalDocs, verbDocs, type Verb } from '../../src/cli/manual.js';
import { singularityCompletion, tsrtCompletion } from '../../src/manual/completion.js';
import { manPages } from '../../src/manual/pages.js';
import * as singularity from '../../src/singularity/main.js';
import { tmpdir } from '../helpers.js';

const pages = manPages({ version: '0.0.0-test', date: '2026-01-02' });
const dir = tmpdir('tsrt-manual-');
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
for (const p of pages) fs.writeFileSync(path.join(dir, p.file), p.roff);

/** The page as a reader sees it: groff's text output without overstrike, and what groff warned about. */
function render(file: string): { text: string; warnings: string } {
  const r = spawnSync('/usr/bin/groff', ['-man', '-Tutf8', '-ww', '-rLL=200n', path.join(dir, file)], {
    env: { ...process.env, LC_ALL: 'C.UTF-8' },
  });
  // Overstrike (x\bx bold, _\bx underline) and hyphenation points come out as plain text.
  const text = r.stdout
    .toString()
    // biome-ignore lint/suspicious/noControlCharactersInRegex: groff's overstrike is a character, a backspace and a character
    .replace(/.\x08/g, '')
    .replace(/\u2010/g, '-')
    .replace(/\u2212/g, '-');
  return { text, warnings: r.stderr.toString() + (r.status === 0 ? '' : `groff exited ${r.status}`) };
}

t.test('one page per verb, tsrt(8) and tsrt-singularity(1)', async t => {
  t.same(pages.map(p => p.file).sort(), ['tsrt.8', 'tsrt-singularity.1', ...Object.keys(verbDocs).map(v => `tsrt-${v}.8`)].sort());
});

t.test('every page renders with groff -ww and no warning', async t => {
  for (const p of pages) {
    const r = render(p.file);
    t.equal(r.warnings, '', `${p.file}: no warnings`);
    t.match(r.text, /^NAME\n/m, `${p.file}: has a NAME section`);
  }
});

t.test('man -l reads every page', async t => {
  for (const p of pages) {
    const r = spawnSync('/usr/bin/man', ['-l', path.join(dir, p.file)], {
      env: { ...process.env, MANPAGER: 'cat', MANWIDTH: '120', LC_ALL: 'C.UTF-8' },
    });
    t.equal(r.status, 0, `man -l ${p.file} exits 0`);
    t.match(r.stdout.toString(), /SYNOPSIS/, `${p.file}: shown`);
  }
});

t.test('each verb page shows its usage, description and every flag the parser accepts', async t => {
  for (const verb of Object.keys(commands) as Verb[]) {
    const { text } = render(`tsrt-${verb}.8`);
    const flat = text.replace(/\s+/g, ' ');
    t.match(flat, `tsrt-${verb} - ${verbDocs[verb].summary}`, `${verb}: NAME line`);
    t.match(flat, `tsrt [global options] ${verb} ${verbDocs[verb].usage}`.trim().replace(/\s+/g, ' '), `${verb}: synopsis`);
    for (const f of documentedFlags(commands[verb].flags, verbDocs[verb].flags)) {
      for (const name of f.names) t.match(text, new RegExp(`(^ +|, )${name}( |,|$)`, 'm'), `${verb}: ${name}`);
      t.match(flat, f.text.replace(/\s+/g, ' '), `${verb}: --${f.spec.name}'s description`);
    }
    for (const e of verbDocs[verb].examples) t.match(text, e.command, `${verb}: example ${e.command}`);
  }
});

t.test('tsrt(8) lists every verb and every global flag', async t => {
  const { text } = render('tsrt.8');
  for (const verb of Object.keys(verbDocs)) t.match(text, new RegExp(`^ +${verb} \\(see tsrt-${verb}\\(8\\)\\)`, 'm'), verb);
  for (const f of documentedFlags(globalFlags, globalDocs))
    t.match(text, new RegExp(`^ +--${f.spec.name}( |,|$)`, 'm'), `--${f.spec.name}`);
});

t.test('tsrt-singularity(1) shows every command with its summary and usage, and the global flags', async t => {
  const { text } = render('tsrt-singularity.1');
  for (const [name, command] of Object.entries(singularity.commands)) {
    t.match(
      text,
      new RegExp(
        `^ +${name}\\n +${command.summary
          .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
          .split(' ')
          .join('\\s+')}`,
        'm',
      ),
      `${name}: heading and summary`,
    );
    t.match(text, singularity.usage(command).split('\n')[0]!, `${name}: first usage line`);
  }
  for (const o of singularity.globalOptions) t.match(text, new RegExp(`^ +--${o.long}( |,|$)`, 'm'), `--${o.long}`);
});

/** The words bash's completion function offers for a command line whose last word is being completed. */
function complete(script: string, fn: string, words: string[]): string[] {
  const file = path.join(dir, `${fn}.bash`);
  fs.writeFileSync(file, script);
  const quoted = words.map(w => `'${w}'`).join(' ');
  const r = spawnSync('/bin/bash', [
    '--norc',
    '--noprofile',
    '-c',
    `source '${file}' || exit 9; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; ${fn}; printf '%s\\n' "\${COMPREPLY[@]}"`,
  ]);
  if (r.status !== 0) throw new Error(`bash exited ${r.status}: ${r.stderr}`);
  return r.stdout.toString().split('\n').filter(Boolean).sort();
}

t.test("tsrt completion: verbs, flags, choices, and nothing of ours after exec's container id", async t => {
  const script = tsrtCompletion();
  t.equal(spawnSync('/bin/bash', ['-n', '-c', script]).status, 0, 'the script parses');
  t.same(complete(script, '_tsrt', ['tsrt', 'cr']), ['create'], 'a verb');
  t.same(complete(script, '_tsrt', ['tsrt', 'create', '--bu']), ['--bundle'], "a verb's flag");
  t.same(complete(script, '_tsrt', ['tsrt', '--root', '/x', 'list', '-f', '']), ['json', 'table'], "a flag's choices");
  t.same(complete(script, '_tsrt', ['tsrt', '--log-format', 'j']), ['json'], "a global flag's choices");
  t.same(complete(script, '_tsrt', ['tsrt', '--sys']), ['--systemd-cgroup'], 'a global flag');
  t.same(complete(script, '_tsrt', ['tsrt', 'help', 'up']), ['update'], 'help VERB');
  t.same(complete(script, '_tsrt', ['tsrt', 'exec', '-t', 'web', 'ls', '--']), [], "flags after exec's id are the command's");
  t.same(complete(script, '_tsrt', ['tsrt', 'exec', '--user', '0', '--']).includes('--cwd'), true, 'a flag value is skipped');
});

t.test('tsrt-singularity completion: commands, flags and subcommands, under both names', async t => {
  const script = singularityCompletion();
  t.equal(spawnSync('/bin/bash', ['-n', '-c', script]).status, 0, 'the script parses');
  t.same(complete(script, '_tsrt_singularity', ['singularity', 'bui']), ['build', 'buildcfg'], 'a command');
  t.same(complete(script, '_tsrt_singularity', ['tsrt-singularity', '-d', 'build', '--fa']), ['--fakeroot'], "a command's flag");
  t.same(complete(script, '_tsrt_singularity', ['singularity', 'exec', '--wri']), ['--writable-tmpfs'], 'an action flag');
  t.same(complete(script, '_tsrt_singularity', ['singularity', 'instance', 'st']), ['start', 'stop'], 'a subcommand');
  t.same(
    complete(script, '_tsrt_singularity', ['singularity', 'key', '']),
    ['export', 'import', 'list', 'newpair', 'remove'],
    'subcommands under <command>',
  );
  t.same(complete(script, '_tsrt_singularity', ['singularity', '-c', '/etc/x.conf', 'he']), ['help'], "a global flag's value is skipped");
  const r = spawnSync('/bin/bash', ['--norc', '-c', `${script}\ncomplete -p tsrt-singularity singularity`]);
  t.match(r.stdout.toString(), /-F _tsrt_singularity tsrt-singularity[\s\S]*-F _tsrt_singularity singularity/, 'registered for both names');
});
