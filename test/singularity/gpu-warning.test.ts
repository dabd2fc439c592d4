// --nv and --rocm on the host as it is: without the vendor's driver (its device node, or its user-mode driver
// libraries) they warn, naming what is missing, and the container still runs with whatever libraries of the
// list were found (the CUDA toolkit, the OpenCL loader and rocm-smi come without a driver). Each test says which
// branch this host took. Run as the unprivileged test user; what was bound is listed from inside.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

import { kit, sandbox } from '../singularity-run-kit.js';

const k = kit(t);
const image = sandbox(k);
const ldconfig = spawnSync(fs.existsSync('/sbin/ldconfig') ? '/sbin/ldconfig' : 'ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? '';

const VENDORS = [
  {
    flag: '--nv',
    name: 'NVIDIA',
    driver: /\blib(cuda|nvidia-ml)\.so/,
    device: '/dev/nvidiactl',
    missing: 'no /dev/nvidiactl device, no libcuda.so or libnvidia-ml.so',
  },
  {
    flag: '--rocm',
    name: 'ROCm',
    driver: /\blib(hsa-runtime64|amdhip64)\.so/,
    device: '/dev/kfd',
    missing: 'no /dev/kfd device, no libhsa-runtime64.so or libamdhip64.so',
  },
];

for (const v of VENDORS) {
  t.test(`${v.flag}: a warning when the host has no ${v.name} driver, a clean run when it has one`, async t => {
    const hasDriver = v.driver.test(ldconfig) || fs.existsSync(v.device);
    const r = k.sing(['exec', v.flag, image, 'sh', '-c', 'ls /.singularity.d/libs; echo ran']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /ran\n$/, 'the container runs either way');
    const bound = r.stdout.split('\n').slice(0, -2);
    if (hasDriver) {
      t.comment(`branch: this host has ${v.name} driver files`);
      t.notMatch(r.stderr, /could not find any/);
      t.ok(bound.length > 0, `the driver's libraries are bound: ${bound.join(', ')}`);
    } else {
      t.comment(`branch: this host has no ${v.name} driver (bound anyway: ${bound.join(', ') || 'nothing'})`);
      const warning = r.stderr.split('\n').find(l => l.startsWith('WARNING: '));
      t.equal(
        warning?.replace(/; binding what was found anyway: .*/, ''),
        `WARNING: could not find any ${v.name} driver on this host (${v.missing})`,
      );
      const named = /; binding what was found anyway: (.*)$/.exec(warning ?? '')?.[1]?.split(', ') ?? [];
      t.same(named.sort(), [...bound].sort(), 'it names what was bound, as listed inside');
    }
  });
}
