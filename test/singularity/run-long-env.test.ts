// Issue 18: tsrt-singularity passes the host environment into the container, and tsrt refused any value over
// 4096 bytes, so a user whose environment held one (Lmod's module tables, a long LS_COLORS; under Slurm the
// job's whole environment) could run no image at all: "FATAL: ... a value of 4367 bytes is longer than tsrt's
// limit of 4096". Both values arrive whole, in a sandbox and in a SIF.
import t from 'tap';
import { kit, sandbox, sif } from '../singularity-run-kit.js';

const k = kit(t);
const image = sandbox(k);
// Lmod splits its module table into _ModuleTable00N_ variables; the clone that failed had one of 4367 bytes.
const env = {
  _ModuleTable001_: 'X'.repeat(4367),
  BIG_JOB_VALUE: 'y'.repeat(100 * 1024),
};
const report = 'echo ${#_ModuleTable001_} ${#BIG_JOB_VALUE}; case "$BIG_JOB_VALUE" in *[!y]*) echo altered;; esac';
const expected = `4367 ${100 * 1024}\n`;

t.test('exec of a sandbox with a 4.3 KB and a 100 KB variable in the host environment', async t => {
  const r = k.sing(['exec', image, 'sh', '-c', report], { env });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, expected, 'both values arrive whole');
});

t.test('exec of a SIF with the same environment', async t => {
  const r = k.sing(['exec', sif(k, image), 'sh', '-c', report], { env });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, expected, 'both values arrive whole');
});
