// Images built by `build` seen from inside, through the run/exec/test/run-help/inspect commands as the
// unprivileged test user: what each definition-file section put in /.singularity.d is what the user gets.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { testUser } from '../helpers.js';
import { scratchDir, singularity, writeFiles } from '../singbuild-kit.js';

if (process.geteuid?.() !== 0) {
  t.plan(0, 'needs root to create the unprivileged test user and switch to it');
  process.exit(0);
}
t.setTimeout(10 * 60_000);

const user = testUser();

const DEF = `Bootstrap: busybox

%environment
    export GREETING=hello

%post
    echo 'export FROM_POST=post' >> $SINGULARITY_ENVIRONMENT
    echo built > /built.txt

%runscript
    echo "$GREETING $FROM_POST" "$@"

%test
    echo "test as $(id -u)"

%help
    Greets.

%labels
    Maintainer tests

%apprun tool
    echo "tool $SCIF_APPNAME"

%appenv tool
    export TOOLVAR=t1
`;

/**
 * The user's run in dir, with a cache (for an extracted sandbox, when FUSE is not open to them) and a runtime
 * directory (XDG_RUNTIME_DIR as a login session has it: theirs, 0700) of their own.
 */
function userRun(dir: string, args: string[]) {
  const runtime = path.join(dir, 'xdg');
  if (!fs.existsSync(runtime)) {
    fs.mkdirSync(runtime, { mode: 0o700 });
    fs.chownSync(runtime, user.uid, user.gid);
  }
  return singularity(args, { cwd: dir, user: user.name, env: { SINGULARITY_CACHEDIR: path.join(dir, 'cache'), XDG_RUNTIME_DIR: runtime } });
}

t.test('a SIF built as root runs as the user: runscript, environment, apps, test, help, labels', async t => {
  const dir = scratchDir(t, user);
  writeFiles(dir, { 'image.def': DEF });
  const built = singularity(['build', 'image.sif', 'image.def'], { cwd: dir });
  t.equal(built.code, 0, built.stderr);
  fs.chmodSync(path.join(dir, 'image.sif'), 0o644);
  const run = userRun(dir, ['run', 'image.sif', 'a', 'b']);
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout, 'hello post a b\n', '%runscript with %environment and $SINGULARITY_ENVIRONMENT applied');
  const exec = userRun(dir, ['exec', 'image.sif', 'cat', '/built.txt']);
  t.equal(exec.stdout, 'built\n', "%post's files are in the image");
  const app = userRun(dir, ['run', '--app', 'tool', 'image.sif']);
  t.equal(app.stdout, 'tool tool\n', '%apprun');
  const appEnv = userRun(dir, ['exec', '--app', 'tool', 'image.sif', 'sh', '-c', 'echo $TOOLVAR']);
  t.equal(appEnv.stdout, 't1\n', '%appenv');
  const test = userRun(dir, ['test', 'image.sif']);
  t.equal(test.code, 0, test.stderr);
  t.equal(test.stdout, `test as ${user.uid}\n`, '%test runs as the user');
  t.match(userRun(dir, ['run-help', 'image.sif']).stdout, /Greets\./, '%help');
  t.match(userRun(dir, ['inspect', 'image.sif']).stdout, /Maintainer: tests/, '%labels');
});

t.test('a SIF built with --fakeroot by the user runs as that user', async t => {
  const dir = scratchDir(t, user);
  writeFiles(dir, { 'image.def': DEF });
  fs.chownSync(path.join(dir, 'image.def'), user.uid, user.gid);
  const built = userRun(dir, ['build', '--fakeroot', 'image.sif', 'image.def']);
  t.equal(built.code, 0, built.stderr);
  const run = userRun(dir, ['run', 'image.sif']);
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout, 'hello post\n');
  t.equal(userRun(dir, ['exec', 'image.sif', 'id', '-u']).stdout, `${user.uid}\n`, 'the user keeps their own uid at run time');
});
