/**
 * Atlas Admin API client for backup (object storage) private endpoints, authenticated with a
 * service account (OAuth) or a programmatic API key (Digest). One instance per credentials,
 * kept warm: it reuses its token or Digest nonce and its connections.
 */
import { DigestAuth } from '#atlas/digest.ts';
import {
  type AtlasCallInfo,
  AtlasHttp,
  type AtlasOperation,
  type HttpAnswer,
  invalidResponse,
  isSuccess,
  toApiError,
  USER_AGENT,
} from '#atlas/http.ts';
import { OAuthAuth } from '#atlas/oauth.ts';
import {
  type AtlasCredentials,
  type AtlasEndpoint,
  CLOUD_PROVIDERS,
  type CloudProvider,
  type CreateEndpointBody,
  DEFAULT_API_VERSION,
} from '#atlas/types.ts';
import * as z from '#lib/zod.ts';

export type { AtlasCallInfo } from '#atlas/http.ts';

export interface AtlasClientOptions {
  /** e.g. https://cloud.mongodb.com, or the simulator's URL. */
  baseUrl: string;
  credentials: AtlasCredentials;
  /** Resource version in the media type; default DEFAULT_API_VERSION. */
  apiVersion?: string;
  /** Per HTTP request; default 10 000. */
  timeoutMs?: number;
  /** Default: the global fetch (keep-alive). */
  fetch?: typeof fetch;
  /** Metrics hook, called once per HTTP round trip. */
  onCall?: (info: AtlasCallInfo) => void;
  now?: () => number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_ITEMS_PER_PAGE = 500;

const withoutNulls = (value: unknown) =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null))
    : value;

/** groupId and endpointId, per the spec: the only shape ever put into a path. */
const ATLAS_ID = /^[a-f0-9]{24}$/;

/**
 * Atlas's errorMessage is kept this long at most: it is stored in the ledger item (400 KB at most)
 * and carried by events and parked messages, so no answer of Atlas can grow them unbounded.
 */
export const MAX_ERROR_MESSAGE = 1_000;
/**
 * An endpoint's status is kept this long at most (Atlas's are under 20 characters): a status
 * Atlas adds later is kept and recorded, so an unknown one must not grow the ledger either.
 */
export const MAX_STATUS = 64;

const Endpoint = z.pipe(
  z.transform(withoutNulls),
  z.object({
    id: z.string().check(z.regex(ATLAS_ID, 'must be 24 lowercase hex characters')),
    cloudProvider: z.enum(CLOUD_PROVIDERS),
    regionName: z.string(),
    vpcRegionName: z.optional(z.string()),
    status: z.pipe(
      z.string(),
      z.transform((status) => status.slice(0, MAX_STATUS)),
    ),
    errorMessage: z.optional(
      z.pipe(
        z.string(),
        z.transform((message) => message.slice(0, MAX_ERROR_MESSAGE)),
      ),
    ),
    privateEndpointConnectionName: z.optional(z.string()),
  }),
);

const Page = z.pipe(
  z.transform(withoutNulls),
  z.object({
    results: z._default(z.array(Endpoint), []),
    /** An estimate, per the spec: read, never trusted to end the paging. */
    totalCount: z.optional(z.number().check(z.int(), z.nonnegative())),
  }),
);

const segment = encodeURIComponent;

/** Per call: `signal` ends the call early (the invocation's deadline), on top of the client's timeout. */
export interface CallOptions {
  signal?: AbortSignal;
}

export class AtlasClient {
  readonly #baseUrl: string;
  readonly #mediaType: string;
  readonly #http: AtlasHttp;
  readonly #auth: OAuthAuth | DigestAuth;

  constructor(options: AtlasClientOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#mediaType = `application/vnd.atlas.${options.apiVersion ?? DEFAULT_API_VERSION}+json`;
    this.#http = new AtlasHttp({
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      now: options.now ?? Date.now,
      ...(options.onCall && { onCall: options.onCall }),
    });
    const credentials = options.credentials;
    this.#auth =
      credentials.kind === 'serviceAccount'
        ? new OAuthAuth({
            baseUrl: this.#baseUrl,
            clientId: credentials.clientId,
            clientSecret: credentials.clientSecret,
          })
        : new DigestAuth(credentials.publicKey, credentials.privateKey);
  }

  /** Creates an endpoint (POST, 201). A 409 means one already exists: list and adopt it. */
  async createEndpoint(
    groupId: string,
    body: CreateEndpointBody,
    options: CallOptions = {},
  ): Promise<AtlasEndpoint> {
    const wire: CreateEndpointBody = {
      cloudProvider: body.cloudProvider,
      regionName: body.regionName,
      ...(body.vpcRegionName !== undefined && { vpcRegionName: body.vpcRegionName }),
    };
    const answer = await this.#call('create', 'POST', this.#path(groupId, body.cloudProvider), options, wire);
    return parseBody(Endpoint, 'create', answer);
  }

  /**
   * Lists every endpoint of the project for the provider, reading pages until a short one (or one
   * that brings nothing new). `totalCount` is an estimate and `next` links can be left out: neither
   * ends the paging, so a full last page costs one more request, never a missed endpoint.
   */
  async listEndpoints(
    groupId: string,
    cloudProvider: CloudProvider,
    options?: CallOptions & { itemsPerPage?: number },
  ): Promise<AtlasEndpoint[]> {
    const itemsPerPage = options?.itemsPerPage ?? MAX_ITEMS_PER_PAGE;
    if (!Number.isInteger(itemsPerPage) || itemsPerPage < 1 || itemsPerPage > MAX_ITEMS_PER_PAGE) {
      throw new RangeError(`itemsPerPage must be an integer from 1 to ${MAX_ITEMS_PER_PAGE}`);
    }
    const path = this.#path(groupId, cloudProvider);
    // Keyed by id: an endpoint created or deleted while paging may shift another onto two pages.
    const found = new Map<string, AtlasEndpoint>();
    for (let pageNum = 1; ; pageNum++) {
      const query = new URLSearchParams({ itemsPerPage: String(itemsPerPage), pageNum: String(pageNum) });
      const answer = await this.#call('list', 'GET', `${path}?${query}`, options ?? {});
      const page = parseBody(Page, 'list', answer);
      const before = found.size;
      for (const endpoint of page.results) found.set(endpoint.id, endpoint);
      // A full page of endpoints already seen is a server repeating itself, not more to read.
      if (found.size === before && page.results.length > 0) return [...found.values()];
      if (page.results.length < itemsPerPage) return [...found.values()];
    }
  }

  /** Reads one endpoint; only a 404 that isEndpointNotFound (#lib/errors.ts) accepts means it is gone. */
  async getEndpoint(
    groupId: string,
    cloudProvider: CloudProvider,
    endpointId: string,
    options: CallOptions = {},
  ): Promise<AtlasEndpoint> {
    const answer = await this.#call('get', 'GET', this.#path(groupId, cloudProvider, endpointId), options);
    return parseBody(Endpoint, 'get', answer);
  }

  /** Deletes one endpoint (204). Atlas then reports it as DELETING until it is gone. */
  async deleteEndpoint(
    groupId: string,
    cloudProvider: CloudProvider,
    endpointId: string,
    options: CallOptions = {},
  ): Promise<void> {
    await this.#call('delete', 'DELETE', this.#path(groupId, cloudProvider, endpointId), options);
  }

  /** Revokes the service account's current access token; does nothing for API keys. */
  async revokeToken(): Promise<void> {
    if (this.#auth instanceof OAuthAuth) await this.#auth.revoke(this.#http);
  }

  /** Throws RangeError for an id that is not one: it never reaches a URL. */
  #path(groupId: string, cloudProvider: string, endpointId?: string): string {
    for (const [name, id] of [
      ['groupId', groupId],
      ['endpointId', endpointId],
    ] as const) {
      if (id !== undefined && !ATLAS_ID.test(id))
        throw new RangeError(`${name} must be 24 lowercase hex characters; not sent to Atlas`);
    }
    const base = `/api/atlas/v2/groups/${segment(groupId)}/backup/${segment(cloudProvider)}/privateEndpoints`;
    return endpointId === undefined ? base : `${base}/${segment(endpointId)}`;
  }

  async #call(
    operation: AtlasOperation,
    method: 'GET' | 'POST' | 'DELETE',
    pathAndQuery: string,
    options: CallOptions,
    body?: object,
  ): Promise<HttpAnswer> {
    const headers: Record<string, string> = { accept: this.#mediaType, 'user-agent': USER_AGENT };
    if (body !== undefined) headers['content-type'] = this.#mediaType;
    const answer = await this.#auth.send(this.#http, {
      operation,
      method,
      url: `${this.#baseUrl}${pathAndQuery}`,
      headers,
      ...(body !== undefined && { body: JSON.stringify(body) }),
      ...(options.signal && { signal: options.signal }),
    });
    if (!isSuccess(answer.status)) throw toApiError(operation, answer, this.#http.now());
    return answer;
  }
}

function parseBody<T>(schema: z.ZodMiniType<T>, operation: AtlasOperation, answer: HttpAnswer): T {
  let json: unknown;
  try {
    json = JSON.parse(answer.body);
  } catch {
    throw invalidResponse(operation, answer, 'answer body is not JSON');
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
  throw invalidResponse(operation, answer, `unexpected answer body: ${problems.join('; ')}`);
}
