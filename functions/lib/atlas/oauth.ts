/**
 * OAuth 2.0 client credentials for Atlas service accounts: one access token per client,
 * reused until shortly before it expires, with concurrent callers sharing one token request.
 */
import {
  type AtlasHttp,
  type HttpAnswer,
  type HttpRequest,
  invalidResponse,
  isSuccess,
  toApiError,
  USER_AGENT,
} from '#atlas/http.ts';
import * as z from '#lib/zod.ts';

/** Renew this long before expiry (or at half the lifetime, for short-lived tokens). */
const RENEW_BEFORE_MS = 60_000;

const TokenAnswer = z.object({
  access_token: z.string().check(z.minLength(1)),
  expires_in: z.number().check(z.positive()),
  token_type: z.string().check(z.regex(/^bearer$/i)),
});

interface Token {
  value: string;
  renewAt: number;
}

export interface OAuthAuthOptions {
  baseUrl: string;
  clientId: string;
  clientSecret: string;
}

/** Bearer authentication for one service account, shared by all requests of one client. */
export class OAuthAuth {
  readonly #tokenUrl: string;
  readonly #revokeUrl: string;
  readonly #basic: string;
  #token?: Token;
  #pending?: Promise<Token>;

  constructor(options: OAuthAuthOptions) {
    this.#tokenUrl = `${options.baseUrl}/api/oauth/token`;
    this.#revokeUrl = `${options.baseUrl}/api/oauth/revoke`;
    this.#basic = `Basic ${Buffer.from(`${options.clientId}:${options.clientSecret}`).toString('base64')}`;
  }

  /** Sends the request with the current token; a 401 drops the token so the next call gets a new one. */
  async send(http: AtlasHttp, request: HttpRequest): Promise<HttpAnswer> {
    const token = await this.#validToken(http);
    const answer = await http.send({
      ...request,
      headers: { ...request.headers, authorization: `Bearer ${token.value}` },
    });
    if (answer.status === 401 && this.#token === token) this.#token = undefined;
    return answer;
  }

  /** Revokes the current token, if any; the next call gets a new one. */
  async revoke(http: AtlasHttp): Promise<void> {
    const token = this.#token ?? (await this.#pending?.catch(() => undefined));
    if (!token) return;
    if (this.#token === token) this.#token = undefined;
    const body = new URLSearchParams({ token: token.value, token_type_hint: 'access_token' }).toString();
    const answer = await http.send(this.#oauthRequest('revoke', this.#revokeUrl, body));
    if (!isSuccess(answer.status)) throw toApiError('revoke', answer, http.now());
  }

  #validToken(http: AtlasHttp): Promise<Token> {
    const token = this.#token;
    if (token && http.now() < token.renewAt) return Promise.resolve(token);
    this.#pending ??= this.#requestToken(http).finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #requestToken(http: AtlasHttp): Promise<Token> {
    const requestedAt = http.now();
    const answer = await http.send(
      this.#oauthRequest('token', this.#tokenUrl, 'grant_type=client_credentials'),
    );
    if (!isSuccess(answer.status)) throw toApiError('token', answer, http.now());
    const parsed = TokenAnswer.safeParse(parseJson(answer.body));
    if (!parsed.success) {
      // Names the fields only: the body may hold a token.
      const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || 'body'))].join(', ');
      throw invalidResponse('token', answer, `token answer has unexpected ${fields}`);
    }
    const lifetimeMs = parsed.data.expires_in * 1000;
    const token = {
      value: parsed.data.access_token,
      renewAt: requestedAt + lifetimeMs - Math.min(RENEW_BEFORE_MS, lifetimeMs / 2),
    };
    this.#token = token;
    return token;
  }

  #oauthRequest(operation: 'token' | 'revoke', url: string, body: string): HttpRequest {
    return {
      operation,
      method: 'POST',
      url,
      headers: {
        authorization: this.#basic,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        'user-agent': USER_AGENT,
      },
      body,
    };
  }
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}
