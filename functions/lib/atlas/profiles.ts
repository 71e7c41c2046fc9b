/**
 * One warm Atlas client per credentials profile, so a container reuses its OAuth token (or
 * Digest nonce) and connections across records and invocations. A client is rebuilt when its
 * profile's secret changed, and once after a 401, so a rotated secret is picked up at once.
 */
import { createHash } from 'node:crypto';
import { type AtlasCallInfo, AtlasClient } from '#atlas/client.ts';
import { CredentialsStore } from '#atlas/credentials.ts';
import type { AtlasCredentials } from '#atlas/types.ts';
import { AtlasApiError } from '#lib/errors.ts';
import type { CheckStatusEnvironment, ProvisionEnvironment } from '#runtime/environment.ts';

export interface AtlasProfilesOptions {
  credentials: CredentialsStore;
  /** The deployment's Atlas base URL, used when the secret has no BaseUrl. */
  baseUrl: string;
  apiVersion: string;
  timeoutMs: number;
  onCall?: (info: AtlasCallInfo) => void;
  fetch?: typeof fetch;
}

interface Warm {
  /** Digest of the credentials and base URL the client was built with; kept only in memory. */
  fingerprint: string;
  client: AtlasClient;
}

const fingerprint = (credentials: AtlasCredentials, baseUrl: string) =>
  createHash('sha256')
    .update(JSON.stringify([credentials, baseUrl]))
    .digest('hex');

export class AtlasProfiles {
  readonly #options: AtlasProfilesOptions;
  readonly #warm = new Map<string, Warm>();
  /** One refresh per profile at a time: records that hit the same 401 together share it. */
  readonly #refreshing = new Map<string, Promise<AtlasClient>>();

  constructor(options: AtlasProfilesOptions) {
    this.#options = options;
  }

  /** Runs fn with the profile's (cached, warm) client; on an Atlas 401 re-reads the secret once, rebuilds the client, runs fn once more. */
  async withClient<T>(profile: string, fn: (client: AtlasClient) => Promise<T>): Promise<T> {
    const client = await this.#client(profile);
    try {
      return await fn(client);
    } catch (error) {
      if (!(error instanceof AtlasApiError && error.status === 401)) throw error;
      return fn(await this.#refresh(profile, client));
    }
  }

  async #client(profile: string): Promise<AtlasClient> {
    const credentials = await this.#options.credentials.get(profile);
    const baseUrl = credentials.baseUrl ?? this.#options.baseUrl;
    const print = fingerprint(credentials, baseUrl);
    const warm = this.#warm.get(profile);
    if (warm?.fingerprint === print) return warm.client;
    return this.#build(profile, credentials, baseUrl, print);
  }

  #refresh(profile: string, rejected: AtlasClient): Promise<AtlasClient> {
    const running = this.#refreshing.get(profile);
    if (running) return running;
    const current = this.#warm.get(profile)?.client;
    if (current && current !== rejected) return Promise.resolve(current);
    const refresh = (async () => {
      const credentials = await this.#options.credentials.get(profile, { forceFetch: true });
      const baseUrl = credentials.baseUrl ?? this.#options.baseUrl;
      // Rebuilt even when the secret is unchanged: the 401 may be a revoked token.
      return this.#build(profile, credentials, baseUrl, fingerprint(credentials, baseUrl));
    })().finally(() => this.#refreshing.delete(profile));
    this.#refreshing.set(profile, refresh);
    return refresh;
  }

  #build(profile: string, credentials: AtlasCredentials, baseUrl: string, print: string): AtlasClient {
    const { apiVersion, timeoutMs, onCall, fetch } = this.#options;
    const client = new AtlasClient({
      baseUrl,
      credentials,
      apiVersion,
      timeoutMs,
      ...(onCall && { onCall }),
      ...(fetch && { fetch }),
    });
    this.#warm.set(profile, { fingerprint: print, client });
    return client;
  }
}

type AtlasEnvironment = Pick<
  ProvisionEnvironment & CheckStatusEnvironment,
  | 'secretPrefix'
  | 'secretMaxAgeSeconds'
  | 'allowedProfiles'
  | 'atlasBaseUrl'
  | 'atlasApiVersion'
  | 'atlasTimeoutMs'
>;

/** The Atlas access both functions build from their environment (see functions/lib/runtime/environment.ts). */
export function atlasProfilesFromEnvironment(
  env: AtlasEnvironment,
  onCall?: (info: AtlasCallInfo) => void,
): AtlasProfiles {
  return new AtlasProfiles({
    credentials: new CredentialsStore({
      prefix: env.secretPrefix,
      maxAgeSeconds: env.secretMaxAgeSeconds,
      allowedProfiles: env.allowedProfiles,
    }),
    baseUrl: env.atlasBaseUrl,
    apiVersion: env.atlasApiVersion,
    timeoutMs: env.atlasTimeoutMs,
    ...(onCall && { onCall }),
  });
}
