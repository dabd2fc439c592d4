// One progress line for a transfer of several blobs at once, redrawn in place on a terminal. Anything that is not
// a terminal (a log file, a pipe to another program, a batch job's output) gets no bar at all.

export interface Progress {
  /** Counts `n` more bytes of the expected total. */
  expect(n: number): void;
  /** Counts `n` bytes transferred. */
  advance(n: number): void;
  /** Ends the line. */
  done(): void;
}

const WIDTH = 30;
const REDRAW_MS = 100;

/** Singularity's size wording: two decimals of the largest unit from KiB to TiB that keeps the number >= 1. */
export function formatSize(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let unit = 0;
  while (unit < units.length - 1 && bytes >= 1024 ** (unit + 2)) unit++;
  return `${(bytes / 1024 ** (unit + 1)).toFixed(2)} ${units[unit]}`;
}

const silent: Progress = { expect: () => undefined, advance: () => undefined, done: () => undefined };

/** A bar on `stream` when it is a terminal and `enabled`; otherwise a progress that draws nothing. */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr, enabled = true): Progress {
  if (!enabled || !stream.isTTY) return silent;
  let total = 0;
  let transferred = 0;
  let drawn = 0;
  let finished = false;
  const draw = (): void => {
    const fraction = total > 0 ? Math.min(1, transferred / total) : 0;
    const filled = Math.round(fraction * WIDTH);
    const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? (filled === WIDTH ? '=' : '>') : ''}${' '.repeat(WIDTH - filled)}`;
    stream.write(`\r${label} [${bar}] ${formatSize(transferred)} / ${formatSize(total)}\x1b[K`);
    drawn = Date.now();
  };
  return {
    expect(n) {
      total += n;
    },
    advance(n) {
      transferred += n;
      if (Date.now() - drawn >= REDRAW_MS) draw();
    },
    done() {
      if (finished) return;
      finished = true;
      draw();
      stream.write('\n');
    },
  };
}
