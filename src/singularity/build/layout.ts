// The in-image /.singularity.d tree, laid out as Singularity lays it out, so that images built here run under
// Singularity/Apptainer and images built there run here: the skeleton every build gets (mount points, action
// scripts, base env scripts, compatibility symlinks) and the metadata a definition file puts in it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../../errors.js';

const SKELETON_DIRS = [
  '.singularity.d/actions',
  '.singularity.d/env',
  '.singularity.d/libs',
  'dev',
  'proc',
  'sys',
  'tmp',
  'var/tmp',
  'etc',
  'home',
  'root',
];

const SHEBANG = '#!/bin/sh\n';

// Env scripts are sourced in lexical order by the runtime; 90/91 are the definition file's and %post's.
const BASE_ENV: Record<string, string> = {
  '01-base.sh': `${SHEBANG}# Sourced first in every container; images may override the defaults below.\n`,
  '90-environment.sh': `${SHEBANG}# %environment of the definition file is written here.\n`,
  '95-apps.sh': `${SHEBANG}# SCIF app variables: set for the app named by SCIF_APPNAME (--app).
if [ -n "\${SCIF_APPNAME:-}" ]; then
    SCIF_APPROOT="/scif/apps/\${SCIF_APPNAME}"
    SCIF_APPMETA="\${SCIF_APPROOT}/scif"
    SCIF_APPDATA="/scif/data/\${SCIF_APPNAME}"
    SCIF_APPINPUT="\${SCIF_APPDATA}/input"
    SCIF_APPOUTPUT="\${SCIF_APPDATA}/output"
    export SCIF_APPROOT SCIF_APPMETA SCIF_APPDATA SCIF_APPINPUT SCIF_APPOUTPUT
    if [ -d "\${SCIF_APPROOT}/bin" ]; then PATH="\${SCIF_APPROOT}/bin:\${PATH}"; fi
    if [ -d "\${SCIF_APPROOT}/lib" ]; then LD_LIBRARY_PATH="\${SCIF_APPROOT}/lib:\${LD_LIBRARY_PATH:-}"; export LD_LIBRARY_PATH; fi
    if [ -f "\${SCIF_APPMETA}/env/90-environment.sh" ]; then . "\${SCIF_APPMETA}/env/90-environment.sh"; fi
fi
`,
  '99-base.sh': `${SHEBANG}# Injected host libraries (--nv, --rocm, --containlibs) come last on the library path.
if [ -z "\${LD_LIBRARY_PATH:-}" ]; then
    LD_LIBRARY_PATH=/.singularity.d/libs
else
    LD_LIBRARY_PATH="\${LD_LIBRARY_PATH}:/.singularity.d/libs"
fi
PS1="Singularity> "
export LD_LIBRARY_PATH PS1
`,
  '99-runtimevars.sh': `${SHEBANG}# PATH changes requested at run time (SINGULARITYENV_PREPEND_PATH, _APPEND_PATH, _PATH).
if [ -n "\${SING_USER_DEFINED_PREPEND_PATH:-}" ]; then PATH="\${SING_USER_DEFINED_PREPEND_PATH}:\${PATH}"; fi
if [ -n "\${SING_USER_DEFINED_APPEND_PATH:-}" ]; then PATH="\${PATH}:\${SING_USER_DEFINED_APPEND_PATH}"; fi
if [ -n "\${SING_USER_DEFINED_PATH:-}" ]; then PATH="\${SING_USER_DEFINED_PATH}"; fi
unset SING_USER_DEFINED_PREPEND_PATH SING_USER_DEFINED_APPEND_PATH SING_USER_DEFINED_PATH
export PATH
`,
};

const SOURCE_ENV = 'for script in /.singularity.d/env/*.sh; do\n    if [ -f "$script" ]; then . "$script"; fi\ndone\n';

// The legacy action scripts: current runtimes interpret the same logic themselves, but images still carry them
// and older runtimes (and `/.exec`-style entry points) use them.
const ACTIONS: Record<string, string> = {
  exec: `${SHEBANG}${SOURCE_ENV}exec "$@"\n`,
  run: `${SHEBANG}${SOURCE_ENV}if [ -n "\${SCIF_APPNAME:-}" ] && [ -x "/scif/apps/\${SCIF_APPNAME}/scif/runscript" ]; then
    exec "/scif/apps/\${SCIF_APPNAME}/scif/runscript" "$@"
fi
if [ -x /.singularity.d/runscript ]; then exec /.singularity.d/runscript "$@"; fi
echo "No runscript found in the container; running /bin/sh" >&2
exec /bin/sh "$@"
`,
  shell: `${SHEBANG}${SOURCE_ENV}if [ -n "\${SINGULARITY_SHELL:-}" ] && [ -x "\${SINGULARITY_SHELL}" ]; then exec "\${SINGULARITY_SHELL}" "$@"; fi
if [ -x /bin/bash ]; then exec /bin/bash --norc "$@"; fi
exec /bin/sh "$@"
`,
  start: `${SHEBANG}${SOURCE_ENV}if [ -x /.singularity.d/startscript ]; then exec /.singularity.d/startscript "$@"; fi
`,
  test: `${SHEBANG}${SOURCE_ENV}if [ -n "\${SCIF_APPNAME:-}" ] && [ -x "/scif/apps/\${SCIF_APPNAME}/scif/test" ]; then
    exec "/scif/apps/\${SCIF_APPNAME}/scif/test" "$@"
fi
if [ -x /.singularity.d/test ]; then exec /.singularity.d/test "$@"; fi
echo "No test script found in the container, exiting" >&2
exit 0
`,
};

const SYMLINKS: [string, string][] = [
  ['singularity', '.singularity.d/runscript'],
  ['.run', '.singularity.d/actions/run'],
  ['.exec', '.singularity.d/actions/exec'],
  ['.shell', '.singularity.d/actions/shell'],
  ['.test', '.singularity.d/actions/test'],
  ['environment', '.singularity.d/env/90-environment.sh'],
];

const DEFAULT_RUNSCRIPT = `${SHEBANG}\necho "There is no runscript defined for this container"\n`;

function writeIfMissing(file: string, text: string, mode: number): void {
  if (!fs.existsSync(file)) fs.writeFileSync(file, text, { mode });
}

/**
 * The host path of an in-image path, resolving symlinks component by component as if the rootfs were `/`: a base
 * image is untrusted, and a `/.singularity.d -> /etc` symlink in it must not turn our writes into host writes.
 * Components that do not exist yet are taken as written.
 */
export function inRootfs(rootfs: string, p: string): string {
  const pending = p.split('/').filter(c => c !== '' && c !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (pending.length) {
    const c = pending.shift()!;
    if (c === '..') {
      resolved.pop();
      continue;
    }
    const host = path.join(rootfs, ...resolved, c);
    let target: string | undefined;
    try {
      if (fs.lstatSync(host).isSymbolicLink()) target = fs.readlinkSync(host);
    } catch {
      target = undefined;
    }
    if (target === undefined) {
      resolved.push(c);
      continue;
    }
    if (++links > 40)
      throw new RuntimeError(`too many levels of symbolic links resolving ${p} in the image`, { op: 'resolve', path: p, errno: 'ELOOP' });
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/').filter(t => t !== '' && t !== '.'));
  }
  return path.join(rootfs, ...resolved);
}

export function isDirectory(p: string): boolean {
  try {
    return fs.lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Moves a tree staged outside the rootfs into it, the way a layer applies: a directory merges into an existing
 * one (also one reached through a symlink, resolved inside the rootfs, so usr-merged images keep /bin ->
 * usr/bin), anything else replaces what was there. Writing into the rootfs only through inRootfs() paths is
 * what keeps a symlink planted by a base image from sending root's writes to the host. Existing directories
 * take the staged owner and mode only with adoptDirMetadata (a layer says what they are; %files does not).
 */
export function moveTreeInto(staging: string, rootfs: string, opts: { adoptDirMetadata: boolean }, rel = ''): void {
  const parent = inRootfs(rootfs, rel);
  for (const name of fs.readdirSync(path.join(staging, rel))) {
    const from = path.join(staging, rel, name);
    const to = path.join(parent, name);
    const st = fs.lstatSync(from);
    let existing: fs.Stats | undefined;
    try {
      existing = fs.lstatSync(to);
    } catch {
      existing = undefined;
    }
    const relPath = path.posix.join(rel, name);
    const mergeInto = st.isDirectory() && existing ? inRootfs(rootfs, relPath) : undefined;
    if (existing && !(mergeInto && isDirectory(mergeInto))) {
      fs.rmSync(to, { recursive: true, force: true });
      existing = undefined;
    }
    if (!existing) {
      fs.renameSync(from, to);
      continue;
    }
    if (opts.adoptDirMetadata) {
      fs.chownSync(mergeInto!, st.uid, st.gid);
      fs.chmodSync(mergeInto!, st.mode & 0o7777);
    }
    moveTreeInto(staging, rootfs, opts, relPath);
  }
}

/** The skeleton: mount points, /.singularity.d, base env and action scripts, symlinks. Existing files stay. */
export function makeSkeleton(rootfs: string): void {
  for (const dir of SKELETON_DIRS) fs.mkdirSync(inRootfs(rootfs, dir), { recursive: true, mode: 0o755 });
  fs.chmodSync(inRootfs(rootfs, 'tmp'), 0o1777);
  fs.chmodSync(inRootfs(rootfs, 'var/tmp'), 0o1777);
  for (const [name, text] of Object.entries(BASE_ENV)) writeIfMissing(inRootfs(rootfs, `.singularity.d/env/${name}`), text, 0o755);
  // Action scripts are ours to keep current: an old image's copies are replaced.
  for (const [name, text] of Object.entries(ACTIONS))
    fs.writeFileSync(inRootfs(rootfs, `.singularity.d/actions/${name}`), text, { mode: 0o755 });
  writeIfMissing(inRootfs(rootfs, '.singularity.d/runscript'), DEFAULT_RUNSCRIPT, 0o755);
  // An instance of an image without %startscript runs this empty one.
  writeIfMissing(inRootfs(rootfs, '.singularity.d/startscript'), SHEBANG, 0o755);
  for (const [link, target] of SYMLINKS) {
    const at = path.join(rootfs, link);
    let present = true;
    try {
      fs.lstatSync(at);
    } catch {
      present = false;
    }
    if (!present) fs.symlinkSync(target, at);
  }
}

/** A script section as written into the image: its own `#!` line kept, else /bin/sh's. */
export function scriptText(body: string): string {
  const trimmed = body.replace(/^\s*\n/, '');
  return trimmed.trimStart().startsWith('#!') ? `${trimmed.trimStart()}\n` : `${SHEBANG}\n${body}\n`;
}

/** The labels of the image (JSON object in labels.json), or {} when it has none or they are unreadable. */
export function readLabels(file: string): Record<string, string> {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/** Singularity's build-date label format, e.g. `Sunday_22_November_2026_3:40:0_UTC`. */
export function buildDate(now: Date): string {
  const days = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
  const months = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
  return `${days[now.getUTCDay()]}_${now.getUTCDate()}_${months[now.getUTCMonth()]}_${now.getUTCFullYear()}_${now.getUTCHours()}:${now.getUTCMinutes()}:${now.getUTCSeconds()}_UTC`;
}

/** Keeps the previous definition file of an image built on another one as bootstrap_history/SingularityN. */
export function recordDefFile(rootfs: string, raw: string): void {
  const file = inRootfs(rootfs, '.singularity.d/Singularity');
  if (fs.existsSync(file)) {
    const history = inRootfs(rootfs, '.singularity.d/bootstrap_history');
    fs.mkdirSync(history, { recursive: true, mode: 0o755 });
    let n = 0;
    while (fs.existsSync(path.join(history, `Singularity${n}`))) n++;
    fs.renameSync(file, path.join(history, `Singularity${n}`));
  }
  fs.writeFileSync(file, raw, { mode: 0o644 });
}

/** What `inspect --json` shows and the SIF's inspect-metadata.json object holds. */
export function inspectMetadata(rootfs: string): Record<string, unknown> {
  const read = (p: string) => {
    try {
      return fs.readFileSync(inRootfs(rootfs, p), 'utf8');
    } catch {
      return undefined;
    }
  };
  const envDir = inRootfs(rootfs, '.singularity.d/env');
  const environment: Record<string, string> = {};
  for (const name of fs.existsSync(envDir) ? fs.readdirSync(envDir).sort() : []) {
    const text = read(`.singularity.d/env/${name}`);
    if (text !== undefined) environment[`/.singularity.d/env/${name}`] = text;
  }
  const appsDir = inRootfs(rootfs, 'scif/apps');
  const apps = fs.existsSync(appsDir) ? fs.readdirSync(appsDir).sort() : [];
  const attributes: Record<string, unknown> = {
    labels: readLabels(inRootfs(rootfs, '.singularity.d/labels.json')),
    environment,
    runscript: read('.singularity.d/runscript'),
    startscript: read('.singularity.d/startscript'),
    test: read('.singularity.d/test'),
    helpfile: read('.singularity.d/runscript.help'),
    deffile: read('.singularity.d/Singularity'),
    apps: apps.length ? apps.join(',') : undefined,
  };
  for (const key of Object.keys(attributes)) if (attributes[key] === undefined) delete attributes[key];
  return { data: { attributes }, type: 'container' };
}
