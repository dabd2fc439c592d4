// Registry authentication as the distribution spec and Docker's token protocol define it: a request answered
// 401 carries a WWW-Authenticate challenge; `Basic` asks for the credentials on every request, `Bearer
// realm=…,service=…,scope=…` sends the client to a token service (with the credentials, when there are any) for
// a token good for that repository and those actions. Tokens are kept per scope for the life of the process.
import { readBody, send, type Response } from './transport.js';

export interface Credentials {
  username: string;
  password: string;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="…",service="…"`: the scheme and its parameters (quoted strings unescaped). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/gy;
  const rest = m[2]!;
  re.lastIndex = 0;
  let p: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (p = re.exec(rest))) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

/** Why a registry would not let us in, worded for the person at the keyboard. */
export class AuthError extends Error {}

function needsLogin(registry: string, hint: string): AuthError {
  return new AuthError(`${registry} requires authentication${hint ? `: ${hint}` : ''}`);
}

function basic(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

/** The limit of a token response: anything bigger is not a token. */
const TOKEN_LIMIT = 1 << 20;

export class Authenticator {
  private readonly tokens = new Map<string, string>();
  private basicAuth = false;

  /** `hint` tells the user how to give credentials, when none were given and the registry wants some. */
  constructor(
    private readonly registry: string,
    private readonly credentials: Credentials | undefined,
    private readonly ca: () => string[] | undefined,
    private readonly hint = '',
  ) {}

  /** The Authorization header for a request needing `scope`, when a challenge has told us what to send. */
  header(scope: string): string | undefined {
    const token = this.tokens.get(scope);
    if (token) return `Bearer ${token}`;
    if (this.basicAuth && this.credentials) return basic(this.credentials);
    return undefined;
  }

  /**
   * Answers a 401 to a request sent with `sent` as its Authorization; true when the request is worth repeating
   * with header(scope). A request running alongside may have answered the same challenge already; an expired
   * token is replaced.
   */
  async challenge(res: Response, scope: string, sent: string | undefined): Promise<boolean> {
    const current = this.header(scope);
    if (current !== undefined && current !== sent) return true;
    const raw = res.headers['www-authenticate'];
    const challenge = parseChallenge(Array.isArray(raw) ? (raw[0] ?? '') : (raw ?? ''));
    if (challenge?.scheme === 'basic') {
      if (!this.credentials || this.basicAuth) return false;
      this.basicAuth = true;
      return true;
    }
    if (challenge?.scheme !== 'bearer' || !challenge.params['realm']) return false;
    this.tokens.set(scope, await this.fetchToken(challenge.params, scope));
    return true;
  }

  private async fetchToken(params: Record<string, string>, scope: string): Promise<string> {
    let realm: URL;
    try {
      realm = new URL(params['realm']!);
    } catch {
      throw new AuthError(`${this.registry} names an invalid token service ${JSON.stringify(params['realm'])}`);
    }
    if (params['service']) realm.searchParams.set('service', params['service']);
    for (const s of scope.split(' ').filter(Boolean)) realm.searchParams.append('scope', s);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.credentials) headers['Authorization'] = basic(this.credentials);
    const res = await send(realm, { headers, ca: realm.protocol === 'https:' ? this.ca() : undefined });
    const body = await readBody(res, TOKEN_LIMIT);
    if (res.status === 401 || res.status === 403) {
      throw new AuthError(
        this.credentials
          ? `the token service of ${this.registry} (${realm.origin}) refused the credentials of ${JSON.stringify(this.credentials.username)} (HTTP ${res.status})`
          : needsLogin(this.registry, this.hint).message,
      );
    }
    if (res.status !== 200) throw new AuthError(`the token service of ${this.registry} (${realm.origin}) answered HTTP ${res.status}`);
    let parsed: { token?: unknown; access_token?: unknown };
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new AuthError(`the token service of ${this.registry} (${realm.origin}) did not answer with JSON`);
    }
    const token = typeof parsed.token === 'string' ? parsed.token : parsed.access_token;
    if (typeof token !== 'string' || token === '')
      throw new AuthError(`the token service of ${this.registry} (${realm.origin}) sent no token`);
    return token;
  }

  /** The error for a request still answered 401 after the challenge was met. */
  refused(): AuthError {
    if (!this.credentials) {
      return needsLogin(this.registry, this.hint);
    }
    return new AuthError(`${this.registry} refused the credentials of ${JSON.stringify(this.credentials.username)}`);
  }
}
