// --net, --network, --network-args, --dns: a network namespace of the container's own. Singularity fills it
// through CNI plugins, which need root; here the user's own rights are enough:
//   none    only the loopback interface (up: the runtime brings it up in every new network namespace);
//   pasta   user-mode networking by passt's pasta (Debian package passt): the host's addresses and routes
//           copied in, outbound connections through the host, and --network-args portmap=HOST:CONTAINER/tcp
//           publishing container ports on the host, which neither Singularity nor Apptainer can do rootless.
// Singularity's CNI network names (bridge, the default; ptp; fakeroot) mean pasta here.
//
// pasta has to attach before the container's process starts, so the namespaces come first, as rootless Podman
// does: pasta attaches to a holder's (./ns-holder.ts) and the container joins them by path.
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import type { Spec } from '../index.js';
import { helperError, need, startHelper, startNamespaceHolder, waitUntil, type Purpose } from './ns-holder.js';
import type { ActionOptions } from './options.js';
import type { Undo } from './undo.js';

const PASTA: Purpose = { option: '--network pasta', otherwise: 'use --network none' };

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
  if (!/^\d+$/.test(text) || n < 1 || n > 65535)
    throw new RuntimeError(`--network-args ${JSON.stringify(arg)}: ${what} port must be 1-65535`, { op: 'network' });
  return n;
}

/** `portmap=HOST:CONTAINER[/tcp|/udp]` (CNI's portmap argument, as Singularity takes it); nothing else. */
export function parseNetworkArgs(args: string[]): PortMap[] {
  return args.map(arg => {
    const m = /^portmap=([^:]*):([^/]*)(?:\/(.*))?$/.exec(arg);
    if (!m)
      throw new RuntimeError(
        `unsupported --network-args ${JSON.stringify(arg)}: tsrt-singularity takes portmap=HOST:CONTAINER[/tcp|/udp]`,
        { op: 'network' },
      );
    const proto = m[3] ?? 'tcp';
    if (proto !== 'tcp' && proto !== 'udp')
      throw new RuntimeError(`--network-args ${JSON.stringify(arg)}: the protocol must be tcp or udp`, { op: 'network' });
    return { host: port(m[1]!, 'the host', arg), container: port(m[2]!, 'the container', arg), proto };
  });
}

/** What --net/--network/--network-args ask for, checked; undefined without a network namespace. */
export function networkPlan(o: ActionOptions): NetworkPlan | undefined {
  if (!o.net) {
    if (o.networkArgs.length)
      throw new RuntimeError("--network-args needs --net (a network namespace of the container's own)", { op: 'network' });
    return undefined;
  }
  const name = o.network ?? 'bridge';
  if (name.includes(','))
    throw new RuntimeError(`--network ${name}: tsrt-singularity sets up one network per container`, { op: 'network' });
  if (!NETWORKS.includes(name))
    throw new RuntimeError(`--network ${name}: unknown network (tsrt-singularity has ${NETWORKS.join(', ')})`, { op: 'network' });
  const portmaps = parseNetworkArgs(o.networkArgs);
  if (name === 'none') {
    if (portmaps.length) throw new RuntimeError('--network none has no ports to map: use --network pasta for portmap=', { op: 'network' });
    return { mode: 'none', portmaps };
  }
  return { mode: 'pasta', portmaps };
}

/** /etc/resolv.conf for --dns: the given servers, in order. */
export function resolvConf(servers: string[]): string {
  const bad = servers.find(s => isIP(s) === 0);
  if (bad !== undefined) throw new RuntimeError(`--dns ${JSON.stringify(bad)}: not an IP address`, { op: 'dns' });
  return servers.map(s => `nameserver ${s}\n`).join('');
}

/**
 * Adds the network namespace to the spec: a new one for `none`; for pasta the namespaces are joined by path
 * once the session started them (startPasta). Either way, the user may bind ports below 1024 in the
 * namespace, which is theirs (as rootless Podman allows).
 */
export function addNetwork(spec: Spec, plan: NetworkPlan, asRoot: boolean): void {
  const linux = spec.linux!;
  linux.sysctl = { ...linux.sysctl, 'net.ipv4.ip_unprivileged_port_start': '0' };
  if (plan.mode === 'none') {
    linux.namespaces = [...(linux.namespaces ?? []), { type: 'network' }];
    return;
  }
  // pasta refuses to run as root (it changes to nobody, who cannot reach a root-owned namespace).
  if (asRoot)
    throw new RuntimeError('--network pasta is user-mode networking for users other than root; as root, use --network none', {
      op: 'network',
    });
}

/**
 * For pasta: starts the holder and pasta now (they are stopped through `undo`) and makes the container join
 * the holder's user and network namespaces.
 */
export function startPasta(spec: Spec, plan: NetworkPlan, session: string, undo: Undo): void {
  const linux = spec.linux!;
  const namespaces = linux.namespaces ?? [];
  const pasta = need('pasta', 'passt', PASTA);
  try {
    fs.accessSync('/dev/net/tun', fs.constants.R_OK | fs.constants.W_OK);
  } catch (e) {
    throw new RuntimeError(
      '--network pasta needs /dev/net/tun, which this host does not let you open (Debian makes it mode 0666; ask the administrator), or use --network none',
      { op: 'open', path: '/dev/net/tun', errno: (e as NodeJS.ErrnoException).code ?? '', cause: e },
    );
  }
  const holder = startNamespaceHolder({
    net: true,
    uid: linux.uidMappings ?? [],
    gid: linux.gidMappings ?? [],
    errFile: path.join(session, 'network-holder.err'),
    releases: undo,
    purpose: PASTA,
    what: 'network',
  });
  const pidFile = path.join(session, 'pasta.pid');
  const pastaErr = path.join(session, 'pasta.err');
  const forward = (proto: 'tcp' | 'udp', flag: string) => {
    const specs = plan.portmaps.filter(p => p.proto === proto).map(p => `${p.host}:${p.container}`);
    return specs.length ? specs.flatMap(s => [flag, s]) : [flag, 'none'];
  };
  // Only the asked-for ports are published (-t/-u), and none of the host's loopback ports are forwarded into
  // the namespace's loopback (-T/-U); the host stays reachable at the gateway address (slirp4netns' 10.0.2.2).
  const pastaPid = startHelper(
    [
      pasta,
      '--foreground',
      '--quiet',
      '--config-net',
      ...forward('tcp', '-t'),
      ...forward('udp', '-u'),
      '-T',
      'none',
      '-U',
      'none',
      '--pid',
      pidFile,
      String(holder),
    ],
    pastaErr,
    undo,
    PASTA,
  );
  // pasta writes its pid file once the namespace is configured and the host ports are bound.
  if (!waitUntil(pastaPid, () => fs.existsSync(pidFile) && fs.statSync(pidFile).size > 0))
    throw helperError(PASTA, 'pasta could not set up the network', pastaErr);
  linux.namespaces = [
    ...namespaces.map(n => (n.type === 'user' ? { type: 'user' as const, path: `/proc/${holder}/ns/user` } : n)),
    { type: 'network', path: `/proc/${holder}/ns/net` },
  ];
  delete linux.uidMappings;
  delete linux.gidMappings;
}
