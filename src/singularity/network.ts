// --net, --network, --network-args, --dns: a network namespace of the container's own. Singularity fills it
// through CNI plugins, which need root; here the user's own rights are enough:
//   none    only the loopback interface (up: the runtime brings it up in every new network namespace);
//   pasta   user-mode networking by passt's pasta (Debian package passt): the host's addresses and routes
//           copied in, outbound connections through the host, and --network-args portmap=HOST:CONTAINER/tcp
//           publishing container ports on the host, which neither Singularity nor Apptainer can do rootless.
// Singularity's CNI network names (bridge, the default; ptp; fakeroot) mean pasta here.
//
// pasta has to attach before the container's process starts, and it cannot attach to the container's own
// namespaces then: the runtime's init stays non-dumpable until its execve (security rule R5), so its
// /proc/PID/ns files are closed to the user. So, as rootless Podman does, the namespaces come first: a holder
// process (`unshare`, then `sleep`) owns a user namespace with the container's id maps and a network namespace,
// pasta attaches to the holder, and the container joins both by path. Both helpers are children of this
// process with a parent-death signal, and are stopped with the session (its release list).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { procStat } from '../runtime/state.js';
import type { Spec } from '../spec/types.gen.js';
import type { ActionOptions } from './options.js';

const USER_MODE = ['pasta', 'bridge', 'ptp', 'fakeroot', 'default'];
const NETWORKS = ['none', ...USER_MODE];

export interface PortMap {
  host: number;
  container: number;
  proto: 'tcp' | 'udp';
}

export interface NetworkPlan {
  mode: 'none' | 'pasta';
  portmaps: PortMap[];
}

function port(text: string, what: string, arg: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new Error(`--network-args ${JSON.stringify(arg)}: ${what} port must be 1-65535`);
  return n;
}

/** `portmap=HOST:CONTAINER[/tcp|/udp]` (CNI's portmap argument, as Singularity takes it); nothing else. */
export function parseNetworkArgs(args: string[]): PortMap[] {
  return args.map(arg => {
    const m = /^portmap=([^:]*):([^/]*)(?:\/(.*))?$/.exec(arg);
    if (!m) throw new Error(`unsupported --network-args ${JSON.stringify(arg)}: tsrt-singularity takes portmap=HOST:CONTAINER[/tcp|/udp]`);
    const proto = m[3] ?? 'tcp';
    if (proto !== 'tcp' && proto !== 'udp') throw new Error(`--network-args ${JSON.stringify(arg)}: the protocol must be tcp or udp`);
    return { host: port(m[1]!, 'the host', arg), container: port(m[2]!, 'the container', arg), proto };
  });
}

/** What --net/--network/--network-args ask for, checked; undefined without a network namespace. */
export function networkPlan(o: ActionOptions): NetworkPlan | undefined {
  if (!o.net) {
    if (o.networkArgs.length) throw new Error('--network-args needs --net (a network namespace of the container\'s own)');
    return undefined;
  }
  const name = o.network ?? 'bridge';
  if (name.includes(',')) throw new Error(`--network ${name}: tsrt-singularity sets up one network per container`);
  if (!NETWORKS.includes(name)) throw new Error(`--network ${name}: unknown network (tsrt-singularity has ${NETWORKS.join(', ')})`);
  const portmaps = parseNetworkArgs(o.networkArgs);
  if (name === 'none') {
    if (portmaps.length) throw new Error('--network none has no ports to map: use --network pasta for portmap=');
    return { mode: 'none', portmaps };
  }
  return { mode: 'pasta', portmaps };
}

/** /etc/resolv.conf for --dns: the given servers, in order. */
export function resolvConf(servers: string[]): string {
  const bad = servers.find(s => isIP(s) === 0);
  if (bad !== undefined) throw new Error(`--dns ${JSON.stringify(bad)}: not an IP address`);
  return servers.map(s => `nameserver ${s}\n`).join('');
}

/** Debian's programs by absolute path first, then $PATH. */
function findProgram(name: string): string | undefined {
  for (const dir of ['/usr/bin', '/usr/sbin', '/bin', '/sbin', ...(process.env['PATH'] ?? '').split(':')]) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function need(name: string, pkg: string): string {
  const file = findProgram(name);
  if (!file) throw new Error(`--network pasta needs ${name} (apt-get install ${pkg}), or use --network none`);
  return file;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** A child that has exited (a zombie until the event loop reaps it) or is gone. */
function ended(pid: number): boolean {
  const st = procStat(pid);
  return !st || st.state === 'Z' || st.state === 'X';
}

/** Polls (10 ms steps, bounded) until `ready` holds or the process ends; returns whether it became ready. */
function waitUntil(pid: number, ready: () => boolean, steps = 1000): boolean {
  for (let i = 0; i < steps; i++) {
    if (ready()) return true;
    if (ended(pid)) return ready();
    Atomics.wait(pause, 0, 0, 10);
  }
  return ready();
}

/** Stops a helper of ours: SIGTERM, a bounded wait, then SIGKILL. */
function stop(pid: number): void {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    if (waitUntil(pid, () => false, 200) || ended(pid)) return;
  }
}

/**
 * Starts `argv` as a child that dies with this process (setpriv's parent-death signal), its stderr in `errFile`.
 * Returns its pid (the same through setpriv's and unshare's execs).
 */
function startHelper(argv: string[], errFile: string, releases: (() => void)[]): number {
  const err = fs.openSync(errFile, 'w', 0o600);
  const child = spawn(need('setpriv', 'util-linux'), ['--pdeathsig', 'KILL', '--', ...argv], { stdio: ['ignore', 'ignore', err] });
  fs.closeSync(err);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${argv[0]}`);
  const pid = child.pid;
  releases.push(() => stop(pid));
  return pid;
}

function helperError(what: string, errFile: string): Error {
  const text = fs.readFileSync(errFile, 'utf8').split('\n').filter(l => l && !/syslog/.test(l)).join('; ');
  return new Error(`--network pasta: ${what}${text ? `: ${text}` : ''}`);
}

type IdMaps = { containerID: number; hostID: number; size: number }[];

/** Writes the holder's id maps as the spec would have had them written (newuidmap/newgidmap, as the runtime does). */
function writeMaps(pid: number, uid: IdMaps, gid: IdMaps): void {
  for (const [tool, maps] of [['newuidmap', uid], ['newgidmap', gid]] as const) {
    const args = [String(pid), ...maps.flatMap(m => [String(m.containerID), String(m.hostID), String(m.size)])];
    const r = spawnSync(need(tool, 'uidmap'), args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    const why = r.error ? r.error.message : r.status !== 0 ? r.stderr.trim() || `exit status ${r.status}` : undefined;
    if (why) throw new Error(`--network pasta: ${tool} for the network's user namespace failed: ${why}`);
  }
}

/**
 * Adds the network namespace to the spec. For pasta, starts the holder and pasta now (they are stopped through
 * `releases`) and makes the container join the holder's user and network namespaces. Either way, the user may
 * bind ports below 1024 in the namespace, which is theirs (as rootless Podman allows).
 */
export function addNetwork(spec: Spec, plan: NetworkPlan, session: string, releases: (() => void)[]): void {
  const linux = spec.linux!;
  linux.sysctl = { ...linux.sysctl, 'net.ipv4.ip_unprivileged_port_start': '0' };
  const namespaces = linux.namespaces ?? [];
  if (plan.mode === 'none') {
    linux.namespaces = [...namespaces, { type: 'network' }];
    return;
  }
  // pasta refuses to run as root (it changes to nobody, who cannot reach a root-owned namespace).
  if (process.geteuid?.() === 0) throw new Error('--network pasta is user-mode networking for users other than root; as root, use --network none');
  const pasta = need('pasta', 'passt');
  try {
    fs.accessSync('/dev/net/tun', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    throw new Error('--network pasta needs /dev/net/tun, which this host does not let you open (Debian makes it mode 0666; ask the administrator), or use --network none');
  }
  const holderErr = path.join(session, 'network-holder.err');
  const holder = startHelper([need('unshare', 'util-linux'), '--user', '--net', '--', need('sleep', 'coreutils'), 'infinity'], holderErr, releases);
  const own = (ns: string) => fs.readlinkSync(`/proc/self/ns/${ns}`);
  const entered = () => {
    try {
      return fs.readlinkSync(`/proc/${holder}/ns/net`) !== own('net') && fs.readFileSync(`/proc/${holder}/comm`, 'utf8').trim() === 'sleep';
    } catch {
      return false;
    }
  };
  if (!waitUntil(holder, entered)) throw helperError('could not make the network namespaces', holderErr);
  writeMaps(holder, linux.uidMappings ?? [], linux.gidMappings ?? []);
  const pidFile = path.join(session, 'pasta.pid');
  const pastaErr = path.join(session, 'pasta.err');
  const forward = (proto: 'tcp' | 'udp', flag: string) => {
    const specs = plan.portmaps.filter(p => p.proto === proto).map(p => `${p.host}:${p.container}`);
    return specs.length ? specs.flatMap(s => [flag, s]) : [flag, 'none'];
  };
  // Only the asked-for ports are published (-t/-u), and none of the host's loopback ports are forwarded into
  // the namespace's loopback (-T/-U); the host stays reachable at the gateway address (slirp4netns' 10.0.2.2).
  const pastaPid = startHelper([pasta, '--foreground', '--quiet', '--config-net', ...forward('tcp', '-t'), ...forward('udp', '-u'),
    '-T', 'none', '-U', 'none', '--pid', pidFile, String(holder)], pastaErr, releases);
  // pasta writes its pid file once the namespace is configured and the host ports are bound.
  if (!waitUntil(pastaPid, () => fs.existsSync(pidFile) && fs.statSync(pidFile).size > 0)) throw helperError('pasta could not set up the network', pastaErr);
  linux.namespaces = [
    ...namespaces.map(n => (n.type === 'user' ? { type: 'user' as const, path: `/proc/${holder}/ns/user` } : n)),
    { type: 'network', path: `/proc/${holder}/ns/net` },
  ];
  delete linux.uidMappings;
  delete linux.gidMappings;
}
