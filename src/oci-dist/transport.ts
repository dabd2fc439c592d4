// One HTTP(S) exchange with a registry, over node:http/node:https (both Node and the Bun executable have them).
// TLS trusts the system's certificate store (Debian's /etc/ssl/certs bundle, or SSL_CERT_FILE / SSL_CERT_DIR as
// OpenSSL and Go read them), not the runtime's built-in list, so a site CA installed with update-ca-certificates
// is trusted here as it is by every other tool on the machine. Network failures become one line that says what
// to do about them.
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  url: URL;
}

export interface RequestInit {
  method?: string;
  headers?: Record<string, string>;
  /** A whole body, or a stream of `length` bytes. */
  body?: Buffer | { stream: NodeJS.ReadableStream; length: number };
  /** Trusted CA certificates (PEM); none for plain HTTP. */
  ca?: string[];
}

/** No byte for this long on an open connection ends the request. */
const IDLE_TIMEOUT_MS = 120_000;

/** Where distributions keep the system bundle; the first that exists is read (Go's list, in its order). */
const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/pki/tls/cacert.pem',
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  '/etc/ssl/cert.pem',
];

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function pemCertificates(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').match(PEM) ?? [];
  } catch {
    return [];
  }
}

const stores = new Map<string, string[]>();

/** The certificates TLS connections trust: SSL_CERT_FILE (else the system bundle) plus SSL_CERT_DIR's files. */
export function systemCertificates(env: NodeJS.ProcessEnv = process.env): string[] {
  const file = env['SSL_CERT_FILE'] || SYSTEM_BUNDLES.find(f => fs.existsSync(f));
  const dirs = (env['SSL_CERT_DIR'] ?? '').split(':').filter(Boolean);
  const key = `${file}\0${dirs.join(':')}`;
  const known = stores.get(key);
  if (known) return known;
  const certs = file ? pemCertificates(file) : [];
  for (const dir of dirs) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) certs.push(...pemCertificates(path.join(dir, name)));
  }
  stores.set(key, certs);
  return certs;
}

/** A network or TLS failure, said the way a user can act on it. */
export class TransportError extends Error {}

function describe(e: NodeJS.ErrnoException, url: URL): string {
  const where = `${url.protocol}//${url.host}`;
  const code = e.code ?? '';
  if (code === 'ECONNREFUSED') return `cannot connect to ${where}: connection refused (is the registry running, and on this port?)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve the registry host ${url.hostname}`;
  if (code === 'ECONNRESET' || code === 'EPIPE') return `${where} closed the connection`;
  if (code === 'ETIMEDOUT') return `${where} did not answer in time`;
  if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS_CERT|HOSTNAME/.test(code) || /certificate/i.test(e.message)) {
    return `the TLS certificate of ${where} is not trusted (${code || e.message}): install its CA in the system certificate store, or point SSL_CERT_FILE at a bundle holding it`;
  }
  if (/wrong version number|WRONG_VERSION|packet length too long|EPROTO/i.test(`${code} ${e.message}`)) {
    return `${where} does not speak TLS: for a plain-HTTP registry use --no-https`;
  }
  return `${where}: ${e.message}`;
}

export async function send(url: URL, init: RequestInit = {}): Promise<Response> {
  const https = url.protocol === 'https:';
  const request = https ? (await import('node:https')).request : (await import('node:http')).request;
  const headers: Record<string, string> = { 'User-Agent': 'tsrt-singularity', ...init.headers };
  const body = init.body;
  if (Buffer.isBuffer(body)) headers['Content-Length'] = String(body.length);
  else if (body) headers['Content-Length'] = String(body.length);
  return new Promise<Response>((resolve, reject) => {
    const options: import('node:https').RequestOptions = { method: init.method ?? 'GET', headers };
    if (https) options.ca = init.ca ?? systemCertificates();
    const req = request(url, options, res => {
      res.setTimeout(IDLE_TIMEOUT_MS, () => res.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
    });
    req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', e => reject(new TransportError(describe(e as NodeJS.ErrnoException, url))));
    if (Buffer.isBuffer(body)) req.end(body);
    else if (body) {
      body.stream.on('error', e => req.destroy(e));
      body.stream.pipe(req);
    } else req.end();
  });
}

/** The whole body, refusing more than `limit` bytes (manifests and tokens are small; a huge one is an attack). */
export async function readBody(res: Response, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      res.body.destroy();
      throw new TransportError(`${res.url.href}: the response is larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Reads and drops a body so the connection can be reused or closed cleanly. */
export async function discard(res: Response): Promise<void> {
  try {
    await readBody(res, 1 << 20);
  } catch {
    res.body.destroy();
  }
}

/** The distribution spec's error body ({"errors":[{"code","message"}]}), as one line, when there is one. */
export async function errorText(res: Response): Promise<string> {
  let text = '';
  try {
    text = (await readBody(res, 64 << 10)).toString('utf8');
  } catch {
    return `HTTP ${res.status}`;
  }
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const first = parsed.errors?.[0];
    if (first) return `HTTP ${res.status} ${first.code ?? ''}${first.message ? `: ${first.message}` : ''}`.trim();
  } catch {
    /* not JSON */
  }
  const line = text.trim().split('\n')[0] ?? '';
  return line ? `HTTP ${res.status}: ${line.slice(0, 200)}` : `HTTP ${res.status}`;
}
