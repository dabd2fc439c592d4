// runc's conversions between the v1 units of linux.resources and what cgroup2 and systemd take (pure), and the
// error for a resource value that cannot be taken, which names the field.
import { RuntimeError } from '../errors.js';

/** `linux.resources.<resource>: <why>`, with the field's JSON pointer in `path`. */
export function resourceError(resource: string, why: string): RuntimeError {
  return new RuntimeError(`linux.resources.${resource}: ${why}`, {
    op: 'cgroup',
    path: `/linux/resources/${resource.replaceAll('.', '/')}`,
  });
}

/** runc's conversion of cpu.shares (2..262144) to cpu.weight (1..10000). */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  const s = Math.min(Math.max(shares, 2), 262144);
  return 1 + Math.floor(((s - 2) * 9999) / 262142);
}

/** blkio.weight (10..1000) to io.weight (1..10000). */
export function blkioToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  const w = Math.min(Math.max(weight, 10), 1000);
  return 1 + Math.floor(((w - 10) * 9999) / 990);
}

/** v1's memory+swap limit to cgroup2's swap-only memory.swap.max (-1 = max, 0 = leave alone). */
export function swapToV2(swap: number, limit: number): number {
  if (limit === -1 && swap === 0) return -1;
  if (swap === -1 || swap === 0) return swap;
  if (limit === 0 || limit === -1) throw resourceError('memory.swap', 'a swap limit needs a memory limit');
  if (swap < limit) throw resourceError('memory.swap', `memory+swap limit (${swap}) must be >= memory limit (${limit})`);
  return swap - limit;
}
