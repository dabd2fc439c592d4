// The addon's fd guard (native/addon/addon.h, Fd): every fd a call opens is closed on each way out of it, the
// failures included (R4: the runtime's fds are what a later clone could leak into a container). Each case calls
// a failing path many times and compares the process's open fds before and after. Needs build/Release/tsrt.node
// (npm run build); runs as root (procWrite and idmapUserns need it) and checks that it is.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { native } from '../../src/native.js';
import { tmpdir } from '../helpers.js';

const ROUNDS = 64;
const dir = tmpdir('tsrt-addon-fds-');
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const openFds = (): string[] => fs.readdirSync('/proc/self/fd').sort((a, b) => Number(a) - Number(b));

/** Runs `call` ROUNDS times (each may throw, as the failure path does) and asserts no fd is left open. */
function noLeak(name: string, call: () => unknown, expectThrow: boolean): void {
  t.test(name, async tt => {
    const before = openFds();
    let threw = 0;
    for (let i = 0; i < ROUNDS; i++) {
      try {
        call();
      } catch {
        threw++;
      }
    }
    tt.equal(threw, expectThrow ? ROUNDS : 0, expectThrow ? 'every call fails' : 'no call fails');
    tt.same(openFds(), before, 'the open fds are the same as before');
  });
}

const n = native();

noLeak('procWrite: /proc/<pid> opened, the file missing', () => n.procWrite(process.pid, 'tsrt-no-such-file', 'x'), true);
noLeak('procWrite: the file opened, the write refused', () => n.procWrite(process.pid, 'uid_map', 'not a map\n'), true);
noLeak('openInMountns: the pidfd opened, the path missing', () => n.openInMountns(process.pid, '/tsrt-no-such-path'), true);
noLeak('connectUnix: the socket made, nothing listening', () => n.connectUnix(path.join(dir, 'no-listener')), true);
noLeak('sendFdTo: the socket made, nothing listening', () => n.sendFdTo(path.join(dir, 'no-listener'), 'x', 0), true);
noLeak('idmapUserns: the holder cloned, its maps refused', () => n.idmapUserns('not a map\n', 'not a map\n'), true);

const plain = path.join(dir, 'not-a-fifo');
fs.writeFileSync(plain, '');
const self = n.pidfdOpen(process.pid);
t.teardown(() => n.closeFd(self));
noLeak('startFifo: opened and polled, nothing to read', () => n.startFifo(plain, self), false);
