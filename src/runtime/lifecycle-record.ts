// The lifecycle record (<state dir>/<id>/lifecycle.bin, layout in src/native-abi/table.ts): what the C front
// door (native/frontdoor) needs for state, start, kill, delete and list, decided here at create so that it
// carries out no policy. It is written once, when create has finished, and removed with state.json; a
// container without one (still creating, made by an older tsrt) is handled by the core.
import * as path from 'node:path';
import type { CgroupManager } from '../cgroups/types.js';
import * as abi from '../native-abi/abi.gen.js';
import { FIFO_NAME, ociState, writeFileAtomic, type ContainerDir, type ContainerRecord } from './state.js';

export interface LifecycleRecord {
  version: number;
  flags: number;
  pid: number;
  startTime: bigint;
  slots: Record<string, string>;
}

/** FNV-1a, 32 bit, over `buf` with the checksum field read as zero. */
export function lifecycleChecksum(buf: Buffer): number {
  let h = abi.TSRT_LCR_FNV_OFFSET;
  for (let i = 0; i < buf.length; i++) {
    const inField = i >= abi.TSRT_LCR_OFF_CHECKSUM && i < abi.TSRT_LCR_OFF_CHECKSUM + abi.TSRT_LCR_SIZE_CHECKSUM;
    h = Math.imul(h ^ (inField ? 0 : buf[i]!), abi.TSRT_LCR_FNV_PRIME) >>> 0;
  }
  return h;
}

const SLOT_NAMES = Object.keys(abi)
  .filter(k => k.startsWith('TSRT_LCR_SLOT_') && k !== 'TSRT_LCR_SLOT_COUNT' && k !== 'TSRT_LCR_SLOT_SIZE')
  .map(k => k.slice('TSRT_LCR_SLOT_'.length));

export function encodeLifecycleRecord(r: LifecycleRecord): Buffer {
  const parts = SLOT_NAMES.map(name => Buffer.from(r.slots[name] ?? ''));
  const size = abi.TSRT_LCR_DATA_OFF + parts.reduce((n, p) => n + p.length, 0);
  if (size > abi.TSRT_LCR_MAX_SIZE) throw new Error(`lifecycle record of ${size} bytes is over ${abi.TSRT_LCR_MAX_SIZE}`);
  const buf = Buffer.alloc(size);
  buf.write(abi.TSRT_LCR_MAGIC, abi.TSRT_LCR_OFF_MAGIC, abi.TSRT_LCR_SIZE_MAGIC, 'latin1');
  buf.writeUInt32LE(r.version, abi.TSRT_LCR_OFF_VERSION);
  buf.writeUInt32LE(size, abi.TSRT_LCR_OFF_SIZE);
  buf.writeUInt32LE(r.flags, abi.TSRT_LCR_OFF_FLAGS);
  buf.writeInt32LE(r.pid, abi.TSRT_LCR_OFF_PID);
  buf.writeBigUInt64LE(r.startTime, abi.TSRT_LCR_OFF_START_TIME);
  let off = abi.TSRT_LCR_DATA_OFF;
  SLOT_NAMES.forEach((name, i) => {
    const at = abi.TSRT_LCR_HEADER_SIZE + ((abi as Record<string, unknown>)[`TSRT_LCR_SLOT_${name}`] as number) * abi.TSRT_LCR_SLOT_SIZE;
    buf.writeUInt32LE(off, at);
    buf.writeUInt32LE(parts[i]!.length, at + 4);
    parts[i]!.copy(buf, off);
    off += parts[i]!.length;
  });
  buf.writeUInt32LE(lifecycleChecksum(buf), abi.TSRT_LCR_OFF_CHECKSUM);
  return buf;
}

/** The pre-rendered state document around pid and status: head + pid + joiner + status + '"' + tail. */
function splitState(json: string, pidKey: string, pid: number, joiner: string): { head: string; tail: string } {
  const marker = `${pidKey}${pid}${joiner}created${abi.TSRT_LCR_STATUS_END}`;
  const at = json.indexOf(marker);
  if (at < 0) throw new Error(`lifecycle record: the state document has no ${JSON.stringify(marker)}`);
  return { head: json.slice(0, at + pidKey.length), tail: json.slice(at + marker.length) };
}

/** Whether every hook, host resource and cgroup manager is out of the way of a verb done without policy. */
function flagsOf(rec: ContainerRecord, cgroup: CgroupManager | undefined): number {
  const hooks = rec.hooks ?? {};
  let flags = 0;
  const startHooks = (rec.prestartAtStart && hooks.prestart?.length) || hooks.startContainer?.length || hooks.poststart?.length;
  if (!startHooks) flags |= abi.TSRT_LCR_FLAG_START;
  const hostResources = rec.netDevices || rec.resctrl || rec.rootfsMountedHere || rec.imageRootfs;
  const ownCgroupfs = !rec.cgroup || (!rec.cgroup.systemd && (!cgroup || cgroup.ownsCgroup()));
  if (!hooks.poststop?.length && !hostResources && ownCgroupfs) flags |= abi.TSRT_LCR_FLAG_DELETE;
  return flags;
}

export function lifecycleRecordOf(rec: ContainerRecord, cgroup: CgroupManager | undefined): LifecycleRecord {
  const shown = ociState(rec, 'created');
  const pretty = splitState(JSON.stringify(shown, null, 2), '"pid": ', rec.pid, abi.TSRT_LCR_PRETTY_STATUS);
  const compact = splitState(JSON.stringify(shown), '"pid":', rec.pid, abi.TSRT_LCR_COMPACT_STATUS);
  const facts = cgroup?.lifecycleFacts();
  return {
    version: abi.TSRT_LCR_VERSION,
    flags: flagsOf(rec, cgroup),
    pid: rec.pid,
    startTime: BigInt(rec.initStartTime || '0'),
    slots: {
      ID: rec.id,
      BUNDLE: rec.bundle,
      CREATED: rec.created,
      OWNER: rec.owner,
      PRETTY_HEAD: pretty.head,
      PRETTY_TAIL: pretty.tail,
      COMPACT_HEAD: compact.head,
      COMPACT_TAIL: compact.tail,
      FIFO: FIFO_NAME,
      FREEZER_FILE: facts?.freezer?.file ?? '',
      FREEZER_FROZEN: facts?.freezer?.frozen ?? '',
      PROCS_DIR: facts?.procsDir ?? '',
      CGROUP_REMOVE: (facts?.remove ?? []).map(r => `${r.leaf ? abi.TSRT_LCR_CGROUP_LEAF : abi.TSRT_LCR_CGROUP_PARENT}${r.dir}\0`).join(''),
    },
  };
}

/** Written by create once the container is complete (after its last state.json), atomically in the verified dir. */
export function writeLifecycleRecord(dir: ContainerDir, rec: ContainerRecord, cgroup: CgroupManager | undefined): void {
  writeFileAtomic(
    dir.at(abi.TSRT_LCR_FILE),
    encodeLifecycleRecord(lifecycleRecordOf(rec, cgroup)),
    0o600,
    path.join(dir.dir, abi.TSRT_LCR_FILE),
  );
}
