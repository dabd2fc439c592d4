// Logging and error output as runc does it: with --log FILE the log line goes to the file and the bare
// message to stderr; without it the formatted line goes to stderr. Never touches process.stdout/stderr
// streams (libuv would make shared pipes non-blocking for the container): plain writes to fd 1 and 2.
import * as fs from 'node:fs';
import { TSRT_TEXT_LOG_JSON, TSRT_TEXT_LOG_TEXT } from '../native-abi/abi.gen.js';
import { fill } from '../native-abi/text.js';

export type LogFormat = 'text' | 'json';
export type Level = 'debug' | 'info' | 'warning' | 'error';

export class Reporter {
  constructor(
    private readonly logFile: string | undefined,
    private readonly format: LogFormat,
    private readonly debugEnabled: boolean,
  ) {}

  private line(level: Level, msg: string): string {
    const time = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    // The front door writes the same lines (native/frontdoor): the formats are shared.
    if (this.format === 'json') return fill(TSRT_TEXT_LOG_JSON, level, JSON.stringify(msg), time);
    return fill(TSRT_TEXT_LOG_TEXT, time, level, JSON.stringify(msg));
  }

  private emit(level: Level, msg: string, alsoStderr: boolean): void {
    const text = this.line(level, msg);
    if (this.logFile) {
      try {
        fs.appendFileSync(this.logFile, text);
      } catch {
        writeFd(2, text);
      }
      if (alsoStderr) writeFd(2, `${msg}\n`);
    } else {
      // Without --log runc logs everything to stderr, debug lines too when --debug asked for them.
      writeFd(2, text);
    }
  }

  error(msg: string): void {
    this.emit('error', msg, true);
  }

  warn(msg: string): void {
    this.emit('warning', msg, false);
  }

  debug(msg: string): void {
    if (this.debugEnabled) this.emit('debug', msg, false);
  }
}

export function writeFd(fd: number, text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      return;
    }
  }
}

export function out(text: string): void {
  writeFd(1, text);
}
