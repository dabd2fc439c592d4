// Small file helpers the cgroup drivers share: cgroupfs files are read whole and parsed here.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Blocks the (synchronous) CLI for a moment without spinning. */
export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function errnoOf(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? '';
}

const PERMISSION = new Set(['EACCES', 'EPERM', 'EROFS']);

/** A refusal an unprivileged runtime expects where the cgroup is not delegated to it. */
export function notPermitted(e: unknown): boolean {
  return PERMISSION.has(errnoOf(e));
}

/** The controllers a cgroup2 directory offers its children (its cgroup.controllers). */
export function controllersIn(dir: string): string[] {
  return (readText(path.join(dir, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter(Boolean);
}

/** Flat "key value" files (cgroup.events). */
export function keyed(text: string | undefined): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) m.set(k, Number(v));
  }
  return m;
}
