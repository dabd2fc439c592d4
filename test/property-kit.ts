// A seeded random source for the property tests: the same seed gives the same inputs, so a failure replays.
// (Beside helpers.ts, not under test/unit/, so tap never runs it as a test.)

export interface Random {
  /** An integer in [0, n). */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
}

/** mulberry32: small, fast and well spread for test inputs (not for anything secret). */
export function random(seed: number): Random {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: n => Math.floor(next() * n),
    pick: items => items[Math.floor(next() * items.length)]!,
  };
}
