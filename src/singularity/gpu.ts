// --nv and --rocm: the host's GPU driver libraries (found through `ldconfig -p`, matched by name prefix
// against a library list) are bound into /.singularity.d/libs, which the action script puts on
// LD_LIBRARY_PATH; driver programs are found on $PATH and bound into /usr/bin; device nodes come with the host
// /dev, or are bound one by one under --contain.
//
// The lists and the ldconfig program can be replaced from $TSRT_SINGULARITY_CONFDIR (default
// /etc/tsrt-singularity): nvliblist.conf / rocmliblist.conf (one name per line, # comments) and
// singularity.conf's `ldconfig path = /sbin/ldconfig` line, as Singularity's own configuration does.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Mount } from '../spec/types.gen.js';

const NV_LIST = [
  'nvidia-smi', 'nvidia-debugdump', 'nvidia-persistenced', 'nvidia-cuda-mps-control', 'nvidia-cuda-mps-server',
  'libcuda.so', 'libcudadebugger.so', 'libEGL_nvidia.so', 'libGLESv1_CM_nvidia.so', 'libGLESv2_nvidia.so',
  'libGLX_nvidia.so', 'libnvcuvid.so', 'libnvidia-allocator.so', 'libnvidia-cfg.so', 'libnvidia-compiler.so',
  'libnvidia-eglcore.so', 'libnvidia-encode.so', 'libnvidia-fbc.so', 'libnvidia-glcore.so', 'libnvidia-glsi.so',
  'libnvidia-glvkspirv.so', 'libnvidia-gpucomp.so', 'libnvidia-ml.so', 'libnvidia-nvvm.so', 'libnvidia-opencl.so',
  'libnvidia-opticalflow.so', 'libnvidia-ptxjitcompiler.so', 'libnvidia-rtcore.so', 'libnvidia-tls.so',
  'libnvoptix.so', 'libOpenCL.so', 'libvdpau_nvidia.so',
];
const ROCM_LIST = [
  'rocm-smi', 'rocminfo', 'libamd_comgr.so', 'libamdhip64.so', 'libdrm_amdgpu.so', 'libdrm.so', 'libhsa-runtime64.so',
  'libhsakmt.so', 'libMIOpen.so', 'librocm_smi64.so', 'librocblas.so', 'libOpenCL.so',
];

export function confDir(): string {
  return process.env['TSRT_SINGULARITY_CONFDIR'] || '/etc/tsrt-singularity';
}

function libraryList(file: string, builtin: string[]): string[] {
  try {
    return fs.readFileSync(path.join(confDir(), file), 'utf8').split('\n').map(l => l.replace(/#.*/, '').trim()).filter(Boolean);
  } catch {
    return builtin;
  }
}

function ldconfigPath(): string {
  try {
    const conf = fs.readFileSync(path.join(confDir(), 'singularity.conf'), 'utf8');
    const m = /^\s*ldconfig path\s*=\s*(\S+)/m.exec(conf);
    if (m) return m[1]!;
  } catch {
    /* no configuration: the system's */
  }
  return fs.existsSync('/sbin/ldconfig') ? '/sbin/ldconfig' : 'ldconfig';
}

/** `ldconfig -p` lines "\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/.../libcuda.so.1", this machine's ABI only. */
export function parseLdconfig(output: string, arch = process.arch): { name: string; file: string }[] {
  const abi = arch === 'x64' ? 'x86-64' : arch === 'arm64' ? 'AArch64' : undefined;
  const out: { name: string; file: string }[] = [];
  for (const line of output.split('\n')) {
    const m = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)/.exec(line);
    if (!m) continue;
    // ldconfig marks 64-bit x86 and arm libraries; an unmarked "libc6" entry is the 32-bit (i386/arm) one.
    if (abi && !m[2]!.split(',').includes(abi)) continue;
    out.push({ name: m[1]!, file: m[3]! });
  }
  return out;
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function ro(source: string, destination: string): Mount {
  return { destination, type: 'bind', source, options: ['bind', 'nosuid', 'nodev', 'ro'] };
}

function vendorMounts(vendor: string, list: string[], devices: string[], contain: boolean, warn: (m: string) => void): Mount[] {
  const mounts: Mount[] = [];
  const r = spawnSync(ldconfigPath(), ['-p'], { encoding: 'utf8' });
  const cache = r.status === 0 ? parseLdconfig(r.stdout) : [];
  const seen = new Set<string>();
  for (const name of list) {
    if (name.includes('.so')) {
      for (const lib of cache) {
        if (!lib.name.startsWith(name) || seen.has(lib.name) || !fs.existsSync(lib.file)) continue;
        seen.add(lib.name);
        mounts.push(ro(fs.realpathSync(lib.file), `/.singularity.d/libs/${lib.name}`));
      }
    } else {
      const bin = findOnPath(name);
      if (bin) mounts.push(ro(fs.realpathSync(bin), `/usr/bin/${name}`));
    }
  }
  if (contain) {
    for (const dev of devices) {
      const dir = path.dirname(dev);
      const base = path.basename(dev);
      let names: string[] = [];
      try {
        names = fs.readdirSync(dir).filter(n => n === base || (base.endsWith('*') && n.startsWith(base.slice(0, -1))));
      } catch {
        continue;
      }
      for (const n of names) mounts.push({ destination: path.join(dir, n), type: 'bind', source: path.join(dir, n), options: ['rbind', 'nosuid'] });
    }
  }
  if (mounts.length === 0) warn(`could not find any ${vendor} driver libraries or programs on this host`);
  return mounts;
}

export function gpuMounts(o: { nv: boolean; rocm: boolean; contain: boolean; warn: (m: string) => void }): Mount[] {
  const mounts: Mount[] = [];
  if (o.nv) mounts.push(...vendorMounts('NVIDIA', libraryList('nvliblist.conf', NV_LIST), ['/dev/nvidia*'], o.contain, o.warn));
  if (o.rocm) mounts.push(...vendorMounts('ROCm', libraryList('rocmliblist.conf', ROCM_LIST), ['/dev/kfd', '/dev/dri'], o.contain, o.warn));
  // The same library may be listed by both vendors (libOpenCL): bind it once.
  const seen = new Set<string>();
  return mounts.filter(m => !seen.has(m.destination) && seen.add(m.destination));
}
