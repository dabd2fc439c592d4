// `tsrt --help`, `tsrt <verb> --help` and `tsrt help <verb>`: help is asked for by a flag the verb's parser
// would take, so a --help that belongs to the container's command (exec, ps) is the command's.
import * as fs from 'node:fs';
import t from 'tap';

import { documentedFlags } from '../../src/cli/help.js';
import { commands, globalFlags } from '../../src/cli/main.js';
import { globalDocs, verbDocs, type Verb } from '../../src/cli/manual.js';
import { tmpdir, tsrt } from '../helpers.js';

t.test("exec: a --help after the container id is the command's argument, as in runc", async t => {
  const root = tmpdir('tsrt-help-');
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const r = tsrt(['exec', 'tsrt-help-nosuch', 'ls', '--help'], { root });
  t.equal(r.code, 255, 'exec went ahead and failed on the missing container');
  t.match(r.stderr, /exec failed: container does not exist/);
  t.equal(r.stdout, '', 'no help printed');
});

t.test('ps: a --help after the container id goes to ps', async t => {
  const root = tmpdir('tsrt-help-');
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const r = tsrt(['ps', 'tsrt-help-nosuch', '--help'], { root });
  t.equal(r.code, 1);
  t.match(r.stderr, /container does not exist/);
  t.equal(r.stdout, '', 'no help printed');
});

t.test('the manual documents exactly the flags each parser accepts', async t => {
  for (const verb of Object.keys(commands) as Verb[]) {
    const accepted = commands[verb].flags.map(f => f.name).sort();
    t.same(Object.keys(verbDocs[verb].flags).sort(), accepted, `${verb}: documented = accepted`);
    for (const f of documentedFlags(commands[verb].flags, verbDocs[verb].flags)) {
      t.ok(f.text, `${verb} --${f.spec.name} has a description`);
      t.equal(f.arg === undefined, f.spec.kind === 'bool', `${verb} --${f.spec.name}: a value name exactly when it takes a value`);
    }
  }
  t.same(Object.keys(globalDocs).sort(), globalFlags.map(f => f.name).sort(), 'global flags: documented = accepted');
  t.same(Object.keys(verbDocs).sort(), Object.keys(commands).sort(), 'every verb has a manual entry and every entry a verb');
});

t.test('tsrt <verb> --help and tsrt help <verb> show the usage and every flag', async t => {
  for (const verb of Object.keys(commands) as Verb[]) {
    const byFlag = tsrt([verb, '--help']);
    t.equal(byFlag.code, 0, `${verb} --help exits 0`);
    t.equal(tsrt(['help', verb]).stdout, byFlag.stdout, `help ${verb} prints the same`);
    t.equal(tsrt([verb, '-h']).stdout, byFlag.stdout, `${verb} -h prints the same`);
    t.match(byFlag.stdout, `USAGE:\n   tsrt ${verb}`, `${verb}: the usage line`);
    t.match(byFlag.stdout, verbDocs[verb].summary, `${verb}: the summary`);
    for (const f of documentedFlags(commands[verb].flags, verbDocs[verb].flags)) {
      for (const name of f.names) t.match(byFlag.stdout, new RegExp(`(^|[ ,])${name}( |,|$)`, 'm'), `${verb}: ${name} shown`);
      t.match(byFlag.stdout, f.text, `${verb}: --${f.spec.name}'s description shown`);
    }
  }
});

t.test('tsrt --help lists every verb and every global flag', async t => {
  const r = tsrt(['--help']);
  t.equal(r.code, 0);
  for (const verb of Object.keys(commands)) t.match(r.stdout, new RegExp(`^   ${verb} +\\S`, 'm'), `${verb} listed`);
  for (const f of globalFlags) t.match(r.stdout, new RegExp(`(^|[ ,])--${f.name}( |,|$)`, 'm'), `--${f.name} listed`);
  t.equal(tsrt(['help']).stdout, r.stdout, 'tsrt help prints the same');
  const unknown = tsrt(['help', 'nosuch']);
  t.equal(unknown.code, 1, 'help for an unknown verb is a usage error');
  t.match(unknown.stderr, /No help topic for 'nosuch'/);
});
