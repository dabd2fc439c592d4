// The pure parts of tsrt-singularity's launcher: flag grammar, environment precedence, the injected
// passwd/group lines, the action script and the ldconfig parser.
import t from 'tap';
import { actionScript, baseEnvironment, environmentOverrides } from '../../src/singularity/environment.js';
import { parseLdconfig } from '../../src/singularity/gpu.js';
import { groupFor, passwdFor } from '../../src/singularity/spec.js';
import { emptyOptions, parseActionArgs, parseBinds, parseMount } from '../../src/singularity/options.js';

t.test('-B takes src, src:dst, src:dst:ro, src:ro and comma lists', async t => {
  t.same(parseBinds('/a,/b:/c,/d:/e:ro,/f:ro'), [
    { source: '/a', destination: '/a', readonly: false },
    { source: '/b', destination: '/c', readonly: false },
    { source: '/d', destination: '/e', readonly: true },
    { source: '/f', destination: '/f', readonly: true },
  ]);
  t.throws(() => parseBinds('rel:/x'), /must be absolute paths/);
  t.throws(() => parseBinds('/a:/b:ro:x'), /expected src\[:dst\[:ro\|rw\]\]/);
  t.same(parseMount('type=bind,src=/a,dst=/b,readonly'), { source: '/a', destination: '/b', readonly: true });
  t.throws(() => parseMount('type=bind,src=/a'), /source and destination are required/);
});

t.test('flags stop at the image; later words belong to the command; SINGULARITY_* variables set flags', async t => {
  const { options, rest } = parseActionArgs(['-C', '--env=A=1', '-B', '/x', 'img', 'cmd', '-p'], {
    SINGULARITY_BIND: '/y',
    APPTAINER_NV: 'true',
  });
  t.same(rest, ['img', 'cmd', '-p']);
  t.ok(options.contain && options.pid && options.ipc && options.cleanenv && options.nv);
  t.same(
    options.binds.map(b => b.source),
    ['/y', '/x'],
  );
  t.same(options.env, ['A=1']);
  t.throws(() => parseActionArgs(['--bogus', 'img']), /unknown flag: --bogus/);
  t.throws(() => parseActionArgs(['-B']), /flag needs an argument: -B/);
});

t.test('environment: host < SINGULARITYENV_ < APPTAINERENV_ < --env; runtime variables never leak in', async t => {
  const o = { ...emptyOptions(), env: ['X=flag'] };
  const warnings: string[] = [];
  const overrides = environmentOverrides(
    { SINGULARITYENV_X: 's', APPTAINERENV_X: 'a', SINGULARITYENV_Y: 'y', SINGULARITYENV_HOME: '/h' },
    o,
    w => warnings.push(w),
  );
  t.same(overrides.map(([k]) => k).sort(), ['X', 'X', 'X', 'Y'], 'HOME is refused');
  t.equal(overrides[overrides.length - 1]![1], 'flag', '--env comes last, so it wins');
  t.ok(overrides.findIndex(([, v]) => v === 'a') > overrides.findIndex(([, v]) => v === 's'), 'APPTAINERENV_ after SINGULARITYENV_');
  t.match(warnings.join(), /HOME/);
  const base = baseEnvironment({ KEEP: '1', SINGULARITY_BIND: '/x', LD_LIBRARY_PATH: '/l', PATH: '/host' }, emptyOptions(), {
    HOME: '/home/u',
  });
  t.same(base.sort(), ['HOME=/home/u', 'KEEP=1', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  const clean = baseEnvironment({ KEEP: '1', TERM: 'xterm', HTTPS_PROXY: 'p' }, { ...emptyOptions(), cleanenv: true }, {});
  t.same(clean.sort(), ['HTTPS_PROXY=p', 'LANG=C', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm']);
});

t.test('the action script sources the image environment before the overrides, quoting values', async t => {
  const s = actionScript({
    action: 'exec',
    overrides: [
      ['A', "it's"],
      ['PREPEND_PATH', '/p'],
    ],
    libs: true,
    prompt: 'Singularity> ',
  });
  const lines = s.split('\n');
  t.match(lines[0], /\/\.singularity\.d\/env\/\*\.sh/);
  t.ok(lines.indexOf(`export A='it'\\''s'`) > 0);
  t.ok(lines.includes(`PATH='/p':"$PATH"`));
  t.match(s, /LD_LIBRARY_PATH.*\/\.singularity\.d\/libs/);
  t.equal(lines[lines.length - 1], 'exec "$@"');
});

t.test("passwd keeps the image's lines and adds (or rewrites) the user's; group adds the user's groups", async t => {
  const u = { name: 'ann', uid: 1000, gid: 1000, gecos: 'Ann', home: '/home/ann', shell: '/bin/bash' };
  t.equal(
    passwdFor(['root:x:0:0:root:/root:/bin/sh'], u, '/home/ann'),
    'root:x:0:0:root:/root:/bin/sh\nann:x:1000:1000:Ann:/home/ann:/bin/bash\n',
  );
  t.equal(
    passwdFor(['root:x:0:0::/root:/bin/sh', 'old:x:1000:1000::/x:/bin/ash'], u, '/h'),
    'root:x:0:0::/root:/bin/sh\nann:x:1000:1000:Ann:/h:/bin/ash\n',
    'same uid: replaced, image shell kept',
  );
  t.equal(groupFor(['root:x:0:'], ['ann:x:1000:', 'video:x:44:bob,ann', 'audio:x:29:bob'], u), 'root:x:0:\nann:x:1000:\nvideo:x:44:ann\n');
});

t.test("ldconfig -p output: name and path, this machine's ABI only", async t => {
  const out =
    '3 libs found\n\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/libcuda.so.1\n\tlibcuda.so.1 (libc6) => /usr/lib32/libcuda.so.1\n\tlibx.so (libc6,AArch64) => /a/libx.so\n';
  t.same(
    parseLdconfig(out, 'x64'),
    [{ name: 'libcuda.so.1', file: '/usr/lib/libcuda.so.1' }],
    'the 32-bit and the arm64 library are left out',
  );
  t.same(parseLdconfig(out, 'arm64'), [{ name: 'libx.so', file: '/a/libx.so' }]);
});
