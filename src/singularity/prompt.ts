// Questions asked on the terminal, as Singularity's key and sign commands ask them: a line read from stdin
// (a pipe works too, one answer per line), secrets without echo when stdin is a terminal.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { RuntimeError } from '../errors.js';

const pause = new Int32Array(new SharedArrayBuffer(4));

/** One line from stdin, without its line end; undefined at end of input. */
function readLine(): string | undefined {
  const bytes: number[] = [];
  const one = Buffer.alloc(1);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(0, one, 0, 1, null);
    } catch (e) {
      // A non-blocking stdin with nothing yet: wait a little and read again.
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 20);
        continue;
      }
      throw e;
    }
    if (n === 0) return bytes.length ? Buffer.from(bytes).toString('utf8') : undefined;
    if (one[0] === 0x0a) return Buffer.from(bytes).toString('utf8').replace(/\r$/, '');
    bytes.push(one[0]!);
  }
}

function stty(arg: string): void {
  spawnSync('stty', [arg], { stdio: ['inherit', 'ignore', 'ignore'] });
}

/** Asks `question` on stderr and returns the answer; a secret is not echoed on a terminal. */
export function ask(question: string, o: { secret?: boolean } = {}): string {
  process.stderr.write(question);
  const tty = process.stdin.isTTY && o.secret;
  if (tty) stty('-echo');
  let answer: string | undefined;
  try {
    answer = readLine();
  } finally {
    if (tty) {
      stty('echo');
      process.stderr.write('\n');
    }
  }
  if (answer === undefined) throw new RuntimeError(`no answer to "${question.trim()}" (stdin ended)`, { op: 'prompt' });
  return answer;
}

/** A number from `min` to `max`, asked until one is given (or stdin ends). */
export function askNumber(min: number, max: number, question: string): number {
  for (;;) {
    const text = ask(question).trim();
    const n = Number(text);
    if (/^\d+$/.test(text) && n >= min && n <= max) return n;
    process.stderr.write(`Please enter a number from ${min} to ${max}\n`);
  }
}
