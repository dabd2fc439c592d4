// The words of tsrt's help and man pages, in one table: `tsrt <verb> --help` (help.ts) and the generated
// man pages and bash completion (src/manual/) read it, so they cannot drift apart. Flags are documented by
// the name the verb's parser gives them; test/unit/help.test.ts checks that every flag a parser accepts has
// a line here and that every line here names a flag some parser accepts.

export interface FlagDoc {
  /** The value's name in usage lines (flags that take a value only). */
  arg?: string;
  /** The values it takes, when they are a closed set (offered by completion too). */
  choices?: string[];
  /** One line, lower-case start, no full stop, as runc's help words them. */
  text: string;
}

export interface Example {
  command: string;
  /** What it does, in one sentence. */
  text: string;
}

export interface VerbDoc {
  /** One line for `tsrt --help` and the man page's NAME. */
  summary: string;
  /** What follows `tsrt <verb>`: flags in brackets, then the arguments. */
  usage: string;
  /** Paragraphs, separated by blank lines. */
  description: string;
  flags: Record<string, FlagDoc>;
  /** How the exit status reads: one line per case. */
  exitStatus: string[];
  examples: Example[];
}

const ID = 'the container id: letters, digits, "_", "+", "-" and "." (but not . or ..)';

const STATUS_PLAIN = ['0: done', '1: a usage error, or the operation failed (the error on stderr, as runc prints it)'];

const createFlags: Record<string, FlagDoc> = {
  bundle: { arg: 'dir', text: 'the bundle: the directory holding config.json (default: the current directory)' },
  'console-socket': { arg: 'path', text: "a unix socket that receives the pseudo-terminal's master fd when process.terminal is true" },
  'pid-file': { arg: 'file', text: "write the container init's host pid to this file" },
  'no-pivot': { text: 'enter the root filesystem with MS_MOVE and chroot instead of pivot_root (ramdisk roots)' },
  'no-new-keyring': { text: "keep the caller's session keyring instead of creating a new one for the container" },
  'preserve-fds': { arg: 'N', text: 'pass N more fds (3 to 3+N-1) to the container process, beside stdio and LISTEN_FDS' },
};

export const globalDocs: Record<string, FlagDoc> = {
  root: {
    arg: 'dir',
    text: 'the state directory (default: /run/tsrt, or $XDG_RUNTIME_DIR/tsrt when unprivileged); it must be yours, not writable by others',
  },
  log: { arg: 'file', text: 'append log lines to this file; errors then go to stderr as the bare message' },
  'log-format': { arg: 'format', choices: ['text', 'json'], text: 'the format of log lines: text or json (default: text)' },
  debug: { text: 'log a debug line per step (on stderr without --log)' },
  'systemd-cgroup': { text: 'let systemd manage the cgroup: linux.cgroupsPath is slice:prefix:name' },
  'cgroup-manager': {
    arg: 'manager',
    choices: ['cgroupfs', 'systemd', 'disabled'],
    text: "who manages the container's cgroup: cgroupfs, systemd or disabled (default: cgroupfs)",
  },
  rootless: {
    arg: 'mode',
    choices: ['auto', 'true', 'false'],
    text: 'auto, true or false: whether cgroups tsrt may not create are skipped (default: auto)',
  },
  criu: { arg: 'path', text: 'accepted for engines that pass it; tsrt has no checkpoint and restore' },
  version: { text: 'print the version, the commit and the runtime-spec version' },
  help: { text: 'show help' },
};

/** The verbs, in the order `tsrt --help` lists them. */
export const verbDocs = {
  create: {
    summary: 'create a container',
    usage: '[command options] <container-id>',
    description: `Creates the container described by the bundle's config.json: its namespaces, cgroup, mounts and root filesystem, up to the point where the container process would run the user's program. The process then waits until \`tsrt start\`; the createRuntime, createContainer hooks have run by then.

<container-id> is ${ID}. stdin, stdout and stderr are the container's: tsrt writes nothing on success.`,
    flags: createFlags,
    exitStatus: STATUS_PLAIN,
    examples: [
      { command: 'tsrt create -b /srv/bundle web', text: 'creates the container web from /srv/bundle/config.json' },
      {
        command: 'tsrt create --console-socket /run/sock --pid-file /run/web.pid web',
        text: 'creates web with a terminal whose master goes to /run/sock, writing its pid to /run/web.pid',
      },
    ],
  },
  start: {
    summary: 'start a created container',
    usage: '<container-id>',
    description:
      "Runs the user's program in a created container (process.args of its config.json); the startContainer and poststart hooks run around it. tsrt returns as soon as the program has been started.",
    flags: {},
    exitStatus: STATUS_PLAIN,
    examples: [{ command: 'tsrt start web', text: 'starts the created container web' }],
  },
  state: {
    summary: 'output the state of a container',
    usage: '<container-id>',
    description:
      "Prints the runtime-spec state of the container as JSON: ociVersion, id, status (creating, created, running, paused or stopped), pid, bundle, annotations, and runc's created and owner fields.",
    flags: {},
    exitStatus: STATUS_PLAIN,
    examples: [{ command: 'tsrt state web', text: 'prints the state of web' }],
  },
  kill: {
    summary: 'send a signal to the container init (SIGTERM by default)',
    usage: '[command options] <container-id> [signal]',
    description:
      "Sends the signal to the container's init process. The signal is a name (KILL or SIGKILL) or a number; 0 only checks that the container exists.",
    flags: {
      all: { text: "send the signal to every process of the container's cgroup (on a stopped container: to what is left in it)" },
    },
    exitStatus: STATUS_PLAIN,
    examples: [
      { command: 'tsrt kill web KILL', text: 'kills the init of web' },
      { command: 'tsrt kill --all web TERM', text: 'sends SIGTERM to every process of web' },
    ],
  },
  delete: {
    summary: 'delete a container and everything it holds',
    usage: '[command options] <container-id>',
    description:
      'Removes a stopped container: its cgroup, its state and what tsrt made for it on the host; the poststop hooks run. A running container is refused unless --force is given.',
    flags: {
      force: { text: 'kill a running container first (SIGKILL); an unknown id then succeeds, as engines expect' },
    },
    exitStatus: STATUS_PLAIN,
    examples: [{ command: 'tsrt delete --force web', text: 'removes web, stopping it first if it runs' }],
  },
  run: {
    summary: 'create and start a container; in the foreground, exit with its status',
    usage: '[command options] <container-id>',
    description: `Creates and starts the container in one step. In the foreground (without --detach) tsrt waits for the container process, forwards the signals it receives to it, then deletes the container unless --keep is given.

<container-id> is ${ID}.`,
    flags: {
      ...createFlags,
      detach: { text: 'return once the container runs, leaving it to run in the background' },
      keep: { text: 'do not delete the container after it exits (foreground only)' },
    },
    exitStatus: [
      "in the foreground: the container process's exit status, 128+N when signal N ended it",
      'with --detach: 0 once it runs',
      '1: a usage error, or the container could not be created or started',
    ],
    examples: [
      { command: 'tsrt run -b /srv/bundle web', text: 'runs web in the foreground and exits with its status' },
      { command: 'tsrt run -d -b /srv/bundle web', text: 'runs web in the background' },
    ],
  },
  exec: {
    summary: 'execute a new process inside the container',
    usage: '[command options] <container-id> <command> [args...]  ||  tsrt exec [command options] -p process.json <container-id>',
    description:
      'Runs one more process in a running container, in its namespaces and cgroup, with the container\'s capabilities, rlimits, seccomp filter and LSM labels unless the flags change them. The process is the command after the container id (flags end at the id, so "--" is not needed), or the runtime-spec process of --process. In the foreground tsrt waits for it and forwards signals.',
    flags: {
      'console-socket': { arg: 'path', text: "a unix socket that receives the pseudo-terminal's master fd (with --tty)" },
      cwd: { arg: 'dir', text: 'the working directory inside the container' },
      env: { arg: 'NAME=value', text: 'set an environment variable (repeatable)' },
      tty: { text: 'allocate a pseudo-terminal' },
      user: { arg: 'uid[:gid]', text: 'run as this user and group (numeric ids)' },
      'additional-gids': { arg: 'gid', text: 'an additional group (repeatable)' },
      process: { arg: 'file', text: 'the process to run, as runtime-spec process JSON (the command line is then not read)' },
      detach: { text: 'return once the process runs' },
      'pid-file': { arg: 'file', text: "write the process's host pid to this file" },
      'process-label': { arg: 'label', text: 'the SELinux label of the process' },
      apparmor: { arg: 'profile', text: 'the AppArmor profile of the process' },
      'no-new-privs': { text: 'set no_new_privs for the process' },
      cap: {
        arg: 'CAP_NAME',
        text: "add a capability to the process's bounding, effective and permitted sets, never inheritable (repeatable)",
      },
      'preserve-fds': { arg: 'N', text: 'pass N more fds (3 to 3+N-1) to the process' },
      cgroup: {
        arg: '[controller:]path',
        text: "run in this sub-cgroup of the container's cgroup, for every or one controller (repeatable)",
      },
      'ignore-paused': { text: 'allow exec into a paused container (the process then starts frozen)' },
    },
    exitStatus: [
      "in the foreground: the process's exit status, 128+N when signal N ended it",
      'with --detach: 0 once it runs',
      '126: the program was found but could not be run; 127: the program was not found',
      '255: exec failed (the error on stderr as "exec failed: ..."); 1: a usage error',
    ],
    examples: [
      { command: 'tsrt exec web ps -ef', text: 'lists the processes inside web' },
      { command: 'tsrt exec -t --console-socket /run/sock -u 1000:1000 web sh', text: 'starts a shell as uid 1000 on a new terminal' },
      { command: 'tsrt exec -d -p /srv/probe.json web', text: 'runs the process described by probe.json in the background' },
    ],
  },
  list: {
    summary: 'list containers started by tsrt with the given root',
    usage: '[command options]',
    description: 'Lists the containers in the state directory (--root) with their pid, status, bundle, creation time and owner.',
    flags: {
      format: { arg: 'format', choices: ['table', 'json'], text: 'table or json (default: table)' },
      quiet: { text: 'print the container ids only' },
    },
    exitStatus: STATUS_PLAIN,
    examples: [
      { command: 'tsrt list', text: 'a table of the containers' },
      { command: 'tsrt --root /run/user/1000/tsrt list -q', text: "the ids of another state directory's containers" },
    ],
  },
  pause: {
    summary: 'suspend all processes of a container (cgroup freezer)',
    usage: '<container-id>',
    description: "Freezes every process of the container with its cgroup's freezer; `tsrt state` says paused until `tsrt resume`.",
    flags: {},
    exitStatus: STATUS_PLAIN,
    examples: [{ command: 'tsrt pause web', text: 'freezes web' }],
  },
  resume: {
    summary: 'resume all processes of a paused container',
    usage: '<container-id>',
    description: 'Thaws the processes a `tsrt pause` froze.',
    flags: {},
    exitStatus: STATUS_PLAIN,
    examples: [{ command: 'tsrt resume web', text: 'thaws web' }],
  },
  update: {
    summary: 'update container resource constraints',
    usage: '[command options] <container-id>',
    description: `Changes the cgroup limits of a running container. The new values come from a linux.resources JSON document (--resources) or from the flags, as in runc 1.1; a document replaces the flags entirely, and the fields it leaves out keep their current values.

Sizes take docker's units (64m, 1.5g, 512KiB; binary multipliers); -1 means unlimited.`,
    flags: {
      resources: { arg: 'file', text: 'a linux.resources JSON document; - reads it from stdin' },
      'blkio-weight': { arg: 'N', text: 'the block IO weight, 10 to 1000 (0: unchanged)' },
      'cpu-period': { arg: 'us', text: 'the CPU CFS period in microseconds' },
      'cpu-quota': { arg: 'us', text: 'the CPU CFS quota in microseconds per period (-1: none)' },
      'cpu-burst': { arg: 'us', text: 'the CPU CFS burst in microseconds' },
      'cpu-share': { arg: 'N', text: 'the CPU shares (relative weight)' },
      'cpu-rt-period': { arg: 'us', text: 'the realtime scheduling period in microseconds' },
      'cpu-rt-runtime': { arg: 'us', text: 'the realtime runtime in microseconds per period' },
      'cpu-idle': { arg: '0|1', text: 'SCHED_IDLE for the cgroup (1) or not (0)' },
      'cpuset-cpus': { arg: 'list', text: 'the CPUs it may use (0-3,7)' },
      'cpuset-mems': { arg: 'list', text: 'the memory nodes it may use (0,1)' },
      'kernel-memory': { arg: 'size', text: 'the kernel memory limit (cgroup v1 only)' },
      'kernel-memory-tcp': { arg: 'size', text: 'the kernel TCP buffer limit (cgroup v1 only)' },
      memory: { arg: 'size', text: 'the memory limit' },
      'memory-reservation': { arg: 'size', text: 'the memory soft limit' },
      'memory-swap': { arg: 'size', text: 'the memory plus swap limit' },
      'pids-limit': { arg: 'N', text: 'the most processes it may hold (0: unchanged, -1: unlimited)' },
      'l3-cache-schema': { arg: 'schema', text: 'Intel RDT L3 cache schema: refused, tsrt does not manage resctrl' },
      'mem-bw-schema': { arg: 'schema', text: 'Intel RDT memory bandwidth schema: refused, tsrt does not manage resctrl' },
    },
    exitStatus: STATUS_PLAIN,
    examples: [
      { command: 'tsrt update --memory 256m --pids-limit 100 web', text: 'limits web to 256 MiB and 100 processes' },
      { command: 'tsrt update -r - web < resources.json', text: 'applies the linux.resources document read from stdin' },
    ],
  },
  ps: {
    summary: 'display the processes running inside a container',
    usage: '[command options] <container-id> [ps options]',
    description:
      "Shows the processes of the container's cgroup: the host's ps output (ps -ef unless ps options follow the id) cut to those processes, or their pids as JSON. Flags end at the container id: what follows goes to ps.",
    flags: {
      format: { arg: 'format', choices: ['table', 'json'], text: 'table or json (default: table)' },
    },
    exitStatus: STATUS_PLAIN,
    examples: [
      { command: 'tsrt ps web', text: 'ps -ef of the processes of web' },
      { command: 'tsrt ps -f json web', text: 'their pids, as docker top asks for them' },
      { command: 'tsrt ps web -o pid,comm', text: "the host's ps with its own options" },
    ],
  },
  events: {
    summary: 'display container events such as OOM notifications, cpu, memory, and IO usage statistics',
    usage: '[command options] <container-id>',
    description:
      'Prints events of the container as JSON lines on stdout until it stops: its resource statistics every interval and OOM notifications. With --stats it prints one statistics event and exits.',
    flags: {
      interval: { arg: 'duration', text: 'the time between statistics events, as a Go duration (default: 5s; 200ms, 1m)' },
      stats: { text: 'print the statistics once and exit' },
    },
    exitStatus: STATUS_PLAIN,
    examples: [
      { command: 'tsrt events --stats web', text: 'one statistics event of web' },
      { command: 'tsrt events --interval 1s web', text: 'statistics every second and OOM events, until web stops' },
    ],
  },
  spec: {
    summary: 'create a new config.json for a bundle',
    usage: '[command options]',
    description:
      "Writes a starter config.json (runc's template) in the bundle directory; an existing config.json is left alone and the command fails.",
    flags: {
      bundle: { arg: 'dir', text: 'the bundle directory to write config.json in (default: the current directory)' },
      rootless: { text: "a configuration for an unprivileged user: a user namespace mapping the caller's uid and gid, no cgroup limits" },
    },
    exitStatus: STATUS_PLAIN,
    examples: [{ command: 'tsrt spec --rootless -b /srv/bundle', text: 'writes /srv/bundle/config.json for an unprivileged run' }],
  },
  features: {
    summary: 'show the enabled features',
    usage: '',
    description:
      'Prints the runtime-spec features document as JSON: the hooks, mount options, namespaces, capabilities, cgroup and seccomp features this build of tsrt accepts, taken from the same tables its validation uses.',
    flags: {},
    exitStatus: STATUS_PLAIN,
    examples: [{ command: 'tsrt features', text: 'the features document' }],
  },
} satisfies Record<string, VerbDoc>;

export type Verb = keyof typeof verbDocs;

export const programDoc = {
  summary: 'an OCI runtime-spec container runtime',
  description: `tsrt runs containers from OCI bundles, as runc does: the same verbs, flags, state and error messages, so container engines (Docker, containerd, podman, CRI-O, Kubernetes through a CRI runtime handler) and Slurm's srun --container can use it in runc's place.

TypeScript validates config.json and resolves a flat plan; a small static executor written in C carries it out in the container's namespaces. Errors are printed on stderr as runc prints them (a log line, or the bare message with --log) and exit non-zero; success prints nothing, since the container's stdio is the caller's.`,
  exitStatus: [
    '0: done',
    '1: a usage error or a failed operation',
    "run and exec: the status of the container's process (see tsrt-run(8), tsrt-exec(8))",
  ],
};
