/**
 * The simulator's credentials: service accounts with OAuth 2.0 client-credentials tokens and
 * programmatic API keys with HTTP Digest (RFC 7616: MD5, qop=auth, nc and cnonce checked).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const DIGEST_REALM = 'MMS Public API';
/** Atlas's limit of active tokens per service account. */
export const MAX_ACTIVE_TOKENS = 100;

export type Authentication =
  | { ok: true; scheme: 'bearer' | 'digest'; principal: string }
  | {
      ok: false;
      scheme: 'bearer' | 'digest' | 'none';
      /** Why, for the ApiError detail; never holds a secret. */
      reason: string;
      /** Answer with a fresh Digest challenge (stale=true when the nonce merely expired). */
      challenge?: { stale: boolean };
      /** A malformed Authorization header: the client broke the protocol, not just lacked a credential. */
      violation?: string;
    };

interface Nonce {
  issuedAt: number;
  /** nc values already used with this nonce: a repeat is a replay. */
  seen: Set<string>;
}

interface Token {
  clientId: string;
  expiresAt: number;
}

const AUTH_PARAM = /\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)\s*(?:,|$)/y;

function parseAuthParams(text: string): Map<string, string> {
  const params = new Map<string, string>();
  AUTH_PARAM.lastIndex = 0;
  for (let m = AUTH_PARAM.exec(text); m; m = AUTH_PARAM.exec(text)) {
    const [, name = '', raw = ''] = m;
    params.set(name.toLowerCase(), raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw);
    if (AUTH_PARAM.lastIndex >= text.length) break;
  }
  return params;
}

const md5 = (text: string) => createHash('md5').update(text, 'utf8').digest('hex');

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export interface CredentialOptions {
  tokenTtlSeconds: number;
  nonceTtlMs: number;
  now?: () => number;
}

export class Credentials {
  readonly #accounts = new Map<string, string>();
  readonly #apiKeys = new Map<string, string>();
  readonly #tokens = new Map<string, Token>();
  readonly #nonces = new Map<string, Nonce>();
  readonly #options: CredentialOptions;
  readonly #now: () => number;

  constructor(options: CredentialOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => Date.now());
  }

  get tokenTtlSeconds(): number {
    return this.#options.tokenTtlSeconds;
  }

  addServiceAccount(clientId: string, clientSecret: string): void {
    this.#accounts.set(clientId, clientSecret);
  }

  /** Removes the account; its tokens stop working at once. */
  removeServiceAccount(clientId: string): void {
    this.#accounts.delete(clientId);
    for (const [value, token] of this.#tokens) if (token.clientId === clientId) this.#tokens.delete(value);
  }

  addApiKey(publicKey: string, privateKey: string): void {
    this.#apiKeys.set(publicKey, privateKey);
  }

  removeApiKey(publicKey: string): void {
    this.#apiKeys.delete(publicKey);
  }

  revokeAllTokens(): void {
    this.#tokens.clear();
  }

  /** The service account a `Basic` header names, if its secret matches. */
  basicClient(authorization: string | undefined): string | undefined {
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? '');
    if (!match?.[1]) return undefined;
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    const clientId = decoded.slice(0, colon);
    const secret = this.#accounts.get(clientId);
    return secret !== undefined && sameText(secret, decoded.slice(colon + 1)) ? clientId : undefined;
  }

  /** A new bearer token, or undefined when the account already holds the maximum of active tokens. */
  issueToken(clientId: string): string | undefined {
    const now = this.#now();
    let active = 0;
    for (const [value, token] of this.#tokens) {
      if (token.expiresAt <= now) this.#tokens.delete(value);
      else if (token.clientId === clientId) active += 1;
    }
    if (active >= MAX_ACTIVE_TOKENS) return undefined;
    const value = randomBytes(32).toString('base64url');
    this.#tokens.set(value, { clientId, expiresAt: now + this.#options.tokenTtlSeconds * 1000 });
    return value;
  }

  /** Revokes a token of this client; unknown tokens are ignored (RFC 7009 section 2.2). */
  revokeToken(clientId: string, value: string): void {
    if (this.#tokens.get(value)?.clientId === clientId) this.#tokens.delete(value);
  }

  /** A `WWW-Authenticate` Digest challenge with a new nonce. */
  challenge(stale: boolean): string {
    const now = this.#now();
    const keepFor = Math.max(2 * this.#options.nonceTtlMs, this.#options.nonceTtlMs + 60_000);
    for (const [nonce, { issuedAt }] of this.#nonces) {
      if (now - issuedAt <= keepFor) break;
      this.#nonces.delete(nonce);
    }
    const nonce = randomBytes(24).toString('base64url');
    this.#nonces.set(nonce, { issuedAt: now, seen: new Set() });
    return `Digest realm="${DIGEST_REALM}", nonce="${nonce}", algorithm=MD5, qop="auth"${stale ? ', stale=true' : ''}`;
  }

  /** Authenticates an Admin API request from its Authorization header. */
  authenticate(method: string, requestTarget: string, authorization: string | undefined): Authentication {
    if (!authorization)
      return { ok: false, scheme: 'none', reason: 'no credentials', challenge: { stale: false } };
    const space = authorization.indexOf(' ');
    const scheme = (space < 0 ? authorization : authorization.slice(0, space)).toLowerCase();
    const rest = space < 0 ? '' : authorization.slice(space + 1).trim();
    if (scheme === 'bearer') return this.#bearer(rest);
    if (scheme === 'digest') return this.#digest(method, requestTarget, parseAuthParams(rest));
    return {
      ok: false,
      scheme: 'none',
      reason: `unsupported authorization scheme ${scheme}`,
      challenge: { stale: false },
      violation: `Authorization uses the ${scheme} scheme; the Admin API takes Bearer or Digest`,
    };
  }

  #bearer(value: string): Authentication {
    const token = this.#tokens.get(value);
    if (!token) return { ok: false, scheme: 'bearer', reason: 'unknown or revoked access token' };
    if (token.expiresAt <= this.#now()) {
      this.#tokens.delete(value);
      return { ok: false, scheme: 'bearer', reason: 'expired access token' };
    }
    if (!this.#accounts.has(token.clientId))
      return { ok: false, scheme: 'bearer', reason: 'service account removed' };
    return { ok: true, scheme: 'bearer', principal: token.clientId };
  }

  #digest(method: string, requestTarget: string, params: Map<string, string>): Authentication {
    const reject = (reason: string, violation?: string, stale = false): Authentication => ({
      ok: false,
      scheme: 'digest',
      reason,
      challenge: { stale },
      ...(violation !== undefined && { violation }),
    });
    const missing = ['username', 'realm', 'nonce', 'uri', 'response', 'qop', 'nc', 'cnonce'].filter(
      (name) => !params.get(name),
    );
    if (missing.length > 0) {
      return reject('malformed Digest credentials', `Digest Authorization lacks ${missing.join(', ')}`);
    }
    const get = (name: string) => params.get(name) ?? '';
    const algorithm = params.get('algorithm') ?? 'MD5';
    if (algorithm.toUpperCase() !== 'MD5') {
      return reject('unsupported Digest algorithm', `Digest algorithm ${algorithm} was not offered (MD5)`);
    }
    if (get('qop') !== 'auth')
      return reject('unsupported qop', `Digest qop ${get('qop')} was not offered (auth)`);
    if (!/^[0-9a-f]{8}$/i.test(get('nc'))) return reject('malformed nc', 'Digest nc must be 8 hex digits');
    if (get('realm') !== DIGEST_REALM) return reject('wrong realm', `Digest realm must be "${DIGEST_REALM}"`);
    if (get('uri') !== requestTarget) {
      return reject(
        'uri mismatch',
        `Digest uri "${get('uri')}" is not the request target "${requestTarget}"`,
      );
    }
    const nonce = this.#nonces.get(get('nonce'));
    if (!nonce) return reject('unknown nonce');
    const password = this.#apiKeys.get(get('username'));
    if (password === undefined) return reject('unknown API key');
    const ha1 = md5(`${get('username')}:${DIGEST_REALM}:${password}`);
    const ha2 = md5(`${method}:${requestTarget}`);
    const expected = md5(`${ha1}:${get('nonce')}:${get('nc')}:${get('cnonce')}:auth:${ha2}`);
    if (!sameText(expected, get('response').toLowerCase())) return reject('wrong Digest response');
    if (this.#now() - nonce.issuedAt > this.#options.nonceTtlMs)
      return reject('stale nonce', undefined, true);
    const nc = get('nc').toLowerCase();
    if (nonce.seen.has(nc))
      return reject('replayed nonce count', `Digest nc ${nc} was already used with this nonce`);
    nonce.seen.add(nc);
    return { ok: true, scheme: 'digest', principal: get('username') };
  }
}
