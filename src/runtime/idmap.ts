// Idmapped mounts need a user namespace carrying each mount's maps. The runtime makes one per distinct set of
// maps (through the addon: a short-lived clone holds it while the maps are written) and hands the fds to the
// executor in the plan; the caller closes them once the executor has been spawned.
import { RuntimeError } from '../errors.js';
import { native } from '../native.js';
import type { IdMapping, LaunchPlan } from '../plan/types.js';

const mapText = (maps: IdMapping[]) => maps.map(m => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');

/** Fills in usernsFd for every idmapped step; returns the fds made. */
export function makeIdmapNamespaces(plan: LaunchPlan): number[] {
  const made = new Map<string, number>();
  try {
    for (const step of plan.steps) {
      if (!step.idmap) continue;
      const uid = mapText(step.idmap.uidMappings);
      const gid = mapText(step.idmap.gidMappings);
      const key = `${uid}/${gid}`;
      let fd = made.get(key);
      if (fd === undefined) {
        try {
          fd = native().idmapUserns(uid, gid);
        } catch (e) {
          throw new RuntimeError(`mount ${JSON.stringify(step.source)} to rootfs at ${JSON.stringify(step.dest)}: idmapped mount: ${(e as Error).message}`,
            { op: 'mount', errno: (e as NodeJS.ErrnoException).code });
        }
        made.set(key, fd);
      }
      step.idmap.usernsFd = fd;
    }
  } catch (e) {
    for (const fd of made.values()) native().closeFd(fd);
    throw e;
  }
  return [...made.values()];
}
