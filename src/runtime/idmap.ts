// User namespace id maps, written by the runtime: the container's own (its new user namespace waits for them),
// and those of idmapped mounts, which need a user namespace carrying each mount's maps. The runtime makes one
// per distinct set of maps (through the addon: a short-lived clone holds it while the maps are written) and
// hands the fds to the executor in the plan; the caller closes them once the executor has been spawned.
import { spawnSync } from 'node:child_process';
import { RuntimeError, fromSystemError } from '../errors.js';
import { native } from '../native.js';
import { PlanFlag, type CreatePlan, type IdMapping } from '../plan/types.js';

/** uid_map/gid_map text: one "inside outside count" line per mapping. */
const mapText = (maps: IdMapping[]) => maps.map(m => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');

/** Writes the new user namespace's maps the way the plan decided: directly, or through newuidmap/newgidmap. */
export function writeIdMaps(pid: number, plan: CreatePlan): void {
  const { uidMappings, gidMappings, idMapsDirect } = plan.parent;
  const helper = (tool: string, maps: IdMapping[]) => {
    const args = [String(pid), ...maps.flatMap(m => [String(m.containerID), String(m.hostID), String(m.size)])];
    const r = spawnSync(tool, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.error || r.status !== 0) {
      const why = r.error
        ? (r.error as NodeJS.ErrnoException).code === 'ENOENT'
          ? `${tool} not found (install the uidmap package)`
          : r.error.message
        : r.stderr.toString().trim();
      throw new RuntimeError(`failed to write user namespace mappings with ${tool}: ${why}`, { op: 'userns' });
    }
  };
  const write = (file: string, data: string) => {
    try {
      native().procWrite(pid, file, data);
    } catch (e) {
      throw fromSystemError('write', `/proc/${pid}/${file}`, e);
    }
  };
  if (idMapsDirect.uid) write('uid_map', mapText(uidMappings));
  else helper('newuidmap', uidMappings);
  if (idMapsDirect.gid) {
    if (!(plan.flags & PlanFlag.setgroups)) write('setgroups', 'deny');
    write('gid_map', mapText(gidMappings));
  } else {
    helper('newgidmap', gidMappings);
  }
}

/**
 * A user namespace for every idmapped step, in step order (PlanFds.userns; steps with the same maps share
 * one), and the distinct fds made, which the caller closes.
 */
export function makeIdmapNamespaces(plan: CreatePlan): { userns: number[]; made: number[] } {
  const made = new Map<string, number>();
  const userns: number[] = [];
  try {
    for (const step of plan.container.steps) {
      if (!step.idmap) continue;
      const uid = mapText(step.idmap.uidMappings);
      const gid = mapText(step.idmap.gidMappings);
      const key = `${uid}/${gid}`;
      let fd = made.get(key);
      if (fd === undefined) {
        try {
          fd = native().idmapUserns(uid, gid);
        } catch (e) {
          throw new RuntimeError(
            `mount ${JSON.stringify(step.source)} to rootfs at ${JSON.stringify(step.dest)}: idmapped mount: ${(e as Error).message}`,
            { op: 'mount', errno: (e as NodeJS.ErrnoException).code },
          );
        }
        made.set(key, fd);
      }
      userns.push(fd);
    }
  } catch (e) {
    for (const fd of made.values()) native().closeFd(fd);
    throw e;
  }
  return { userns, made: [...made.values()] };
}
