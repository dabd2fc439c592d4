// A group of the ABI table as the names both languages define: hack/gen-abi.ts writes them, and
// test/unit/abi.test.ts reads them back from the generated header and module to compare.
import type { AbiGroup, AbiScalar } from './table.js';

/** Every group flattened to names and values, with the layouts' offsets and the slots' indexes worked out. */
export function flatten(g: AbiGroup): {
  scalars: [string, AbiScalar][];
  strings: [string, readonly string[]][];
  numbers: [string, readonly number[]][];
} {
  const scalars: [string, AbiScalar][] = Object.entries(g.constants ?? {}).map(([k, v]) => [g.prefix + k, v]);
  let off = 0;
  for (const [name, size] of g.layout ?? []) {
    scalars.push([`${g.prefix}OFF_${name}`, off], [`${g.prefix}SIZE_${name}`, size]);
    off += size;
  }
  if (g.layout) scalars.push([`${g.prefix}HEADER_SIZE`, off]);
  if (g.slots) {
    for (const [i, name] of g.slots.entries()) scalars.push([`${g.prefix}SLOT_${name}`, i]);
    scalars.push([`${g.prefix}SLOT_COUNT`, g.slots.length], [`${g.prefix}SLOT_SIZE`, 8]);
    scalars.push([`${g.prefix}DATA_OFF`, off + g.slots.length * 8]);
  }
  const strings = Object.entries(g.strings ?? {}).map(([k, v]) => [g.prefix + k, v] as [string, readonly string[]]);
  const numbers = Object.entries(g.numbers ?? {}).map(([k, v]) => [g.prefix + k, v] as [string, readonly number[]]);
  return { scalars, strings, numbers };
}
