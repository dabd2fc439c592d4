// --sharens (Apptainer's name): the ranks of one job on a node run in one user namespace, so that Open MPI's
// single-copy shared memory (CMA, process_vm_readv between ranks) works. The kernel lets a process read
// another's memory when both are in the same user namespace (with no capability the other lacks) or when it
// holds CAP_SYS_PTRACE over the other's: with a user namespace per rank, as every unprivileged container has,
// CMA fails with EPERM and Open MPI has to be told not to use it.
//
// The first rank of a job on the node starts a holder of the namespace (./ns-holder.ts) with the container's
// id maps and records it; the others join it by path. A job is Open MPI's (PMIX_NAMESPACE, the ess job id) or
// a Slurm step (SLURM_JOB_ID.SLURM_STEP_ID): under either, the ranks share unless --sharens=false (or
// SINGULARITY_SHARENS=false). Asked for outside a job, the containers started by one parent process share, as
// Apptainer's --sharens does.
//
// Records are keyed by the job, the image and the id maps, in the user's runtime directory (R9), read and written
// under one lock. A record is used only while its holder is still the process that made the namespace (the
// same start time and namespace inode). The holder lives as long as the run that made it: the ranks that joined
// keep the namespace alive, and a rank that starts after that run ended makes a new one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nodeCrypto } from '../lazy-crypto.js';
import { native } from '../native.js';
import { openOwnFile, openPrivateDir, type PrivateDir } from '../private-dir.js';
import { procStat, type Spec } from '../index.js';
import { startNamespaceHolder, type IdMaps } from './ns-holder.js';
import type { Undo } from './undo.js';

const { O_RDONLY, O_RDWR, O_WRONLY, O_CREAT, O_TRUNC } = fs.constants;

/** The job this process is a rank of, from what Open MPI and Slurm put in every rank's environment. */
export function jobOf(env: NodeJS.ProcessEnv): string | undefined {
  const mpi = env['PMIX_NAMESPACE'] || env['OMPI_MCA_ess_base_jobid'] || env['OMPI_MCA_orte_ess_jobid'];
  if (mpi) return `mpi:${mpi}`;
  if (env['SLURM_JOB_ID'] && env['SLURM_STEP_ID']) return `slurm:${env['SLURM_JOB_ID']}.${env['SLURM_STEP_ID']}`;
  return undefined;
}

/**
 * What the containers that share a namespace with this one have in common, or undefined when it has one of its
 * own: the job under MPI or Slurm (unless `sharens` is false), else, with `sharens`, the parent process.
 */
export function shareGroup(sharens: boolean | undefined, env: NodeJS.ProcessEnv = process.env, ppid = process.ppid): string | undefined {
  if (sharens === false) return undefined;
  const job = jobOf(env);
  if (job) return job;
  return sharens ? `parent:${ppid}:${procStat(ppid)?.startTime ?? ''}` : undefined;
}

interface HolderRecord {
  pid: number;
  startTime: string;
  /** readlink of its /proc/PID/ns/user: user:[inode]. */
  ns: string;
}

/** The holder the record names, when it is still that process in that namespace. */
function liveHolder(rec: Partial<HolderRecord> | undefined): number | undefined {
  if (!rec || typeof rec.pid !== 'number' || !(rec.pid > 0)) return undefined;
  const st = procStat(rec.pid);
  if (!st || st.state === 'Z' || st.state === 'X' || st.startTime !== rec.startTime) return undefined;
  try {
    return fs.readlinkSync(`/proc/${rec.pid}/ns/user`) === rec.ns ? rec.pid : undefined;
  } catch {
    return undefined;
  }
}

function readRecord(dir: PrivateDir, name: string): Partial<HolderRecord> | undefined {
  let fd: number;
  try {
    fd = openOwnFile(dir, name, O_RDONLY);
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(fs.readFileSync(fd, 'utf8')) as Partial<HolderRecord>;
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Runs `fn` holding the lock every record is read and written under. */
function locked<T>(dir: PrivateDir, fn: () => T): T {
  const lock = openOwnFile(dir, 'lock', O_RDWR | O_CREAT);
  try {
    native().flock(lock, true, true);
    return fn();
  } finally {
    fs.closeSync(lock);
  }
}

export interface ShareRequest {
  /** The share group (shareGroup()). */
  group: string;
  /** Whether the user asked (an error then fails the run; otherwise it runs in a namespace of its own). */
  asked: boolean;
  image: string;
  /** $XDG_RUNTIME_DIR/tsrt-singularity (verified by the caller). */
  runtimeDir: string;
  session: string;
  releases: Undo;
  warn(m: string): void;
  info(m: string): void;
}

/**
 * Makes the spec's new user namespace the group's shared one: joined by path when a live holder is recorded,
 * else a holder started now (and recorded until this run ends). A spec without a new user namespace (root's)
 * is left as it is: root reads its ranks' memory anyway.
 */
export function shareUserNamespace(spec: Spec, r: ShareRequest): void {
  const linux = spec.linux!;
  const userns = linux.namespaces?.find(n => n.type === 'user');
  if (!userns || userns.path) return;
  try {
    const holder = sharedHolder(linux.uidMappings ?? [], linux.gidMappings ?? [], r);
    linux.namespaces = linux.namespaces!.map(n => (n.type === 'user' ? { type: 'user' as const, path: `/proc/${holder}/ns/user` } : n));
    delete linux.uidMappings;
    delete linux.gidMappings;
  } catch (e) {
    if (r.asked) throw e;
    r.warn(
      `the ranks of ${r.group} could not share a user namespace (${(e as Error).message}): this one has its own, so Open MPI's CMA will not work between them`,
    );
  }
}

function sharedHolder(uid: IdMaps, gid: IdMaps, r: ShareRequest): number {
  const dir = openPrivateDir(path.join(r.runtimeDir, 'sharens'), {
    what: 'shared namespace directory',
    create: true,
    trustedPath: true,
    fix: 'remove it, or use another XDG_RUNTIME_DIR',
  });
  try {
    const key = nodeCrypto()
      .createHash('sha256')
      .update(JSON.stringify([r.group, fs.realpathSync(r.image), uid, gid]))
      .digest('hex')
      .slice(0, 32);
    const name = `${key}.json`;
    return locked(dir, () => {
      const joined = liveHolder(readRecord(dir, name));
      if (joined !== undefined) {
        r.info(`--sharens: joining the user namespace of ${r.group} (held by pid ${joined})`);
        return joined;
      }
      const holder = startNamespaceHolder({
        net: false,
        uid,
        gid,
        errFile: path.join(r.session, 'sharens-holder.err'),
        releases: r.releases,
        purpose: { option: '--sharens', otherwise: 'use --sharens=false' },
        what: 'shared',
      });
      const rec: HolderRecord = {
        pid: holder,
        startTime: procStat(holder)?.startTime ?? '',
        ns: fs.readlinkSync(`/proc/${holder}/ns/user`),
      };
      const fd = openOwnFile(dir, name, O_WRONLY | O_CREAT | O_TRUNC);
      try {
        fs.writeFileSync(fd, JSON.stringify(rec));
      } finally {
        fs.closeSync(fd);
      }
      // Released before the holder is stopped (releases run in reverse): no rank is pointed at a dying holder.
      r.releases.push(() => forget(r.runtimeDir, name, holder));
      r.info(`--sharens: a new user namespace for ${r.group} (held by pid ${holder})`);
      return holder;
    });
  } finally {
    dir.close();
  }
}

/** Removes the record when it still names `holder`. */
function forget(runtimeDir: string, name: string, holder: number): void {
  const dir = openPrivateDir(path.join(runtimeDir, 'sharens'), { what: 'shared namespace directory', trustedPath: true });
  if (!dir) return;
  try {
    locked(dir, () => {
      if (readRecord(dir, name)?.pid === holder) fs.rmSync(dir.at(name), { force: true });
    });
  } finally {
    dir.close();
  }
}
