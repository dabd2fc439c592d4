// When the lifecycle hooks of a config run: a decision about the config (its runtime-spec version and which
// hooks it names), made with the rest of its plan.
import type { Spec } from '../spec/types.gen.js';

/**
 * Whether a config's runtime-spec version puts prestart hooks after `start` is called: 1.0.0 and 1.0.1 say
 * so, 1.0.2 moved them into `create` (before pivot_root). Pre-releases of 1.0.2 (the "1.0.2-dev" that
 * runc's `spec` and runtime-tools write) precede 1.0.2 by semver, so they keep the older timing.
 */
export function prestartRunsAtStart(ociVersion: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)(-[^+]*)?/.exec(ociVersion);
  if (!m) return false;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (major !== 1 || minor !== 0) return false;
  return patch < 2 || (patch === 2 && m[4] !== undefined);
}

/** prestart's timing, and whether the executor stops before pivot_root for the hooks that run there. */
export function hookTiming(spec: Spec): { prestartAtStart: boolean; prepivot: boolean } {
  const hooks = spec.hooks;
  const prestartAtStart = prestartRunsAtStart(spec.ociVersion);
  const prepivot = !!((!prestartAtStart && hooks?.prestart?.length) || hooks?.createRuntime?.length || hooks?.createContainer?.length);
  return { prestartAtStart, prepivot };
}
