// One container's session: everything tsrt-singularity makes on the host for it, in one place, each step's
// undoing on one list. In order: the image is opened (mounted when it must be), the --overlay layers are made
// available (overlay images mounted, the writable one's lock taken), the spec is built (spec.ts, pure), and only
// then the session directory is made in the runtime directory, with what the spec needs there (upper and work
// directories, the passwd and group files, resolv.conf, --contain's directories), the network helpers started
// and config.json written. A failure at any point undoes what was made; so does the end of the session.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import type { Spec } from '../index.js';
import { mountImage } from '../sif/mount.js';
import { openPrivateDir, verifiedRuntimeDir, type PrivateDir } from '../private-dir.js';
import type { Action } from './environment.js';
import { gatherHostFacts, imageFacts, type ImageFacts, type OverlayFacts } from './host.js';
import { resolveImage, type ResolvedImage } from './image.js';
import { startPasta } from './network.js';
import { shareUserNamespace } from './sharens.js';
import type { ActionOptions } from './options.js';
import { acquireOverlayLock } from './overlay-lock.js';
import { siteConfig } from './siteconfig.js';
import { checkImageAllowed, restrictOptions } from './sitepolicy.js';
import { buildSpec, checkRequest, overlayRoot, type Effects } from './spec.js';
import { Undo } from './undo.js';

const NO_RUNTIME_DIR =
  'tsrt-singularity keeps its sessions and instances in $XDG_RUNTIME_DIR/tsrt-singularity: set XDG_RUNTIME_DIR to a directory of yours with mode 0700 (a login session has /run/user/<uid>)';

let runtime: PrivateDir | undefined;

/**
 * $XDG_RUNTIME_DIR/tsrt-singularity: sessions, tsrt state and instances. Both verified (R9: the caller's own,
 * not writable by others, reached only through directories root or the caller controls), so no one else can
 * plant or swap a session's config.json or an instance record there. There is no fallback: a fixed
 * name in /tmp is one any other user can make first.
 */
export function runtimeDir(): string {
  runtime ??= openPrivateDir(path.join(runtimeParent(), 'tsrt-singularity'), {
    what: 'runtime directory',
    create: true,
    trustedPath: true,
    fix: 'remove it, or use another XDG_RUNTIME_DIR',
  });
  return runtime.path;
}

/**
 * Root without a login session (a batch job's prolog, cron, sudo) has /run, which only root can write, as runc
 * and tsrt itself do; everyone else needs their own $XDG_RUNTIME_DIR.
 */
function runtimeParent(): string {
  if (process.geteuid!() === 0 && !process.env['XDG_RUNTIME_DIR']) return '/run';
  return verifiedRuntimeDir(process.env, NO_RUNTIME_DIR);
}

export function stateRoot(): string {
  return path.join(runtimeDir(), 'tsrt');
}

export interface Session {
  dir: string;
  id: string;
  spec: Spec;
  image: ResolvedImage;
  /** Everything made for the session, undone newest first when it ends (removeSession). */
  undo: Undo;
}

export interface LaunchRequest {
  image: string;
  action: Action;
  /** The command (exec) or the arguments (run, test, shell, start). */
  args: string[];
  options: ActionOptions;
  warn: (m: string) => void;
  info: (m: string) => void;
  /** Container id; a fresh one when not given. */
  id?: string;
  extraEnv?: Record<string, string>;
}

/** An overlay directory as given, or an overlay image (ext3) mounted by the SIF library where the host allows. */
function overlayDirectory(file: string, readonly: boolean, info: (m: string) => void, undo: Undo): string {
  if (!fs.existsSync(file))
    throw new RuntimeError(`overlay ${file}: no such file or directory`, { op: 'overlay', path: file, errno: 'ENOENT' });
  if (fs.statSync(file).isDirectory()) return file;
  try {
    const m = mountImage(file, { writable: !readonly, log: info });
    undo.push(() => m.release());
    return m.dir;
  } catch (e) {
    throw new RuntimeError(
      `overlay image ${file} cannot be mounted here (${(e as Error).message}); without root, use a directory overlay`,
      { op: 'mount', path: file, cause: e },
    );
  }
}

/** The --overlay layers as directories; the writable one is claimed (one writer per overlay, overlay-lock.ts). */
function prepareOverlays(o: ActionOptions, info: (m: string) => void, undo: Undo): OverlayFacts[] {
  return o.overlays.map(ov => {
    const dir = overlayDirectory(path.resolve(ov.path), ov.readonly, info, undo);
    if (!ov.readonly) {
      const lock = acquireOverlayLock(dir);
      undo.push(() => lock.release());
    }
    return { dir, readonly: ov.readonly, hasUpper: fs.existsSync(path.join(dir, 'upper')) };
  });
}

/** A failed host call, typed, with Node's message as users have always seen it. */
function systemError(op: string, file: string, e: unknown): RuntimeError {
  return new RuntimeError((e as Error).message, { op, path: file, errno: (e as NodeJS.ErrnoException).code ?? '', cause: e });
}

function writeFile(file: string, text: string, mode?: number): void {
  try {
    fs.writeFileSync(file, text, mode === undefined ? undefined : { mode });
  } catch (e) {
    throw systemError('write', file, e);
  }
}

/** Makes what the spec needs on the host (the session's files, --contain's directories). */
function applyEffects(effects: Effects): void {
  for (const d of effects.dirs) {
    try {
      fs.mkdirSync(d.path, { recursive: true, ...(d.mode === undefined ? {} : { mode: d.mode }) });
    } catch (e) {
      throw systemError('mkdir', d.path, e);
    }
  }
  for (const f of effects.files) writeFile(f.path, f.text, 0o644);
}

/** The session directory, removed last; the overlay's upper layer there may hold files the container made read-only. */
function makeSessionDir(dir: string, undo: Undo): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw systemError('mkdir', dir, e);
  }
  undo.push(() => {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // Without CAP_DAC_OVERRIDE (an unprivileged user) a directory left without write or search permission
      // stops the removal; the chmod child is started only then, not at the end of every session.
      spawnSync('chmod', ['-R', 'u+rwX', dir], { stdio: 'ignore' });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

function openWith(req: LaunchRequest, image: ResolvedImage, facts: ImageFacts, undo: Undo): Session {
  const o = req.options;
  checkRequest(o, facts);
  const site = siteConfig();
  const overlays = overlayRoot(o, { site }) ? prepareOverlays(o, req.info, undo) : [];
  const id = req.id ?? `sing-${process.pid}-${randomBytes(4).toString('hex')}`;
  const dir = path.join(runtimeDir(), 'sessions', id);
  const host = gatherHostFacts(o, site, req.warn);
  const { spec, effects } = buildSpec(req, facts, host, dir, overlays);
  makeSessionDir(dir, undo);
  applyEffects(effects);
  if (effects.sharens) {
    shareUserNamespace(spec, {
      ...effects.sharens,
      image: image.path,
      runtimeDir: runtimeDir(),
      session: dir,
      releases: undo,
      warn: req.warn,
      info: req.info,
    });
  }
  if (effects.pasta) startPasta(spec, effects.pasta, dir, undo);
  writeFile(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return { dir, id, spec, image, undo };
}

/** Makes the session for one container: its directory, with config.json. The caller runs it and removes the session. */
export function prepare(given: LaunchRequest): Session {
  const site = siteConfig();
  checkImageAllowed(site, given.image);
  const req = { ...given, options: restrictOptions(site, given.options, given) };
  const undo = new Undo();
  const image = resolveImage(req.image, req.info);
  undo.push(() => image.release());
  try {
    return openWith(req, image, imageFacts(image), undo);
  } catch (e) {
    try {
      undo.run();
    } catch {
      /* the failure that stopped the session is the one to report */
    }
    throw e;
  }
}

/** Ends a session: everything made for it is undone, the session directory last. */
export function removeSession(s: Session): void {
  s.undo.run();
}
