// instance start/list/stop and instance://NAME, as the unprivileged test user: background containers running
// %startscript in their own PID namespace, with state under the user's runtime directory and logs where
// Singularity keeps them (~/.singularity/instances/logs/<host>/<user>/).
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { waitFor } from '../helpers.js';
import { kit, sandbox } from '../singularity-run-kit.js';

const k = kit(t);
const image = sandbox(k, {
  startscript: 'echo "started with $* as $SINGULARITY_INSTANCE"; echo "$*" > "$HOME/.singrun-instance-$SINGULARITY_INSTANCE"',
  runscript: 'echo "runscript in instance: $(cat "$HOME/.singrun-instance-$SINGULARITY_INSTANCE")"',
});
const dir = path.join(k.runtime, 'tsrt-singularity', 'instances');
const logs = path.join(k.home, '.singularity', 'instances', 'logs', os.hostname(), k.user.name);
const NAMES = ['web1', 'sig1', 'a1', 'a2'];
// The startscript writes into the user's home, which is the host's (never a fixed name in /tmp: R9); the
// logs are there too.
t.teardown(() => {
  for (const name of NAMES) {
    fs.rmSync(path.join(k.home, `.singrun-instance-${name}`), { force: true });
    for (const ext of ['out', 'err']) fs.rmSync(path.join(logs, `${name}.${ext}`), { force: true });
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('instance start runs %startscript in the background with its arguments, logging where Singularity does', async t => {
  const r = k.sing(['instance', 'start', '--writable-tmpfs', image, 'web1', 'alpha', 'beta']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /^INFO: +instance started successfully$/m, 'confirmed as Singularity does');
  const rec = JSON.parse(fs.readFileSync(path.join(dir, 'web1.json'), 'utf8'));
  t.ok(alive(rec.pid), 'the container runs after start returned');
  t.ok(
    waitFor(() => fs.readFileSync(path.join(logs, 'web1.out'), 'utf8').includes('started')),
    'the startscript wrote its log',
  );
  t.equal(fs.readFileSync(path.join(logs, 'web1.out'), 'utf8'), 'started with alpha beta as web1\n');
  t.same([rec.logOutPath, rec.logErrPath], [path.join(logs, 'web1.out'), path.join(logs, 'web1.err')], 'the record names them');
  t.equal(fs.readFileSync(`/proc/${rec.pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1], String(k.user.uid), 'it runs as the user');
  const again = k.sing(['instance', 'start', image, 'web1']);
  t.equal(again.code, 255);
  t.match(again.stderr, /FATAL: +instance web1 already exists/);
});

t.test('instance list shows it, as a table and as JSON, with a name glob', async t => {
  const rec = JSON.parse(fs.readFileSync(path.join(dir, 'web1.json'), 'utf8'));
  const table = k.sing(['instance', 'list']);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^INSTANCE NAME +PID +IP +IMAGE\n/);
  t.match(table.stdout, new RegExp(`^web1 +${rec.pid} +${image.replace(/[.]/g, '\\.')}$`, 'm'));
  const json = JSON.parse(k.sing(['instance', 'list', '--json']).stdout);
  t.same(
    json.instances.map((i: { instance: string; pid: number; img: string }) => [i.instance, i.pid, i.img]),
    [['web1', rec.pid, image]],
  );
  t.same(JSON.parse(k.sing(['instance', 'list', '-j', 'other*']).stdout).instances, []);
});

t.test('exec, run and shell instance://NAME join the running instance', async t => {
  const rec = JSON.parse(fs.readFileSync(path.join(dir, 'web1.json'), 'utf8'));
  const e = k.sing(['exec', 'instance://web1', 'sh', '-c', 'readlink /proc/self/ns/pid; grep -c startscript /proc/1/cmdline; id -u']);
  t.equal(e.code, 0, e.stderr);
  const [pidns, init, uid] = e.stdout.split('\n');
  t.equal(pidns, fs.readlinkSync(`/proc/${rec.pid}/ns/pid`), "the instance's PID namespace");
  t.equal(init, '1', "PID 1 is the instance's (it runs the startscript)");
  t.equal(uid, String(k.user.uid));
  t.equal(k.sing(['run', 'instance://web1']).stdout, 'runscript in instance: alpha beta\n');
  t.equal(k.sing(['shell', 'instance://web1'], { input: 'echo "$PS1"\n' }).stdout, 'Singularity> \n');
  t.equal(k.sing(['exec', 'instance://web1', 'sh', '-c', 'exit 9']).code, 9, 'the exit status propagates');
  const missing = k.sing(['exec', 'instance://nope', 'true']);
  t.equal(missing.code, 255);
  t.match(missing.stderr, /FATAL: +no instance found with name nope/);
});

t.test('instance stop ends it and removes its state; --signal picks the signal', async t => {
  const rec = JSON.parse(fs.readFileSync(path.join(dir, 'web1.json'), 'utf8'));
  const r = k.sing(['instance', 'stop', 'web1']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /Stopping web1 instance of/);
  t.notOk(alive(rec.pid));
  t.notOk(fs.existsSync(path.join(dir, 'web1.json')));
  t.same(fs.readdirSync(path.join(k.runtime, 'tsrt-singularity', 'sessions')), [], 'the session is cleaned up');
  t.equal(k.sing(['instance', 'start', image, 'sig1']).code, 0);
  const sig = JSON.parse(fs.readFileSync(path.join(dir, 'sig1.json'), 'utf8'));
  t.equal(k.sing(['instance', 'stop', '--signal', 'KILL', 'sig1']).code, 0);
  t.notOk(alive(sig.pid));
  const missing = k.sing(['instance', 'stop', 'nope']);
  t.equal(missing.code, 255);
  t.match(missing.stderr, /no instance found with name nope/);
});

t.test('instance stop --all stops every instance of the user', async t => {
  t.equal(k.sing(['instance', 'start', image, 'a1']).code, 0);
  t.equal(k.sing(['instance', 'start', image, 'a2']).code, 0);
  t.equal(JSON.parse(k.sing(['instance', 'list', '--json']).stdout).instances.length, 2);
  t.equal(k.sing(['instance', 'stop', '--all']).code, 0);
  t.same(JSON.parse(k.sing(['instance', 'list', '--json']).stdout).instances, []);
});

t.test('a bad instance name or image is refused with nothing left behind', async t => {
  const bad = k.sing(['instance', 'start', image, '../x']);
  t.equal(bad.code, 255);
  t.match(bad.stderr, /instance name "..\/x" is not valid/);
  const noImage = k.sing(['instance', 'start', '/no/such/image', 'ghost']);
  t.equal(noImage.code, 255);
  t.match(noImage.stderr, /^FATAL: +failed to start instance ghost: could not open image/m);
  t.equal(noImage.stderr.match(/FATAL/g)?.length, 1, "one FATAL line, not the monitor's nested in ours");
  t.notOk(fs.existsSync(path.join(dir, 'ghost.json')));
  t.same(
    fs.readdirSync(logs).filter(n => n.startsWith('ghost.')),
    [],
    'no logs of an instance that never ran',
  );
});
