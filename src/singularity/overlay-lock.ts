// One writer per persistent overlay. overlayfs gives undefined results when two mounts share an upper
// directory, so a writable --overlay is claimed with a lock file next to its upper/ and work/ directories;
// a second writer is refused with a message naming the holder. Readers (`--overlay DIR:ro`) take no lock:
// they see the upper layer as a read-only lower one.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';

export const LOCK_NAME = '.tsrt-writer.lock';

export interface OverlayLock {
  file: string;
  /** Hands the lock to another process (an instance's monitor) that releases it when it ends. */
  transfer(pid: number): void;
  release(): void;
}

function holderAlive(text: string): boolean {
  const [pidText, host] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  // A lock written on another host (shared file system) cannot be checked: trust it.
  if (host && host !== os.hostname()) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function acquireOverlayLock(dir: string): OverlayLock {
  const file = path.join(dir, LOCK_NAME);
  const mine = `${process.pid} ${os.hostname()}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, mine, { flag: 'wx', mode: 0o644 });
      let owner = process.pid;
      return {
        file,
        transfer(pid: number) {
          owner = pid;
          fs.writeFileSync(file, `${pid} ${os.hostname()}\n`);
        },
        release() {
          // Only our own claim is removed (a stale-lock takeover by someone else stays theirs).
          try {
            if (Number(fs.readFileSync(file, 'utf8').split(/\s+/)[0]) === owner) fs.rmSync(file);
          } catch {
            /* already gone */
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let text = '';
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      if (holderAlive(text)) {
        throw new RuntimeError(
          `overlay ${dir} is in use by another writer (process ${text.trim()}); only one container may write to an overlay at a time: wait for it, or add :ro to share it read-only`,
          { op: 'lock', path: file },
        );
      }
      // The holder died without cleaning up: the claim is stale.
      fs.rmSync(file, { force: true });
    }
  }
  throw new RuntimeError(`overlay ${dir}: could not take the writer lock ${file}`, { op: 'lock', path: file });
}
