// --net/--network/--network-args/--dns/--hostname as the unprivileged test user: a network namespace of the
// container's own, with only its loopback (--network none) or connected by passt's pasta, whose portmap
// publishes a container port on the host: a server inside, fetched from the host by the user.
//
// pasta needs /dev/net/tun, which Debian makes mode 0666. Where this host keeps it from users (0600), one test
// checks the clear refusal, and the pasta tests run with the node as Debian has it, made in the run's private
// mount namespace (hostSetup): the host's own /dev is left as it is.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

import { tmpdir, waitFor } from '../helpers.js';
import { kit, sandbox, type SingOptions } from '../singularity-run-kit.js';

t.setTimeout(10 * 60_000);
const k = kit(t);
const image = sandbox(k, {
  files: { 'www/index.html': 'served from inside\n' },
  startscript: 'exec httpd -f -p 80 -h /www',
});

/** Whether the test user can open /dev/net/tun on this host as it is. */
const tunOpen = spawnSync('runuser', ['-u', k.user.name, '--', 'sh', '-c', 'exec 3<>/dev/net/tun'], { stdio: 'ignore' }).status === 0;

/** Root's set-up making /dev/net/tun what Debian makes it (0666), in the run's namespace only. */
function debianTun(tt: { teardown(fn: () => void): void }): string {
  if (tunOpen) return '';
  const dir = tmpdir('tsrt-tun-');
  tt.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return `mount -t tmpfs -o mode=755 tsrt-tun ${dir}\nmknod -m 666 ${dir}/tun c 10 200\nmount --bind ${dir}/tun /dev/net/tun`;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The test user's pasta processes (passt.avx2 / pasta) on the host. */
/** The user's live pasta processes: one that has exited and waits to be reaped (state Z) serves nothing. */
function pastas(): number[] {
  const r = spawnSync('ps', ['-u', k.user.name, '-o', 'pid=,stat=,comm='], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map(l => l.trim().split(/\s+/))
    .filter(([, stat, comm]) => /^(pasta|passt)/.test(comm ?? '') && !stat?.startsWith('Z'))
    .map(([pid]) => Number(pid));
}

/** Fetches a URL from the host as the test user (busybox wget). */
function fetchAsUser(url: string) {
  return spawnSync('runuser', ['-u', k.user.name, '--', 'busybox', 'wget', '-q', '-O-', url], { encoding: 'utf8', timeout: 30_000 });
}

const sessions = () => fs.readdirSync(path.join(k.runtime, 'tsrt-singularity', 'sessions'));

t.test('--net --network none: a network namespace with only its loopback, up; --hostname names the container', async t => {
  const r = k.sing([
    'exec',
    '--net',
    '--network',
    'none',
    '--hostname',
    'box',
    image,
    'sh',
    '-c',
    'hostname; ip -o link | cut -d" " -f2,3; ls /sys/class/net; readlink /proc/self/ns/net; id -u; httpd -p 127.0.0.1:8080 -h /www; wget -q -O- http://127.0.0.1:8080/',
  ]);
  t.equal(r.code, 0, r.stderr);
  const [hostname, link, sysNet, ns, uid, served] = r.stdout.split('\n');
  t.equal(hostname, 'box');
  t.equal(link, 'lo: <LOOPBACK,UP,LOWER_UP>', 'lo, up, and nothing else');
  t.equal(sysNet, 'lo', 'its own sysfs shows its own interfaces');
  t.not(ns, fs.readlinkSync('/proc/self/ns/net'), "not the host's network namespace");
  t.equal(uid, String(k.user.uid));
  t.equal(served, 'served from inside', '127.0.0.1 works inside');
  t.same(sessions(), [], 'nothing left behind');
});

t.test("--dns writes the container's /etc/resolv.conf; a value that is no address is refused", async t => {
  const r = k.sing(['exec', '--dns', '192.0.2.53,2001:db8::53', image, 'cat', '/etc/resolv.conf']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'nameserver 192.0.2.53\nnameserver 2001:db8::53\n');
  const bad = k.sing(['exec', '--dns', 'dns.example', image, 'true']);
  t.equal(bad.code, 255);
  t.match(bad.stderr, 'FATAL:   --dns "dns.example": not an IP address');
});

t.test('bad network requests are refused before anything runs', async t => {
  const cases: [string[], string][] = [
    [['--network', 'macvlan'], '--network macvlan: unknown network (tsrt-singularity has none, pasta, bridge, ptp, fakeroot, default)'],
    [
      ['--net', '--network-args', 'IP=10.22.0.5'],
      'unsupported --network-args "IP=10.22.0.5": tsrt-singularity takes portmap=HOST:CONTAINER[/tcp|/udp]',
    ],
    [['--net', '--network-args', 'portmap=80:99999/tcp'], '--network-args "portmap=80:99999/tcp": the container port must be 1-65535'],
    [['--net', '--network-args', 'portmap=8080:80/sctp'], '--network-args "portmap=8080:80/sctp": the protocol must be tcp or udp'],
    [['--network-args', 'portmap=8080:80/tcp'], "--network-args needs --net (a network namespace of the container's own)"],
    [
      ['--network', 'none', '--network-args', 'portmap=8080:80/tcp'],
      '--network none has no ports to map: use --network pasta for portmap=',
    ],
  ];
  for (const [flags, message] of cases) {
    const r = k.sing(['exec', ...flags, image, 'true']);
    t.equal(r.code, 255, flags.join(' '));
    t.equal(r.stderr, `FATAL:   ${message}\n`);
  }
  t.same(sessions(), []);
});

t.test('pasta on this host as it is: usable, or refused clearly when /dev/net/tun is closed to users', async t => {
  const r = k.sing(['exec', '--net', image, 'true']);
  if (tunOpen) {
    t.comment('branch: /dev/net/tun is open to users here');
    t.equal(r.code, 0, r.stderr);
  } else {
    t.comment('branch: /dev/net/tun is closed to users here (mode 0600)');
    t.equal(r.code, 255);
    t.equal(
      r.stderr,
      'FATAL:   --network pasta needs /dev/net/tun, which this host does not let you open (Debian makes it mode 0666; ask the administrator), or use --network none\n',
    );
  }
  t.same(sessions(), [], 'nothing left behind');
});

t.test('--network-args portmap: a server in an instance, fetched from the host by the user; gone with the instance', async t => {
  const hostPort = await freePort();
  const before = pastas();
  const o: SingOptions = { hostSetup: debianTun(t) };
  const started = k.sing(['instance', 'start', '--net', '--network-args', `portmap=${hostPort}:80/tcp`, image, 'web'], o);
  t.equal(started.code, 0, started.stderr);
  t.teardown(() => {
    k.sing(['instance', 'stop', '-F', 'web']);
  });
  let page = '';
  t.ok(
    waitFor(() => (page = fetchAsUser(`http://127.0.0.1:${hostPort}/`).stdout) !== '', 200, 100),
    'the page is served on the host port',
  );
  t.equal(page, 'served from inside\n');
  const inside = k.sing(['exec', 'instance://web', 'sh', '-c', 'id -u; ip -o link | grep -vc " lo:"; netstat -ltn | grep -c ":80 "']);
  t.equal(inside.code, 0, inside.stderr);
  t.equal(
    inside.stdout,
    `${k.user.uid}\n1\n1\n`,
    "inside: the user, one interface besides lo, and httpd on port 80 (a low port, in the user's own namespace)",
  );
  t.equal(pastas().length, before.length + 1, 'one pasta serves it');
  const stopped = k.sing(['instance', 'stop', 'web']);
  t.equal(stopped.code, 0, stopped.stderr);
  t.same(pastas(), before, 'its pasta is gone');
  t.notOk(fetchAsUser(`http://127.0.0.1:${hostPort}/`).stdout, 'and the host port is closed');
});

t.test('--net with pasta in the foreground: the host is reachable at the gateway; a host port in use is refused', async t => {
  const hostSetup = debianTun(t);
  // A server on the host's loopback, in its own process (this one waits in spawnSync while the container runs).
  const www = tmpdir('tsrt-hostwww-');
  t.teardown(() => fs.rmSync(www, { recursive: true, force: true }));
  fs.writeFileSync(path.join(www, 'index.html'), 'from host\n');
  const port = await freePort();
  const server = spawn('busybox', ['httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', www], { stdio: 'ignore' });
  t.teardown(() => {
    server.kill('SIGKILL');
  });
  t.ok(
    waitFor(() => spawnSync('busybox', ['wget', '-q', '-O-', `http://127.0.0.1:${port}/`]).status === 0),
    'the host server is up',
  );
  const gateway = /^default via (\S+)/m.exec(spawnSync('ip', ['route'], { encoding: 'utf8' }).stdout)?.[1];
  if (gateway) {
    const out = k.sing(['exec', '--net', image, 'wget', '-q', '-O-', `http://${gateway}:${port}/`], { hostSetup });
    t.equal(out.code, 0, out.stderr);
    t.equal(out.stdout, 'from host\n', `the host's 127.0.0.1:${port} through the gateway address ${gateway}`);
  } else {
    t.comment('this host has no default route: pasta has no gateway address to offer');
  }
  // A port taken on every address (IPv4 and IPv6) cannot be published.
  const busyPort = await freePort();
  const taker = net.createServer();
  await new Promise<void>(resolve => taker.listen({ port: busyPort, host: '::', ipv6Only: false }, resolve));
  t.teardown(() => {
    taker.close();
  });
  const busy = k.sing(['exec', '--net', '--network-args', `portmap=${busyPort}:80/tcp`, image, 'true'], { hostSetup });
  t.equal(busy.code, 255);
  t.match(busy.stderr, `FATAL:   --network pasta: pasta could not set up the network: Failed to bind any port for '-t ${busyPort}:80'`);
  t.same(sessions(), [], 'nothing left behind');
});

t.test('--fakeroot --net: root inside a namespace pasta serves, with the same id maps', async t => {
  const r = k.sing(
    ['exec', '--fakeroot', '--net', image, 'sh', '-c', 'id -u; cat /proc/self/uid_map | tr -s " " | head -1; ip -o link | grep -vc " lo:"'],
    { hostSetup: debianTun(t) },
  );
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `0\n 0 ${k.user.uid} 1\n1\n`);
});
