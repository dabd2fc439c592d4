// The library surface, for programs (tsrt-singularity among them) that drive containers in-process.
export { RuntimeError, SpecError } from './errors.js';
export {
  create, start, run, kill, remove, state, pause, resume, update, containerCgroup, type CreateOptions, type RunOptions,
} from './runtime/container.js';
export { createCgroup, loadCgroup } from './cgroups/manager.js';
export type { CgroupManager, CgroupRecord } from './cgroups/types.js';
export { defaultRoot, listIds } from './runtime/state.js';
export { containerProcesses, filterPsOutput, psTable } from './runtime/ps.js';
export { containerStats, events, formatEvent, parseGoDuration, type ContainerEvent, type EventsOptions } from './runtime/events.js';
export { runcStats, oomKillCount, goJson, type RuncStats } from './cgroups/usage.js';
export { buildPlan } from './plan/build.js';
export { encodePlan } from './plan/codec.js';
export type { LaunchPlan } from './plan/types.js';
export { parseConfig, validateConfig } from './spec/validate.js';
export { specTemplate } from './spec/template.js';
export type { Spec, State } from './spec/types.gen.js';
export { main } from './cli/main.js';
