// `registry login|logout|list`: credentials for OCI registries, kept as Singularity keeps them, in Docker's
// config.json format at ~/.singularity/docker-config.json (or --authfile), private to the user.
import * as fs from 'node:fs';
import { RegistryClient } from '../../oci-dist/client.js';
import { listCredentials, removeCredentials, storeCredentials } from '../../oci-dist/credentials.js';
import { parseReference } from '../../oci-dist/reference.js';
import { type SingularityCommand, UsageError } from '../command.js';
import { reporter } from '../action.js';
import { ask, LOGIN_HINT, singularityAuthFile } from '../registry/options.js';
import { boolFlag, parseFlags, stringFlag } from './sif-flags.js';
import { RuntimeError } from '../../errors.js';

const USAGE =
  'singularity registry login [-u|--username USER] [-p|--password PASS | --password-stdin] [--authfile FILE] [--no-https] <docker://HOST[:PORT] | oras://HOST[:PORT]>\n' +
  '  singularity registry logout [--authfile FILE] <docker://HOST[:PORT] | oras://HOST[:PORT]>\n  singularity registry list [--authfile FILE]';

/** The host[:port] of `docker://host`, `oras://host/`, or a bare host. */
function registryHost(uri: string): string {
  const m = /^(?:(docker|oras):\/\/)?([^/]+)\/?$/.exec(uri);
  if (!m) throw new UsageError(`${uri}: expected docker://HOST[:PORT] or oras://HOST[:PORT]`);
  if (/^(library|shub|https?):/.test(uri))
    throw new RuntimeError(`${uri}: only OCI registries (docker://, oras://) can be logged in to`, { op: 'registry login' });
  return parseReference(`${m[2]}/x`).registry;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function login(argv: string[], info: (m: string) => void): Promise<number> {
  const flags = parseFlags(argv, {
    username: { short: 'u' },
    password: { short: 'p' },
    'password-stdin': { boolean: true },
    authfile: {},
    'no-https': { boolean: true },
    nohttps: { boolean: true },
  });
  if (flags.args.length !== 1) throw new UsageError(`requires exactly 1 arg(s), received ${flags.args.length}`);
  const registry = registryHost(flags.args[0]!);
  const username = stringFlag(flags, 'username') ?? process.env['APPTAINER_LOGIN_USERNAME'] ?? process.env['SINGULARITY_LOGIN_USERNAME'];
  if (!username) throw new RuntimeError('Docker/OCI registry requires a username (--username)', { op: 'registry login' });
  let password = stringFlag(flags, 'password') ?? process.env['APPTAINER_LOGIN_PASSWORD'] ?? process.env['SINGULARITY_LOGIN_PASSWORD'];
  if (boolFlag(flags, 'password-stdin')) password = await readStdin();
  password ??= (await ask([{ text: 'Password / Token: ', secret: true }]))[0]!;
  if (password === '') throw new RuntimeError('a password is required', { op: 'registry login' });
  const noHttps = boolFlag(flags, 'no-https') || boolFlag(flags, 'nohttps');
  const client = new RegistryClient(
    { registry, repository: 'x' },
    { plainHttp: noHttps, credentials: { username, password }, loginHint: LOGIN_HINT },
  );
  await client.ping();
  const file = stringFlag(flags, 'authfile') ?? singularityAuthFile();
  storeCredentials(file, registry, { username, password });
  info(`Token stored in ${file}`);
  return 0;
}

function logout(argv: string[], info: (m: string) => void, warn: (m: string) => void): number {
  const flags = parseFlags(argv, { authfile: {} });
  if (flags.args.length !== 1) throw new UsageError(`requires exactly 1 arg(s), received ${flags.args.length}`);
  const registry = registryHost(flags.args[0]!);
  const file = stringFlag(flags, 'authfile') ?? singularityAuthFile();
  if (removeCredentials(file, registry)) info(`Token removed from ${file}`);
  else warn(`There is no existing login to registry "${registry}".`);
  info('Logout succeeded');
  return 0;
}

function list(argv: string[]): number {
  const flags = parseFlags(argv, { authfile: {} });
  const file = stringFlag(flags, 'authfile') ?? singularityAuthFile();
  const hosts = fs.existsSync(file) ? listCredentials(file) : [];
  process.stdout.write(`${['REGISTRY', ...hosts].join('\n')}\n`);
  return 0;
}

export const registryCommand: SingularityCommand = {
  summary: 'Log in to and out of OCI registries (credentials for docker:// and oras://)',
  usage: USAGE,
  async run(argv, g) {
    const quiet = g.quiet || g.silent;
    const info = (m: string) => {
      if (!quiet) process.stderr.write(`INFO:    ${m}\n`);
    };
    const [sub, ...rest] = argv;
    if (sub === 'login') return login(rest, info);
    if (sub === 'logout') return logout(rest, info, reporter(g).warn);
    if (sub === 'list') return list(rest);
    throw new UsageError(
      sub === undefined
        ? 'requires a subcommand: login, logout or list'
        : `unknown subcommand ${JSON.stringify(sub)} (login, logout, list)`,
    );
  },
};
