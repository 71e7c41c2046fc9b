/**
 * Atlas credentials per profile, read from the Secrets Manager secret `<prefix><profile>` and
 * cached for a finite age, so a rotated secret is seen without a redeploy. The secret's JSON is
 * parsed here, never by a library, so that no error, log line or cause can carry its values.
 */
import { GetParameterError } from '@aws-lambda-powertools/parameters';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { baseUrlProblem } from '#atlas/base-url.ts';
import type { AtlasCredentials } from '#atlas/types.ts';
import { CredentialsError, ProfileNotAllowedError } from '#lib/errors.ts';

export interface CredentialsStoreOptions {
  prefix: string;
  maxAgeSeconds: number;
  allowedProfiles: readonly string[];
  client?: SecretsManagerClient;
}

/** Throws ProfileNotAllowedError unless the deployment allows the profile. */
export function assertProfileAllowed(profile: string, allowedProfiles: readonly string[]): void {
  if (!allowedProfiles.includes(profile)) throw new ProfileNotAllowedError(profile);
}

/** Secrets Manager errors an operator must fix; anything else (throttling, network, 5xx) is retried. */
const NOT_FOUND = new Set(['ResourceNotFoundException', 'InvalidRequestException']);
const ACCESS_DENIED = new Set(['AccessDeniedException', 'DecryptionFailure']);

export class CredentialsStore {
  readonly #prefix: string;
  readonly #maxAgeSeconds: number;
  readonly #allowed: readonly string[];
  readonly #provider: SecretsProvider;
  /** One read per profile at a time: concurrent records of a cold container share it. */
  readonly #inflight = new Map<string, { forced: boolean; promise: Promise<AtlasCredentials> }>();

  constructor(options: CredentialsStoreOptions) {
    this.#prefix = options.prefix;
    this.#maxAgeSeconds = options.maxAgeSeconds;
    this.#allowed = options.allowedProfiles;
    this.#provider = new SecretsProvider({ awsSdkV3Client: options.client ?? new SecretsManagerClient({}) });
  }

  secretName(profile: string): string {
    return `${this.#prefix}${profile}`;
  }

  /** Throws ProfileNotAllowedError, or CredentialsError naming the secret (never its values). Cached maxAgeSeconds. */
  async get(profile: string, options?: { forceFetch?: boolean }): Promise<AtlasCredentials> {
    assertProfileAllowed(profile, this.#allowed);
    const forced = options?.forceFetch === true;
    const running = this.#inflight.get(profile);
    // A forced read must not join a read that started before the caller saw the 401.
    if (running && (running.forced || !forced)) return running.promise;
    const promise = this.#read(profile, forced).finally(() => {
      if (this.#inflight.get(profile)?.promise === promise) this.#inflight.delete(profile);
    });
    this.#inflight.set(profile, { forced, promise });
    return promise;
  }

  async #read(profile: string, forceFetch: boolean): Promise<AtlasCredentials> {
    const name = this.secretName(profile);
    let raw: string | Uint8Array | undefined;
    try {
      raw = await this.#provider.get(name, { maxAge: this.#maxAgeSeconds, forceFetch });
    } catch (error) {
      throw readFailure(name, error);
    }
    return parseSecret(name, raw);
  }
}

function readFailure(name: string, error: unknown): CredentialsError {
  const cause = error instanceof GetParameterError && error.cause instanceof Error ? error.cause : error;
  const kind = cause instanceof Error ? cause.name : 'UnknownError';
  if (NOT_FOUND.has(kind)) {
    return new CredentialsError(
      `secret "${name}" does not exist or cannot be read in its current state (${kind})`,
      name,
      'SECRET_NOT_FOUND',
      { cause },
    );
  }
  if (ACCESS_DENIED.has(kind)) {
    return new CredentialsError(
      `this function may not read or decrypt secret "${name}" (${kind})`,
      name,
      'SECRET_ACCESS_DENIED',
      { cause },
    );
  }
  return new CredentialsError(
    `secret "${name}" could not be read just now (${kind})`,
    name,
    'SECRET_UNAVAILABLE',
    {
      cause,
    },
  );
}

/**
 * Reads a profile secret: a service account (ClientId, ClientSecret) or an API key pair
 * (PublicKey, PrivateKey), key names in any case, optional BaseUrl. The service account wins
 * when both are present. Errors say what is wrong with the secret, never what it holds.
 */
export function parseSecret(name: string, raw: string | Uint8Array | undefined): AtlasCredentials {
  const malformed = (problem: string) =>
    new CredentialsError(`secret "${name}" ${problem}`, name, 'SECRET_MALFORMED');
  if (raw === undefined) throw malformed('has no value');
  let json: unknown;
  try {
    json = JSON.parse(typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8'));
  } catch {
    // The parser's message quotes the input, so it is neither kept nor chained.
    throw malformed('is not valid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw malformed('is not a JSON object');

  const fields = new Map<string, string>();
  for (const [key, value] of Object.entries(json)) {
    if (typeof value === 'string' && value.length > 0) fields.set(key.toLowerCase(), value);
  }
  const baseUrl = readBaseUrl(fields.get('baseurl'), malformed);
  const clientId = fields.get('clientid');
  const clientSecret = fields.get('clientsecret');
  const publicKey = fields.get('publickey');
  const privateKey = fields.get('privatekey');

  if (clientId && clientSecret) return { kind: 'serviceAccount', clientId, clientSecret, ...baseUrl };
  if (publicKey && privateKey) return { kind: 'apiKey', publicKey, privateKey, ...baseUrl };
  if (clientId || clientSecret) {
    throw malformed(`has ${clientId ? 'ClientId but no ClientSecret' : 'ClientSecret but no ClientId'}`);
  }
  if (publicKey || privateKey) {
    throw malformed(`has ${publicKey ? 'PublicKey but no PrivateKey' : 'PrivateKey but no PublicKey'}`);
  }
  throw malformed('holds neither ClientId and ClientSecret nor PublicKey and PrivateKey');
}

/** The secret's BaseUrl, when it has one that credentials may be sent to. Errors never quote the value. */
function readBaseUrl(value: string | undefined, malformed: (problem: string) => CredentialsError) {
  if (value === undefined) return {};
  const problem = baseUrlProblem(value);
  if (problem !== undefined) throw malformed(`has a BaseUrl that ${problem}`);
  return { baseUrl: value.replace(/\/+$/, '') };
}
