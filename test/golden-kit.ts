// Golden files: a value serialised stably (keys sorted) and compared with test/unit/golden/<name>.json; written
// instead when UPDATE_GOLDEN=1 is set, a missing file a failure otherwise. (Beside helpers.ts, not under
// test/unit/, so tap never runs it as a test.)
import type { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const GOLDEN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'unit', 'golden');
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';

/** Stable JSON: object keys sorted, bigints as decimal strings, byte arrays as hex. */
function stable(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (Array.isArray(value)) return value.map(stable);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = stable(v);
    }
    return out;
  }
  return value;
}

/** Compares `value` with golden/<name>.json (`name` may hold a subdirectory); `what` names the value in the assertion. */
export function golden(t: Test, name: string, value: unknown, what = 'plan'): void {
  const file = path.join(GOLDEN, `${name}.json`);
  const actual = `${JSON.stringify(stable(value), null, 2)}\n`;
  if (UPDATE) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, actual);
    t.pass(`wrote ${path.relative(process.cwd(), file)}`);
    return;
  }
  if (!fs.existsSync(file)) {
    t.fail(`golden file ${file} is missing: run with UPDATE_GOLDEN=1 to create it`);
    return;
  }
  t.equal(actual, fs.readFileSync(file, 'utf8'), `${what} matches golden/${name}.json`);
}
