// `tsrt features`: the runtime-spec features document. It is built from the tables tsrt uses itself, and
// every claim in it is exercised here: each namespace it lists is created, each hook kind runs, each mount
// option is understood (never passed on as filesystem data), each seccomp action, operator and architecture
// compiles and each supported flag loads in a real container.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../../src/native.js';
import { parseMountOptions } from '../../src/plan/mounts.js';
import { compileSeccomp, planSeccomp } from '../../src/plan/seccomp.js';
import { validateFeatures } from '../../src/spec/validate.js';
import { e2eFile, tsrt } from '../helpers.js';

const { ROOT, scope } = e2eFile(t, {
  name: 'features',
  idPrefix: 'feat',
  needsRoot: 'features e2e tests need root',
});

const printed = tsrt(['features']);
const doc = JSON.parse(printed.stdout);

t.test('features prints a valid runtime-spec features document', async tt => {
  tt.equal(printed.code, 0, printed.stderr);
  tt.doesNotThrow(() => validateFeatures(doc), 'valid against schemas/features-schema.json');
  tt.equal(doc.ociVersionMin, '1.0.0');
  tt.equal(doc.ociVersionMax, '1.2.0');
  tt.match(doc.annotations['io.github.seccomp.libseccomp.version'], /^\d+\.\d+\.\d+$/, 'names the libseccomp version');
  tt.equal(tsrt(['features', 'extra']).code, 1, 'takes no arguments');
});

t.test('every listed namespace is created for a container that asks for it', async tt => {
  const s = scope(tt);
  const types: string[] = doc.linux.namespaces;
  tt.same([...types].sort(), ['cgroup', 'ipc', 'mount', 'network', 'pid', 'time', 'user', 'uts']);
  const files: Record<string, string> = {
    mount: 'mnt',
    network: 'net',
    cgroup: 'cgroup',
    ipc: 'ipc',
    pid: 'pid',
    time: 'time',
    user: 'user',
    uts: 'uts',
  };
  const probe = types.map(n => `readlink /proc/self/ns/${files[n]}`).join('; ');
  const bundle = s.bundle(['sh', '-c', probe], spec => {
    spec.linux.namespaces = types.map(type => ({ type }));
    spec.linux.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    spec.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    // The rootfs belongs to the host's root, so the mapped root can read it but not make /sys mount points in it.
    spec.mounts = spec.mounts.filter((m: { destination: string }) => !m.destination.startsWith('/sys'));
  });
  const r = tsrt(['run', '-b', bundle, s.id()], { root: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  tt.equal(r.code, 0, r.stderr);
  const inside = r.stdout.trim().split('\n');
  types.forEach((n, i) => {
    tt.not(inside[i], fs.readlinkSync(`/proc/self/ns/${files[n]}`), `${n} namespace is the container's own`);
  });
});

t.test('every listed hook kind runs', async tt => {
  const s = scope(tt);
  const log = path.join(s.dir(), 'hooks.log');
  const kinds: string[] = doc.hooks;
  tt.same(kinds, ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
  const bundle = s.bundle(['true'], spec => {
    spec.ociVersion = '1.2.0';
    spec.hooks = Object.fromEntries(kinds.map(k => [k, [{ path: '/bin/sh', args: ['sh', '-c', `echo ${k} >> ${log}`] }]]));
    // startContainer resolves inside the container: give it the log's directory.
    spec.mounts.push({ destination: path.dirname(log), type: 'bind', source: path.dirname(log), options: ['rbind'] });
  });
  const r = tsrt(['run', '-b', bundle, s.id()], { root: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  tt.equal(r.code, 0, r.stderr);
  tt.same(fs.readFileSync(log, 'utf8').trim().split('\n'), kinds, 'all ran, in lifecycle order');
});

t.test('every listed mount option is understood by tsrt, not passed to the filesystem', async tt => {
  for (const word of doc.mountOptions as string[]) {
    tt.same(parseMountOptions([word]).data, [], word);
  }
});

t.test('every listed seccomp action, operator and architecture compiles', async tt => {
  const compile = (seccomp: object) => compileSeccomp(planSeccomp(seccomp as never), f => native().compileSeccomp(f));
  for (const action of doc.linux.seccomp.actions as string[]) {
    const extra = action === 'SCMP_ACT_NOTIFY' ? { listenerPath: '/run/agent.sock' } : {};
    tt.doesNotThrow(() => compile({ defaultAction: 'SCMP_ACT_ALLOW', ...extra, syscalls: [{ names: ['mkdir'], action }] }), action);
  }
  for (const op of doc.linux.seccomp.operators as string[]) {
    tt.doesNotThrow(
      () =>
        compile({
          defaultAction: 'SCMP_ACT_ALLOW',
          syscalls: [{ names: ['kill'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: 1, valueTwo: 1, op }] }],
        }),
      op,
    );
  }
  for (const arch of doc.linux.seccomp.archs as string[]) {
    tt.doesNotThrow(() => compile({ defaultAction: 'SCMP_ACT_ALLOW', architectures: [arch] }), arch);
  }
  const known = new Set(doc.linux.seccomp.knownFlags);
  tt.ok(
    (doc.linux.seccomp.supportedFlags as string[]).every(f => known.has(f)),
    'supported flags are known flags',
  );
});

t.test('every supported seccomp flag loads in a real container', async tt => {
  const s = scope(tt);
  const flags = (doc.linux.seccomp.supportedFlags as string[]).filter(f => f !== 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV');
  tt.ok(flags.includes('SECCOMP_FILTER_FLAG_LOG'), 'this kernel has SECCOMP_FILTER_FLAG_LOG');
  const bundle = s.bundle(['sh', '-c', 'mkdir /tmp/x 2>&1; echo done'], spec => {
    spec.linux.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      flags,
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
    };
  });
  const r = tsrt(['run', '-b', bundle, s.id()], { root: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /Permission denied/, 'the filter is in force');
});
