// The runtime-spec features document (features.md), built from the tables that validation, planning and the
// executor use themselves, so what `tsrt features` claims cannot drift from what tsrt does.
import { native } from '../native.js';
import { CAPABILITIES, namespaceFlag } from '../plan/linux.js';
import { mountOptionWords } from '../plan/mounts.js';
import { ARCHES, SCMP_ACT, SCMP_CMP, SECCOMP_FLAGS, compileSeccomp } from '../plan/seccomp.js';
import type { Features } from '../spec/types.gen.js';
import { HOOK_KINDS } from './hooks.js';

type LinuxFeatures = NonNullable<Features['linux']>;
type SeccompFeatures = NonNullable<LinuxFeatures['seccomp']>;

export const OCI_VERSION_MIN = '1.0.0';
export const OCI_VERSION_MAX = '1.2.0';

/** The architectures libseccomp can put in one filter with the native one: found by compiling an empty filter. */
function seccompArchitectures(): string[] {
  const a = native();
  return [...ARCHES].filter(name => {
    try {
      compileSeccomp(
        {
          filter: {
            defaultAction: SCMP_ACT['SCMP_ACT_ALLOW']!,
            architectures: [{ token: name.slice(10).toLowerCase(), where: '' }],
            rules: [],
          },
          flags: 0,
        },
        f => a.compileSeccomp(f),
      );
      return true;
    } catch {
      return false;
    }
  });
}

export function features(version: string, commit: string): Features {
  const seccomp = native().seccompInfo();
  return {
    ociVersionMin: OCI_VERSION_MIN,
    ociVersionMax: OCI_VERSION_MAX,
    hooks: [...HOOK_KINDS],
    mountOptions: mountOptionWords(),
    linux: {
      namespaces: Object.keys(namespaceFlag) as LinuxFeatures['namespaces'],
      capabilities: [...CAPABILITIES],
      cgroup: { v1: true, v2: true, systemd: true, systemdUser: true, rdma: true },
      seccomp: {
        enabled: true,
        actions: Object.keys(SCMP_ACT) as SeccompFeatures['actions'],
        operators: Object.keys(SCMP_CMP) as SeccompFeatures['operators'],
        archs: seccompArchitectures() as SeccompFeatures['archs'],
        knownFlags: Object.keys(SECCOMP_FLAGS) as SeccompFeatures['knownFlags'],
        supportedFlags: Object.entries(SECCOMP_FLAGS)
          .filter(([, bit]) => (seccomp.supportedFlags & bit) !== 0)
          .map(([name]) => name) as SeccompFeatures['supportedFlags'],
      },
      // Whether support is built in, not whether this host has the LSM or resctrl (features.md).
      apparmor: { enabled: true },
      selinux: { enabled: true },
      intelRdt: { enabled: true, schemata: true },
      mountExtensions: { idmap: { enabled: true } },
    },
    annotations: {
      'io.github.seccomp.libseccomp.version': seccomp.version,
      'dev.tsrt.version': version,
      'dev.tsrt.commit': commit,
    },
  };
}
