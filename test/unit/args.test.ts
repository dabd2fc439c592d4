// The runc command-line dialect: flag parsing (urfave/cli v1 and Go's flag package), signal names as `kill`
// takes them, and container ids. Engines drive tsrt with runc's exact argument forms and match runc's error
// texts, so both are pinned here.
import t from 'tap';

import { RuntimeError } from '../../src/errors.js';
import { parseArgs, type FlagSpec } from '../../src/cli/args.js';
import { parseSignal, signalText } from '../../src/runtime/signals.js';
import { validateId } from '../../src/runtime/state.js';
import { errorOf } from '../helpers.js';

const specs: FlagSpec[] = [
  { name: 'bundle', short: 'b', kind: 'string' },
  { name: 'console-socket', kind: 'string' },
  { name: 'detach', short: 'd', kind: 'bool' },
  { name: 'preserve-fds', kind: 'int' },
  { name: 'tty', short: 't', kind: 'bool' },
  { name: 'env', short: 'e', kind: 'string', aliases: ['environment'] },
];

t.test('parseArgs', async t => {
  t.test('--flag value', async t => {
    t.same(parseArgs(['--bundle', '/b', 'id'], specs), { flags: { bundle: '/b' }, positional: ['id'] });
  });
  t.test('--flag=value', async t => {
    t.same(parseArgs(['--bundle=/b', 'id'], specs), { flags: { bundle: '/b' }, positional: ['id'] });
    t.same(parseArgs(['--bundle=a=b'], specs).flags, { bundle: 'a=b' }, 'only the first = splits');
    t.same(parseArgs(['--bundle='], specs).flags, { bundle: '' }, 'an empty value');
  });
  t.test('-flag value (single dash, long name, as Go accepts)', async t => {
    t.same(parseArgs(['-bundle', '/b', 'id'], specs), { flags: { bundle: '/b' }, positional: ['id'] });
    t.same(parseArgs(['-console-socket=/s', 'id'], specs).flags, { 'console-socket': '/s' });
  });
  t.test('short -b value', async t => {
    t.same(parseArgs(['-b', '/b', 'id'], specs), { flags: { bundle: '/b' }, positional: ['id'] });
    t.same(parseArgs(['-b=/b'], specs).flags, { bundle: '/b' });
  });
  t.test('aliases', async t => {
    t.same(parseArgs(['--environment', 'A=1'], specs).flags, { env: 'A=1' });
  });
  t.test('bool --detach', async t => {
    t.same(parseArgs(['--detach', 'id'], specs), { flags: { detach: true }, positional: ['id'] }, 'a bool takes no value');
    t.same(parseArgs(['-d', 'id'], specs), { flags: { detach: true }, positional: ['id'] });
  });
  t.test('bool --detach=false / =true', async t => {
    t.same(parseArgs(['--detach=false', 'id'], specs), { flags: { detach: false }, positional: ['id'] });
    t.same(parseArgs(['--detach=true'], specs).flags, { detach: true });
    t.same(parseArgs(['--detach=0'], specs).flags, { detach: false });
    t.same(parseArgs(['--detach=1'], specs).flags, { detach: true });
    t.same(parseArgs(['--detach=F'], specs).flags, { detach: false });
    t.equal(
      errorOf(t, () => parseArgs(['--detach=maybe'], specs)),
      'invalid boolean value "maybe" for -detach',
    );
  });
  t.test('int flags', async t => {
    t.same(parseArgs(['--preserve-fds', '3'], specs).flags, { 'preserve-fds': 3 });
    t.same(parseArgs(['--preserve-fds=0'], specs).flags, { 'preserve-fds': 0 });
    t.equal(typeof parseArgs(['--preserve-fds', '3'], specs).flags['preserve-fds'], 'number');
  });
  t.test('flags after positionals (urfave/cli reorders)', async t => {
    t.same(parseArgs(['id', '--bundle', '/b', '-d'], specs), { flags: { bundle: '/b', detach: true }, positional: ['id'] });
    t.same(parseArgs(['a', '-b', '/b', 'c'], specs), { flags: { bundle: '/b' }, positional: ['a', 'c'] });
  });
  t.test('-- ends the flags', async t => {
    t.same(parseArgs(['-d', '--', 'id', '--bundle', '/b', '-x'], specs), {
      flags: { detach: true },
      positional: ['id', '--bundle', '/b', '-x'],
    });
    t.same(parseArgs(['--'], specs), { flags: {}, positional: [] });
  });
  t.test('a lone "-" is a positional', async t => {
    t.same(parseArgs(['-', 'id'], specs), { flags: {}, positional: ['-', 'id'] });
  });
  t.test('stopAtPositional (exec): everything after the first positional is the command', async t => {
    t.same(parseArgs(['-t', 'id', 'sh', '-c', '--bundle', '-x'], specs, true), {
      flags: { tty: true },
      positional: ['id', 'sh', '-c', '--bundle', '-x'],
    });
    t.same(parseArgs(['--env', 'A=1', 'id', '--env', 'B=2'], specs, true), { flags: { env: 'A=1' }, positional: ['id', '--env', 'B=2'] });
  });
  t.test('repeatable flags (StringSlice, Int64Slice) keep every occurrence in order', async t => {
    const repeatable: FlagSpec[] = [
      { name: 'env', short: 'e', kind: 'strings' },
      { name: 'additional-gids', short: 'g', kind: 'ints' },
    ];
    t.same(parseArgs(['-e', 'A=1', '--env=B=2', '-g', '5', '--additional-gids', '7', 'id'], repeatable), {
      flags: { env: ['A=1', 'B=2'], 'additional-gids': [5, 7] },
      positional: ['id'],
    });
    t.match(
      errorOf(t, () => parseArgs(['-g', 'x'], repeatable)),
      /invalid value "x" for flag -g/,
    );
  });
  t.test('the last occurrence of a flag wins', async t => {
    t.same(parseArgs(['-b', '/one', '--bundle=/two'], specs).flags, { bundle: '/two' });
  });
  t.test('unknown flag', async t => {
    t.equal(
      errorOf(t, () => parseArgs(['-x'], specs)),
      'flag provided but not defined: -x',
    );
    t.equal(
      errorOf(t, () => parseArgs(['--nope=1', 'id'], specs)),
      'flag provided but not defined: -nope',
    );
    t.equal(
      errorOf(t, () => parseArgs(['id', '--nope'], specs)),
      'flag provided but not defined: -nope',
      'after a positional too',
    );
  });
  t.test('missing value', async t => {
    t.equal(
      errorOf(t, () => parseArgs(['id', '--bundle'], specs)),
      'flag needs an argument: -bundle',
    );
    t.equal(
      errorOf(t, () => parseArgs(['-b'], specs)),
      'flag needs an argument: -b',
    );
  });
  t.test('int parse error', async t => {
    t.equal(
      errorOf(t, () => parseArgs(['--preserve-fds', 'abc'], specs)),
      'invalid value "abc" for flag -preserve-fds: parse error',
    );
    t.equal(
      errorOf(t, () => parseArgs(['--preserve-fds=1.5'], specs)),
      'invalid value "1.5" for flag -preserve-fds: parse error',
    );
    t.equal(
      errorOf(t, () => parseArgs(['--preserve-fds='], specs)),
      'invalid value "" for flag -preserve-fds: parse error',
    );
  });
  t.test('errors are usage errors', async t => {
    try {
      parseArgs(['-x'], specs);
    } catch (e) {
      t.equal((e as RuntimeError).op, 'usage');
    }
  });
});

t.test('parseSignal', async t => {
  t.equal(parseSignal('KILL'), 9);
  t.equal(parseSignal('SIGKILL'), 9);
  t.equal(parseSignal('sigkill'), 9);
  t.equal(parseSignal('kill'), 9);
  t.equal(parseSignal('9'), 9);
  t.equal(parseSignal('TERM'), 15);
  t.equal(parseSignal('SIGTERM'), 15);
  t.equal(parseSignal('1'), 1);
  t.equal(parseSignal('HUP'), 1);
  t.equal(parseSignal('SIGUSR1'), 10);
  t.equal(parseSignal('WINCH'), 28);
  t.equal(parseSignal('SIGRTMIN'), 34);
  t.equal(parseSignal('SIGRTMIN+3'), 37);
  t.equal(parseSignal('rtmin+3'), 37);
  t.equal(parseSignal('SIGRTMAX'), 64);
  t.equal(parseSignal('SIGRTMAX-2'), 62);
  t.equal(parseSignal('64'), 64);
  t.equal(
    errorOf(t, () => parseSignal('bogus')),
    'unknown signal "bogus"',
  );
  t.equal(parseSignal('0'), 0, 'signal 0: the existence check runc accepts');
  t.equal(
    errorOf(t, () => parseSignal('65')),
    'unknown signal "65"',
  );
  t.equal(
    errorOf(t, () => parseSignal('SIGRTMIN+31')),
    'unknown signal "SIGRTMIN+31"',
    'past SIGRTMAX',
  );
  t.equal(
    errorOf(t, () => parseSignal('SIGRTMAX-31')),
    'unknown signal "SIGRTMAX-31"',
    'before SIGRTMIN',
  );
  t.equal(
    errorOf(t, () => parseSignal('')),
    'unknown signal ""',
  );
  t.equal(
    errorOf(t, () => parseSignal('-9')),
    'unknown signal "-9"',
  );
  t.equal(
    errorOf(t, () => parseSignal('SIG')),
    'unknown signal "SIG"',
  );
});

t.test("signalText: a signal as runc (Go) names a hook's death", async t => {
  t.equal(signalText(31), 'bad system call');
  t.equal(signalText('SIGSYS'), 'bad system call');
  t.equal(signalText(9), 'killed');
  t.equal(signalText(15), 'terminated');
  t.equal(signalText(40), 'signal 40', 'a real-time signal by number');
  t.equal(signalText('SIGBOGUS'), 'SIGBOGUS');
});

t.test('validateId', async t => {
  for (const ok of ['abc', 'a_b-c.d+e', 'A1', '0', 'x'.repeat(200), '...x']) {
    t.doesNotThrow(() => validateId(ok), `accepts ${JSON.stringify(ok)}`);
  }
  t.equal(
    errorOf(t, () => validateId('')),
    'container id cannot be empty',
  );
  for (const bad of ['../x', 'a/b', '.', '..', '/abs', 'a b', 'a\nb', 'a:b', 'ä']) {
    t.equal(
      errorOf(t, () => validateId(bad)),
      `invalid id format: ${bad}`,
      `rejects ${JSON.stringify(bad)}`,
    );
  }
});
