// Credentials in Docker's config.json format ({"auths": {"HOST": {"auth": base64("user:pass")}}}), the format
// `docker login`, podman, skopeo and Singularity's `registry login` all write. Docker Hub is filed under its
// historical key https://index.docker.io/v1/; other registries by host[:port], sometimes with a scheme or path.
import { nodeCrypto } from '../lazy-crypto.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Credentials } from './auth.js';
import { DOCKER_HUB } from './reference.js';

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
}

interface ConfigFile {
  auths?: Record<string, AuthEntry>;
  [key: string]: unknown;
}

const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

/** The key a registry's credentials are stored under. */
export function authKey(registry: string): string {
  return registry === DOCKER_HUB || registry === 'index.docker.io' ? DOCKER_HUB_KEY : registry;
}

/** The host[:port] an auths key names (keys may carry a scheme and a path). */
function keyHost(key: string): string {
  if (key === DOCKER_HUB_KEY) return DOCKER_HUB;
  return key.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');
}

function readConfig(file: string): ConfigFile | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read the credentials file ${file}: ${(e as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as ConfigFile;
  } catch (e) {
    throw new Error(`the credentials file ${file} is not valid: ${(e as Error).message}`);
  }
}

function decode(entry: AuthEntry, file: string, key: string): Credentials | undefined {
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  if (!entry.auth) return undefined;
  const text = Buffer.from(entry.auth, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) throw new Error(`the credentials file ${file}: the "auth" of ${JSON.stringify(key)} is not base64 of user:password`);
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** The first credentials for `registry` in `files` (in order); files that do not exist are skipped. */
export function findCredentials(files: string[], registry: string): { credentials: Credentials; file: string } | undefined {
  const host = keyHost(authKey(registry));
  for (const file of files) {
    const auths = readConfig(file)?.auths ?? {};
    const key = authKey(registry) in auths ? authKey(registry) : Object.keys(auths).find(k => keyHost(k) === host);
    if (key === undefined) continue;
    const credentials = decode(auths[key]!, file, key);
    if (credentials) return { credentials, file };
  }
  return undefined;
}

/** Rewrites the file in one rename, private to its owner (it holds passwords). */
function writeConfig(file: string, config: ConfigFile): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${nodeCrypto().randomBytes(6).toString('hex')}`);
  fs.writeFileSync(tmp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

export function storeCredentials(file: string, registry: string, credentials: Credentials): void {
  const config = readConfig(file) ?? {};
  const auths = { ...config.auths };
  for (const key of Object.keys(auths)) if (keyHost(key) === keyHost(authKey(registry))) delete auths[key];
  auths[authKey(registry)] = { auth: Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64') };
  writeConfig(file, { ...config, auths });
}

/** Removes the registry's entry; false when there was none. */
export function removeCredentials(file: string, registry: string): boolean {
  const config = readConfig(file);
  const auths = { ...config?.auths };
  const keys = Object.keys(auths).filter(k => keyHost(k) === keyHost(authKey(registry)));
  if (!config || keys.length === 0) return false;
  for (const key of keys) delete auths[key];
  writeConfig(file, { ...config, auths });
  return true;
}

/** The registries a file holds credentials for. */
export function listCredentials(file: string): string[] {
  return Object.keys(readConfig(file)?.auths ?? {}).map(keyHost);
}
