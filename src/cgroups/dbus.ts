// A small synchronous D-Bus client: enough of the wire protocol (D-Bus specification, "Message Protocol")
// to call systemd's manager from the short-lived CLI without an event loop. The marshalling is pure and
// tested byte for byte against GDBus; the connection reads and writes a blocking unix socket with a poll
// timeout, so a bus that never answers becomes an error instead of a hang.
import * as fs from 'node:fs';
import { RuntimeError } from '../errors.js';
import { native } from '../native.js';

/** A value of a variant: its signature travels with it. */
export interface Variant {
  sig: string;
  value: DBusValue;
}

/**
 * JS side of the wire types: s, o, g as string; b as boolean; y, n, q, i, u, h as number; x, t as bigint
 * (a number is accepted when encoding); ay as Uint8Array; other arrays, structs and dict entries as arrays.
 */
export type DBusValue = string | number | bigint | boolean | Uint8Array | Variant | DBusValue[];

const ALIGN: Record<string, number> = {
  y: 1,
  b: 4,
  n: 2,
  q: 2,
  i: 4,
  u: 4,
  x: 8,
  t: 8,
  d: 8,
  s: 4,
  o: 4,
  g: 1,
  h: 4,
  v: 1,
  a: 4,
  '(': 8,
  '{': 8,
};

/** Splits a signature into its complete types: "sa(sv)u" -> ["s", "a(sv)", "u"]. */
export function splitSignature(sig: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < sig.length) {
    const end = completeTypeEnd(sig, i);
    out.push(sig.slice(i, end));
    i = end;
  }
  return out;
}

function completeTypeEnd(sig: string, i: number): number {
  const c = sig[i];
  if (c === undefined) throw new Error(`D-Bus signature ${JSON.stringify(sig)} ends early`);
  if (c === 'a') return completeTypeEnd(sig, i + 1);
  if (c === '(' || c === '{') {
    const close = c === '(' ? ')' : '}';
    let j = i + 1;
    while (sig[j] !== close) {
      if (j >= sig.length) throw new Error(`D-Bus signature ${JSON.stringify(sig)}: unclosed ${c}`);
      j = completeTypeEnd(sig, j);
    }
    return j + 1;
  }
  if (!(c in ALIGN) || c === 'a') throw new Error(`D-Bus signature ${JSON.stringify(sig)}: unknown type ${JSON.stringify(c)}`);
  return i + 1;
}

/** The fields of a struct or dict-entry type, "(sv)" -> ["s", "v"]. */
function innerTypes(type: string): string[] {
  return splitSignature(type.slice(1, -1));
}

/** Appends marshalled values to a growing little-endian buffer; offsets count from the message start. */
export class Writer {
  private buf = Buffer.alloc(256);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  align(n: number): void {
    const pad = (n - (this.length % n)) % n;
    this.room(pad);
    this.buf.fill(0, this.length, this.length + pad);
    this.length += pad;
  }

  private u8(v: number): void {
    this.room(1);
    this.buf.writeUInt8(v, this.length);
    this.length += 1;
  }

  private u32(v: number): void {
    this.align(4);
    this.room(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }

  private bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  /** Writes one value of a complete type. */
  write(type: string, v: DBusValue): void {
    const c = type[0];
    const bad = (): never => {
      throw new Error(`D-Bus: ${JSON.stringify(v)} is not a value of type ${type}`);
    };
    switch (c) {
      case 'y':
        if (typeof v !== 'number') bad();
        this.u8(v as number);
        return;
      case 'b':
        if (typeof v !== 'boolean') bad();
        this.u32(v ? 1 : 0);
        return;
      case 'n':
      case 'q':
        if (typeof v !== 'number') bad();
        this.align(2);
        this.room(2);
        if (c === 'n') this.buf.writeInt16LE(v as number, this.length);
        else this.buf.writeUInt16LE(v as number, this.length);
        this.length += 2;
        return;
      case 'i':
      case 'u':
      case 'h':
        if (typeof v !== 'number') bad();
        this.align(4);
        this.room(4);
        if (c === 'i') this.buf.writeInt32LE(v as number, this.length);
        else this.buf.writeUInt32LE(v as number, this.length);
        this.length += 4;
        return;
      case 'x':
      case 't': {
        if (typeof v !== 'number' && typeof v !== 'bigint') bad();
        this.align(8);
        this.room(8);
        const big = BigInt(v as number | bigint);
        if (c === 'x') this.buf.writeBigInt64LE(big, this.length);
        else this.buf.writeBigUInt64LE(big, this.length);
        this.length += 8;
        return;
      }
      case 'd':
        if (typeof v !== 'number') bad();
        this.align(8);
        this.room(8);
        this.buf.writeDoubleLE(v as number, this.length);
        this.length += 8;
        return;
      case 's':
      case 'o': {
        if (typeof v !== 'string') bad();
        const b = Buffer.from(v as string, 'utf8');
        this.u32(b.length);
        this.bytes(b);
        this.u8(0);
        return;
      }
      case 'g': {
        if (typeof v !== 'string') bad();
        const b = Buffer.from(v as string, 'ascii');
        this.u8(b.length);
        this.bytes(b);
        this.u8(0);
        return;
      }
      case 'v': {
        const variant = v as Variant;
        if (typeof variant !== 'object' || variant === null || !('sig' in variant)) bad();
        if (splitSignature(variant.sig).length !== 1)
          throw new Error(`D-Bus: a variant holds one complete type, not ${JSON.stringify(variant.sig)}`);
        this.write('g', variant.sig);
        this.write(variant.sig, variant.value);
        return;
      }
      case 'a': {
        const elem = type.slice(1);
        this.align(4);
        const lengthAt = this.length;
        this.u32(0);
        // The length counts from the first element, after the padding to its alignment.
        this.align(ALIGN[elem[0]!]!);
        const start = this.length;
        if (elem === 'y') {
          if (!(v instanceof Uint8Array)) bad();
          this.bytes(v as Uint8Array);
        } else {
          if (!Array.isArray(v)) bad();
          for (const e of v as DBusValue[]) this.write(elem, e);
        }
        this.buf.writeUInt32LE(this.length - start, lengthAt);
        return;
      }
      case '(':
      case '{': {
        const fields = innerTypes(type);
        if (!Array.isArray(v) || v.length !== fields.length) bad();
        this.align(8);
        fields.forEach((f, i) => {
          this.write(f, (v as DBusValue[])[i]!);
        });
        return;
      }
      default:
        throw new Error(`D-Bus: cannot write type ${JSON.stringify(type)}`);
    }
  }

  /** Writes values for a whole signature. */
  writeAll(sig: string, values: DBusValue[]): void {
    const types = splitSignature(sig);
    if (types.length !== values.length)
      throw new Error(`D-Bus: signature ${JSON.stringify(sig)} wants ${types.length} values, got ${values.length}`);
    types.forEach((t, i) => {
      this.write(t, values[i]!);
    });
  }

  bytesWritten(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }
}

/** Reads marshalled values; buf[0] must sit 8-aligned in the message (a header or a body start). */
export class Reader {
  pos = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly little: boolean,
  ) {}

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error('D-Bus: message truncated');
  }

  align(n: number): void {
    this.pos += (n - (this.pos % n)) % n;
  }

  read(type: string): DBusValue {
    const c = type[0];
    const le = this.little;
    switch (c) {
      case 'y':
        this.need(1);
        return this.buf.readUInt8(this.pos++);
      case 'b': {
        const v = this.read('u') as number;
        if (v > 1) throw new Error(`D-Bus: boolean with value ${v}`);
        return v === 1;
      }
      case 'n':
      case 'q': {
        this.align(2);
        this.need(2);
        const v =
          c === 'n'
            ? le
              ? this.buf.readInt16LE(this.pos)
              : this.buf.readInt16BE(this.pos)
            : le
              ? this.buf.readUInt16LE(this.pos)
              : this.buf.readUInt16BE(this.pos);
        this.pos += 2;
        return v;
      }
      case 'i':
      case 'u':
      case 'h': {
        this.align(4);
        this.need(4);
        const v =
          c === 'i'
            ? le
              ? this.buf.readInt32LE(this.pos)
              : this.buf.readInt32BE(this.pos)
            : le
              ? this.buf.readUInt32LE(this.pos)
              : this.buf.readUInt32BE(this.pos);
        this.pos += 4;
        return v;
      }
      case 'x':
      case 't': {
        this.align(8);
        this.need(8);
        const v =
          c === 'x'
            ? le
              ? this.buf.readBigInt64LE(this.pos)
              : this.buf.readBigInt64BE(this.pos)
            : le
              ? this.buf.readBigUInt64LE(this.pos)
              : this.buf.readBigUInt64BE(this.pos);
        this.pos += 8;
        return v;
      }
      case 'd': {
        this.align(8);
        this.need(8);
        const v = le ? this.buf.readDoubleLE(this.pos) : this.buf.readDoubleBE(this.pos);
        this.pos += 8;
        return v;
      }
      case 's':
      case 'o': {
        const n = this.read('u') as number;
        this.need(n + 1);
        const s = this.buf.toString('utf8', this.pos, this.pos + n);
        this.pos += n + 1;
        return s;
      }
      case 'g': {
        const n = this.read('y') as number;
        this.need(n + 1);
        const s = this.buf.toString('ascii', this.pos, this.pos + n);
        this.pos += n + 1;
        return s;
      }
      case 'v': {
        const sig = this.read('g') as string;
        return { sig, value: this.read(sig) };
      }
      case 'a': {
        const elem = type.slice(1);
        const n = this.read('u') as number;
        this.align(ALIGN[elem[0]!]!);
        this.need(n);
        const end = this.pos + n;
        if (elem === 'y') {
          const b = Uint8Array.from(this.buf.subarray(this.pos, end));
          this.pos = end;
          return b;
        }
        const out: DBusValue[] = [];
        while (this.pos < end) out.push(this.read(elem));
        if (this.pos !== end) throw new Error('D-Bus: array elements overrun the array length');
        return out;
      }
      case '(':
      case '{':
        this.align(8);
        return innerTypes(type).map(f => this.read(f));
      default:
        throw new Error(`D-Bus: cannot read type ${JSON.stringify(type)}`);
    }
  }

  readAll(sig: string): DBusValue[] {
    return splitSignature(sig).map(t => this.read(t));
  }
}

export const MessageType = { call: 1, reply: 2, error: 3, signal: 4 } as const;

/** Header field codes (the specification's table). */
const Field = {
  path: 1,
  interface: 2,
  member: 3,
  errorName: 4,
  replySerial: 5,
  destination: 6,
  sender: 7,
  signature: 8,
  unixFds: 9,
} as const;

export interface Message {
  type: number;
  flags: number;
  serial: number;
  path?: string;
  interface?: string;
  member?: string;
  errorName?: string;
  replySerial?: number;
  destination?: string;
  sender?: string;
  /** The body's signature ("" for none). */
  signature: string;
  body: DBusValue[];
}

const FIELD_TYPE: Record<number, string> = { 1: 'o', 2: 's', 3: 's', 4: 's', 5: 'u', 6: 's', 7: 's', 8: 'g', 9: 'u' };

/** A whole message, little-endian, header fields in code order. */
export function encodeMessage(m: Message): Buffer {
  const body = new Writer();
  body.writeAll(m.signature, m.body);
  const bodyBytes = body.bytesWritten();
  const fields: DBusValue[] = [];
  const add = (code: number, value: string | number | undefined): void => {
    if (value !== undefined) fields.push([code, { sig: FIELD_TYPE[code]!, value }]);
  };
  add(Field.path, m.path);
  add(Field.interface, m.interface);
  add(Field.member, m.member);
  add(Field.errorName, m.errorName);
  add(Field.replySerial, m.replySerial);
  add(Field.destination, m.destination);
  add(Field.sender, m.sender);
  if (m.signature) add(Field.signature, m.signature);
  const head = new Writer();
  head.writeAll('yyyyuua(yv)', ['l'.charCodeAt(0), m.type, m.flags, 1, bodyBytes.length, m.serial, fields]);
  // The body starts 8-aligned, so its own alignment (counted from 0) matches the message's.
  head.align(8);
  return Buffer.concat([head.bytesWritten(), bodyBytes]);
}

/** How many bytes the message starting with these 16 header bytes occupies in total. */
export function messageLength(first16: Buffer): number {
  const little = first16[0] === 0x6c;
  if (!little && first16[0] !== 0x42) throw new Error(`D-Bus: bad endianness byte 0x${first16[0]?.toString(16)}`);
  const bodyLen = little ? first16.readUInt32LE(4) : first16.readUInt32BE(4);
  const fieldsLen = little ? first16.readUInt32LE(12) : first16.readUInt32BE(12);
  return 16 + fieldsLen + ((8 - (fieldsLen % 8)) % 8) + bodyLen;
}

export function decodeMessage(buf: Buffer): Message {
  const little = buf[0] === 0x6c;
  const r = new Reader(buf, little);
  const [, type, flags, version, bodyLen, serial, fields] = r.readAll('yyyyuua(yv)') as [
    number,
    number,
    number,
    number,
    number,
    number,
    [number, Variant][],
  ];
  if (version !== 1) throw new Error(`D-Bus: protocol version ${version}`);
  r.align(8);
  const m: Message = { type, flags, serial, signature: '', body: [] };
  for (const [code, { value }] of fields) {
    if (code === Field.path) m.path = value as string;
    else if (code === Field.interface) m.interface = value as string;
    else if (code === Field.member) m.member = value as string;
    else if (code === Field.errorName) m.errorName = value as string;
    else if (code === Field.replySerial) m.replySerial = value as number;
    else if (code === Field.destination) m.destination = value as string;
    else if (code === Field.sender) m.sender = value as string;
    else if (code === Field.signature) m.signature = value as string;
  }
  const body = buf.subarray(r.pos, r.pos + bodyLen);
  if (body.length !== bodyLen) throw new Error('D-Bus: message body truncated');
  m.body = new Reader(body, little).readAll(m.signature);
  return m;
}

/** A method's error reply, as the caller sees it. */
export class DBusError extends Error {
  constructor(
    override readonly name: string,
    message: string,
  ) {
    super(message);
  }
}

/** The unix socket path of a D-Bus address ("unix:path=/run/x,guid=..."); only path= is connectable here. */
export function socketPathOf(address: string): string {
  for (const candidate of address.split(';')) {
    const [transport, rest] = [candidate.slice(0, candidate.indexOf(':')), candidate.slice(candidate.indexOf(':') + 1)];
    if (transport !== 'unix') continue;
    for (const kv of rest.split(',')) {
      const [k, v] = [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)];
      if (k === 'path') return decodeURIComponent(v);
    }
  }
  throw new RuntimeError(`D-Bus address ${JSON.stringify(address)} has no unix:path= to connect to`, { op: 'dbus' });
}

export interface ConnectOptions {
  /** Where to connect: "unix:path=...". */
  address: string;
  /** A bus (dbus-daemon) wants Hello and AddMatch; a direct connection (systemd's private socket) does not. */
  bus: boolean;
  /** Per-call limit for an answer. */
  timeoutMs?: number;
}

/** One blocking connection. Signals that arrive while waiting for a reply are kept for waitSignal(). */
export class Connection {
  private serial = 0;
  private pending = Buffer.alloc(0);
  private signals: Message[] = [];
  readonly timeoutMs: number;
  uniqueName = '';

  private constructor(
    private fd: number,
    readonly opts: ConnectOptions,
  ) {
    this.timeoutMs = opts.timeoutMs ?? 25000;
  }

  static open(opts: ConnectOptions): Connection {
    const sock = socketPathOf(opts.address);
    let fd: number;
    try {
      fd = native().connectUnix(sock);
    } catch (e) {
      throw new RuntimeError(`D-Bus: connect to ${opts.address}: ${(e as Error).message}`, {
        op: 'dbus',
        path: sock,
        errno: (e as NodeJS.ErrnoException).code,
      });
    }
    const c = new Connection(fd, opts);
    try {
      c.authenticate();
      if (opts.bus) {
        const [name] = c.call({
          destination: 'org.freedesktop.DBus',
          path: '/org/freedesktop/DBus',
          interface: 'org.freedesktop.DBus',
          member: 'Hello',
        });
        c.uniqueName = name as string;
      }
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  }

  close(): void {
    if (this.fd >= 0) native().closeFd(this.fd);
    this.fd = -1;
  }

  /** A socket error as an error naming the bus; a peer that went away says so. */
  private ioError(e: unknown, what: string): RuntimeError {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ECONNRESET' || code === 'EPIPE')
      return new RuntimeError(`D-Bus: ${this.opts.address} closed the connection (${what})`, { op: 'dbus', errno: code });
    return new RuntimeError(`D-Bus: ${this.opts.address}: ${(e as Error).message} (${what})`, { op: 'dbus', errno: code });
  }

  private send(b: Buffer, what: string): void {
    let off = 0;
    try {
      while (off < b.length) off += fs.writeSync(this.fd, b, off, b.length - off);
    } catch (e) {
      throw this.ioError(e, what);
    }
  }

  /** Reads at least one more chunk into `pending`, or fails at the deadline / on EOF. */
  private fill(deadline: number, what: string): void {
    const left = deadline - Date.now();
    if (left <= 0 || !native().waitReadable(this.fd, left)) {
      throw new RuntimeError(`D-Bus: ${this.opts.address} did not answer in time (${what})`, { op: 'dbus', errno: 'ETIMEDOUT' });
    }
    const chunk = Buffer.alloc(65536);
    let n: number;
    try {
      n = fs.readSync(this.fd, chunk, 0, chunk.length, null);
    } catch (e) {
      throw this.ioError(e, what);
    }
    if (n === 0) throw new RuntimeError(`D-Bus: ${this.opts.address} closed the connection (${what})`, { op: 'dbus' });
    this.pending = Buffer.concat([this.pending, chunk.subarray(0, n)]);
  }

  /** SASL EXTERNAL with our uid (the server checks it against SO_PEERCRED), then BEGIN. */
  private authenticate(): void {
    const uid = Buffer.from(String(process.getuid?.() ?? 0), 'ascii').toString('hex');
    this.send(Buffer.from(`\0AUTH EXTERNAL ${uid}\r\n`, 'ascii'), 'authentication');
    const deadline = Date.now() + this.timeoutMs;
    let nl: number;
    while ((nl = this.pending.indexOf('\r\n')) < 0) this.fill(deadline, 'authentication');
    const line = this.pending.subarray(0, nl).toString('ascii');
    this.pending = this.pending.subarray(nl + 2);
    if (!line.startsWith('OK ')) {
      throw new RuntimeError(`D-Bus: ${this.opts.address} refused authentication as uid ${process.getuid?.()}: ${line}`, {
        op: 'dbus',
        errno: 'EACCES',
      });
    }
    this.send(Buffer.from('BEGIN\r\n', 'ascii'), 'authentication');
  }

  private readMessage(deadline: number, what: string): Message {
    while (this.pending.length < 16) this.fill(deadline, what);
    const total = messageLength(this.pending.subarray(0, 16));
    while (this.pending.length < total) this.fill(deadline, what);
    const m = decodeMessage(this.pending.subarray(0, total));
    this.pending = this.pending.subarray(total);
    return m;
  }

  /** Calls a method and returns the reply's body; an error reply throws DBusError. */
  call(m: { destination?: string; path: string; interface: string; member: string; signature?: string; body?: DBusValue[] }): DBusValue[] {
    const serial = ++this.serial;
    const msg: Message = {
      type: MessageType.call,
      flags: 0,
      serial,
      path: m.path,
      interface: m.interface,
      member: m.member,
      signature: m.signature ?? '',
      body: m.body ?? [],
    };
    // A direct connection has no bus to route by name.
    if (this.opts.bus && m.destination) msg.destination = m.destination;
    this.send(encodeMessage(msg), `${m.interface}.${m.member}`);
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const r = this.readMessage(deadline, `${m.interface}.${m.member}`);
      if (r.type === MessageType.signal) {
        this.signals.push(r);
        continue;
      }
      if (r.replySerial !== serial) continue;
      if (r.type === MessageType.error)
        throw new DBusError(
          r.errorName ?? 'org.freedesktop.DBus.Error.Failed',
          typeof r.body[0] === 'string' ? r.body[0] : (r.errorName ?? ''),
        );
      return r.body;
    }
  }

  /** Waits for a signal that `match` accepts (including one that came in during an earlier call). */
  waitSignal(match: (m: Message) => boolean, timeoutMs: number, what: string): Message {
    const queued = this.signals.findIndex(match);
    if (queued >= 0) return this.signals.splice(queued, 1)[0]!;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.readMessage(deadline, what);
      if (r.type === MessageType.signal) {
        if (match(r)) return r;
        this.signals.push(r);
      }
    }
  }

  /** On a bus, asks the daemon to route the signals `rule` describes to us. */
  addMatch(rule: string): void {
    if (!this.opts.bus) return;
    this.call({
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member: 'AddMatch',
      signature: 's',
      body: [rule],
    });
  }
}
