// --nv and --rocm: the host's GPU driver libraries (found through `ldconfig -p`, matched by name prefix
// against a library list) are bound into /.singularity.d/libs, which the action script puts on
// LD_LIBRARY_PATH; driver programs are found on $PATH and bound into /usr/bin; device nodes come with the host
// /dev, or are bound one by one under --contain.
//
// The site can replace the lists and the ldconfig program (siteconfig.ts: /etc/tsrt-singularity):
// nvliblist.conf / rocmliblist.conf (one name per line, # comments) and singularity.conf's
// `ldconfig path = /sbin/ldconfig` line, as Singularity's own configuration does.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Mount } from '../index.js';
import { configDir, siteConfig } from './siteconfig.js';

const NV_LIST = [
  'nvidia-smi',
  'nvidia-debugdump',
  'nvidia-persistenced',
  'nvidia-cuda-mps-control',
  'nvidia-cuda-mps-server',
  'libcuda.so',
  'libcudadebugger.so',
  'libEGL_nvidia.so',
  'libGLESv1_CM_nvidia.so',
  'libGLESv2_nvidia.so',
  'libGLX_nvidia.so',
  'libnvcuvid.so',
  'libnvidia-allocator.so',
  'libnvidia-cfg.so',
  'libnvidia-compiler.so',
  'libnvidia-eglcore.so',
  'libnvidia-encode.so',
  'libnvidia-fbc.so',
  'libnvidia-glcore.so',
  'libnvidia-glsi.so',
  'libnvidia-glvkspirv.so',
  'libnvidia-gpucomp.so',
  'libnvidia-ml.so',
  'libnvidia-nvvm.so',
  'libnvidia-opencl.so',
  'libnvidia-opticalflow.so',
  'libnvidia-ptxjitcompiler.so',
  'libnvidia-rtcore.so',
  'libnvidia-tls.so',
  'libnvoptix.so',
  'libOpenCL.so',
  'libvdpau_nvidia.so',
];
const ROCM_LIST = [
  'rocm-smi',
  'rocminfo',
  'libamd_comgr.so',
  'libamdhip64.so',
  'libdrm_amdgpu.so',
  'libdrm.so',
  'libhsa-runtime64.so',
  'libhsakmt.so',
  'libMIOpen.so',
  'librocm_smi64.so',
  'librocblas.so',
  'libOpenCL.so',
];

function libraryList(file: string, builtin: string[]): string[] {
  try {
    return fs
      .readFileSync(path.join(configDir(), file), 'utf8')
      .split('\n')
      .map(l => l.replace(/#.*/, '').trim())
      .filter(Boolean);
  } catch {
    return builtin;
  }
}

function ldconfigPath(): string {
  return siteConfig().ldconfigPath ?? (fs.existsSync('/sbin/ldconfig') ? '/sbin/ldconfig' : 'ldconfig');
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

interface Vendor {
  name: string;
  listFile: string;
  builtin: string[];
  /** Device nodes bound one by one under --contain (a trailing * matches a prefix). */
  devices: string[];
  /**
   * What only a host with the vendor's driver has: its device node, or the user-mode driver libraries (the
   * device nodes may appear only when a first program loads them). The list also names libraries that come
   * without a driver (the CUDA toolkit's, the OpenCL loader, rocm-smi), so finding some proves nothing.
   */
  driverDevices: string[];
  driverLibraries: string[];
}

const NVIDIA: Vendor = {
  name: 'NVIDIA',
  listFile: 'nvliblist.conf',
  builtin: NV_LIST,
  devices: ['/dev/nvidia*'],
  driverDevices: ['/dev/nvidiactl'],
  driverLibraries: ['libcuda.so', 'libnvidia-ml.so'],
};
const ROCM: Vendor = {
  name: 'ROCm',
  listFile: 'rocmliblist.conf',
  builtin: ROCM_LIST,
  devices: ['/dev/kfd', '/dev/dri'],
  driverDevices: ['/dev/kfd'],
  driverLibraries: ['libhsa-runtime64.so', 'libamdhip64.so'],
};

/** The host device nodes a pattern list names. */
function deviceNodes(patterns: string[]): string[] {
  const out: string[] = [];
  for (const dev of patterns) {
    const dir = path.dirname(dev);
    const base = path.basename(dev);
    try {
      out.push(
        ...fs
          .readdirSync(dir)
          .filter(n => n === base || (base.endsWith('*') && n.startsWith(base.slice(0, -1))))
          .map(n => path.join(dir, n)),
      );
    } catch {
      /* no such directory: none */
    }
  }
  return out;
}

function vendorMounts(v: Vendor, contain: boolean, warn: (m: string) => void): Mount[] {
  const mounts: Mount[] = [];
  const r = spawnSync(ldconfigPath(), ['-p'], { encoding: 'utf8' });
  const cache = r.status === 0 ? parseLdconfig(r.stdout) : [];
  const seen = new Set<string>();
  for (const name of libraryList(v.listFile, v.builtin)) {
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
  const found = mounts.map(m => path.basename(m.destination));
  const driver = deviceNodes(v.driverDevices).length > 0 || found.some(f => v.driverLibraries.some(l => f.startsWith(l)));
  if (!driver) {
    warn(
      `could not find any ${v.name} driver on this host (no ${v.driverDevices.join(' or ')} device, no ${v.driverLibraries.join(' or ')})` +
        (found.length ? `; binding what was found anyway: ${found.join(', ')}` : ''),
    );
  }
  if (contain) {
    for (const node of deviceNodes(v.devices)) mounts.push({ destination: node, type: 'bind', source: node, options: ['rbind', 'nosuid'] });
  }
  return mounts;
}

export function gpuMounts(o: { nv: boolean; rocm: boolean; contain: boolean; warn: (m: string) => void }): Mount[] {
  const mounts: Mount[] = [];
  if (o.nv) mounts.push(...vendorMounts(NVIDIA, o.contain, o.warn));
  if (o.rocm) mounts.push(...vendorMounts(ROCM, o.contain, o.warn));
  // The same library may be listed by both vendors (libOpenCL): bind it once.
  const seen = new Set<string>();
  return mounts.filter(m => !seen.has(m.destination) && seen.add(m.destination));
}
