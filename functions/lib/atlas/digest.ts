/**
 * HTTP Digest authentication (RFC 7616, RFC 2617) for Atlas programmatic API keys. The last
 * challenge is kept and answered pre-emptively with an incrementing nc, so only the first
 * request of a warm client pays the 401 round trip.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { AtlasHttp, HttpAnswer, HttpRequest } from '#atlas/http.ts';

const HASHES = { MD5: 'md5', 'SHA-256': 'sha256', 'SHA-512-256': 'sha512-256' } as const;
type BaseAlgorithm = keyof typeof HASHES;
export type DigestAlgorithm = BaseAlgorithm | `${BaseAlgorithm}-sess`;

export interface DigestChallenge {
  realm: string;
  nonce: string;
  opaque?: string;
  algorithm: DigestAlgorithm;
  /** 'auth' when offered; undefined for a legacy RFC 2069 challenge without qop. */
  qop?: 'auth';
  stale: boolean;
}

const AUTH_PARAM = /\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)\s*(?:,|$)/y;

/** Reads the Digest challenge from a WWW-Authenticate value; undefined when there is none we can answer. */
export function parseDigestChallenge(header: string | null): DigestChallenge | undefined {
  if (header === null) return undefined;
  const start = /(?:^|,)\s*Digest\s+/i.exec(header);
  if (!start) return undefined;
  const params = new Map<string, string>();
  AUTH_PARAM.lastIndex = start.index + start[0].length;
  for (let m = AUTH_PARAM.exec(header); m; m = AUTH_PARAM.exec(header)) {
    const [, name = '', raw = ''] = m;
    const value = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
    params.set(name.toLowerCase(), value);
  }
  const realm = params.get('realm');
  const nonce = params.get('nonce');
  const algorithm = (params.get('algorithm') ?? 'MD5').toUpperCase().replace('-SESS', '-sess');
  const offered = params
    .get('qop')
    ?.split(',')
    .map((q) => q.trim().toLowerCase());
  if (realm === undefined || !nonce || !isAlgorithm(algorithm)) return undefined;
  if (offered && !offered.includes('auth')) return undefined;
  const opaque = params.get('opaque');
  return {
    realm,
    nonce,
    ...(opaque !== undefined && { opaque }),
    algorithm,
    ...(offered && { qop: 'auth' as const }),
    stale: params.get('stale')?.toLowerCase() === 'true',
  };
}

const isAlgorithm = (value: string): value is DigestAlgorithm => value.replace(/-sess$/, '') in HASHES;

export interface DigestInput {
  username: string;
  password: string;
  method: string;
  /** The request-target exactly as sent: path and query. */
  uri: string;
  challenge: DigestChallenge;
  /** Request counter for this nonce, from 1. */
  nc: number;
  cnonce: string;
}

const hash = (algorithm: DigestAlgorithm, data: string) =>
  createHash(HASHES[algorithm.replace(/-sess$/, '') as BaseAlgorithm])
    .update(data, 'utf8')
    .digest('hex');

const ncValue = (nc: number) => nc.toString(16).padStart(8, '0');

/** The `response` value of a Digest Authorization header. */
export function digestResponse(input: DigestInput): string {
  const { username, password, method, uri, challenge, cnonce } = input;
  const { algorithm, realm, nonce, qop } = challenge;
  let ha1 = hash(algorithm, `${username}:${realm}:${password}`);
  if (algorithm.endsWith('-sess')) ha1 = hash(algorithm, `${ha1}:${nonce}:${cnonce}`);
  const ha2 = hash(algorithm, `${method}:${uri}`);
  return qop
    ? hash(algorithm, `${ha1}:${nonce}:${ncValue(input.nc)}:${cnonce}:${qop}:${ha2}`)
    : hash(algorithm, `${ha1}:${nonce}:${ha2}`);
}

const quote = (value: string) => `"${value.replace(/["\\]/g, '\\$&')}"`;

/** The full `Authorization: Digest ...` header value. */
export function digestAuthorization(input: DigestInput): string {
  const { username, uri, challenge, cnonce } = input;
  const parts = [
    `username=${quote(username)}`,
    `realm=${quote(challenge.realm)}`,
    `nonce=${quote(challenge.nonce)}`,
    `uri=${quote(uri)}`,
    `algorithm=${challenge.algorithm}`,
    `response=${quote(digestResponse(input))}`,
  ];
  if (challenge.qop) parts.push(`qop=${challenge.qop}`, `nc=${ncValue(input.nc)}`, `cnonce=${quote(cnonce)}`);
  if (challenge.opaque !== undefined) parts.push(`opaque=${quote(challenge.opaque)}`);
  return `Digest ${parts.join(', ')}`;
}

/** Digest authentication for one API key, shared by all requests of one client. */
export class DigestAuth {
  readonly #username: string;
  readonly #password: string;
  #current?: { challenge: DigestChallenge; nc: number };
  /** Settles when the unauthenticated request that fetches the first challenge has its answer. */
  #probe?: Promise<void>;

  constructor(username: string, password: string) {
    this.#username = username;
    this.#password = password;
  }

  /** Sends the request, answering the first challenge and at most one stale one; a 401 it cannot answer is returned. */
  async send(http: AtlasHttp, request: HttpRequest): Promise<HttpAnswer> {
    // Concurrent requests of a cold client wait for one challenge instead of each paying a 401.
    while (!this.#current && this.#probe) await this.#probe;
    const { pathname, search } = new URL(request.url);
    const uri = `${pathname}${search}`;
    let staleAnswered = false;
    for (;;) {
      const authorization = this.#authorize(request.method, uri);
      const { answer, challenge } = authorization
        ? this.#learn(await http.send({ ...request, headers: { ...request.headers, authorization } }))
        : await this.#probing(async () => this.#learn(await http.send(request)));
      if (!challenge) return answer;
      if (authorization) {
        // A fresh 401 for credentials we already sent means they are wrong, unless the nonce was stale.
        if (!challenge.stale || staleAnswered) return answer;
        staleAnswered = true;
      }
    }
  }

  /** Keeps the challenge of a 401, so later requests answer it pre-emptively. */
  #learn(answer: HttpAnswer): { answer: HttpAnswer; challenge?: DigestChallenge } {
    if (answer.status !== 401) return { answer };
    const challenge = parseDigestChallenge(answer.headers.get('www-authenticate'));
    if (!challenge) return { answer };
    this.#current = { challenge, nc: 0 };
    return { answer, challenge };
  }

  #authorize(method: string, uri: string): string | undefined {
    const current = this.#current;
    if (!current) return undefined;
    current.nc += 1;
    return digestAuthorization({
      username: this.#username,
      password: this.#password,
      method,
      uri,
      challenge: current.challenge,
      nc: current.nc,
      cnonce: randomBytes(16).toString('hex'),
    });
  }

  async #probing<T>(send: () => Promise<T>): Promise<T> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#probe = promise;
    try {
      return await send();
    } finally {
      if (this.#probe === promise) this.#probe = undefined;
      resolve();
    }
  }
}
