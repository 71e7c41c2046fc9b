import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { AtlasClient, AtlasClientOptions } from '#atlas/client.ts';
import { CredentialsStore } from '#atlas/credentials.ts';
import { AtlasProfiles, atlasProfilesFromEnvironment } from '#atlas/profiles.ts';
import { AtlasApiError, AtlasNetworkError, ProfileNotAllowedError } from '#lib/errors.ts';

const built = vi.hoisted(() => [] as AtlasClientOptions[]);
vi.mock('#atlas/client.ts', () => ({
  AtlasClient: class {
    readonly options: AtlasClientOptions;
    constructor(options: AtlasClientOptions) {
      this.options = options;
      built.push(options);
    }
  },
}));

const secretsManager = mockClient(SecretsManagerClient);
const DEPLOYMENT_URL = 'https://cloud.mongodb.com';

const unauthorized = () => new AtlasApiError({ status: 401, errorCode: 'UNAUTHORIZED', operation: 'list' });
const optionsOf = (client: AtlasClient) => (client as unknown as { options: AtlasClientOptions }).options;

const holds = (value: object) =>
  secretsManager.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(value) });

const profiles = (maxAgeSeconds = 300) =>
  new AtlasProfiles({
    credentials: new CredentialsStore({
      prefix: 'cfn/atlas/profile/',
      maxAgeSeconds,
      allowedProfiles: ['default', 'gov'],
      client: new SecretsManagerClient({ region: 'us-east-1' }),
    }),
    baseUrl: DEPLOYMENT_URL,
    apiVersion: '2024-11-13',
    timeoutMs: 5_000,
  });

describe('AtlasProfiles', () => {
  beforeEach(() => {
    secretsManager.reset();
    built.length = 0;
  });

  it("keeps one warm client per profile, with the secret's base URL or else the deployment's", async () => {
    // Prepare
    secretsManager
      .on(GetSecretValueCommand, { SecretId: 'cfn/atlas/profile/default' })
      .resolves({ SecretString: JSON.stringify({ ClientId: 'id', ClientSecret: 'secret' }) })
      .on(GetSecretValueCommand, { SecretId: 'cfn/atlas/profile/gov' })
      .resolves({
        SecretString: JSON.stringify({
          PublicKey: 'pub',
          PrivateKey: 'priv',
          BaseUrl: 'https://cloud.mongodbgov.com',
        }),
      });
    const atlas = profiles();

    // Act
    const first = await atlas.withClient('default', async (client) => client);
    const again = await atlas.withClient('default', async (client) => client);
    const gov = await atlas.withClient('gov', async (client) => client);

    // Assess
    expect(again).toBe(first);
    expect(gov).not.toBe(first);
    expect(optionsOf(first)).toMatchObject({
      baseUrl: DEPLOYMENT_URL,
      apiVersion: '2024-11-13',
      timeoutMs: 5_000,
      credentials: { kind: 'serviceAccount', clientId: 'id' },
    });
    expect(optionsOf(gov).baseUrl).toBe('https://cloud.mongodbgov.com');
    expect(built).toHaveLength(2);
  });

  it('shares one client between concurrent first calls', async () => {
    holds({ ClientId: 'id', ClientSecret: 'secret' });
    const atlas = profiles();

    const clients = await Promise.all(
      Array.from({ length: 5 }, () => atlas.withClient('default', async (c) => c)),
    );

    expect(new Set(clients).size).toBe(1);
    expect(secretsManager).toReceiveCommandTimes(GetSecretValueCommand, 1);
  });

  it('builds a new client when the secret read after its maximum age holds other credentials', async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: JSON.stringify({ ClientId: 'id', ClientSecret: 'old' }) })
      .resolvesOnce({ SecretString: JSON.stringify({ ClientId: 'id', ClientSecret: 'old' }) })
      .resolves({ SecretString: JSON.stringify({ ClientId: 'id', ClientSecret: 'new' }) });
    const atlas = profiles(0);

    const first = await atlas.withClient('default', async (c) => c);
    const unchanged = await atlas.withClient('default', async (c) => c);
    const rotated = await atlas.withClient('default', async (c) => c);

    expect(unchanged).toBe(first);
    expect(rotated).not.toBe(first);
    expect(optionsOf(rotated).credentials).toMatchObject({ clientSecret: 'new' });
  });

  it('on a 401 re-reads the secret, builds a new client and runs once more', async () => {
    // Prepare
    holds({ ClientId: 'id', ClientSecret: 'secret' });
    const atlas = profiles();
    const seen: AtlasClient[] = [];

    // Act
    const result = await atlas.withClient('default', async (client) => {
      seen.push(client);
      if (seen.length === 1) throw unauthorized();
      return 'listed';
    });

    // Assess
    expect(result).toBe('listed');
    expect(seen).toHaveLength(2);
    expect(seen[1]).not.toBe(seen[0]);
    expect(secretsManager).toReceiveCommandTimes(GetSecretValueCommand, 2);
    expect(await atlas.withClient('default', async (c) => c)).toBe(seen[1]);
  });

  it('lets a second 401 through, for the dead-letter queue', async () => {
    holds({ ClientId: 'id', ClientSecret: 'secret' });
    const atlas = profiles();
    const fn = vi.fn(async () => {
      throw unauthorized();
    });

    await expect(atlas.withClient('default', fn)).rejects.toMatchObject({ status: 401 });
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it('does not refresh on other failures', async () => {
    holds({ ClientId: 'id', ClientSecret: 'secret' });
    const atlas = profiles();
    const fn = vi.fn(async () => {
      throw new AtlasNetworkError('list', 'timeout');
    });

    await expect(atlas.withClient('default', fn)).rejects.toBeInstanceOf(AtlasNetworkError);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(secretsManager).toReceiveCommandTimes(GetSecretValueCommand, 1);
  });

  it('does not refresh on an Atlas error other than 401', async () => {
    holds({ ClientId: 'id', ClientSecret: 'secret' });
    const atlas = profiles();
    const forbidden = new AtlasApiError({ status: 403, errorCode: 'USER_UNAUTHORIZED', operation: 'list' });
    const fn = vi.fn(async () => {
      throw forbidden;
    });

    await expect(atlas.withClient('default', fn)).rejects.toBe(forbidden);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(built).toHaveLength(1);
  });

  it('reuses the client another record already rebuilt when its own 401 comes back later', async () => {
    holds({ ClientId: 'id', ClientSecret: 'secret' });
    const atlas = profiles();
    const stale = await atlas.withClient('default', async (c) => c);
    let rejectLate = () => {};
    const late = new Promise<never>((_, reject) => {
      rejectLate = () => reject(unauthorized());
    });
    const seenBySlow: AtlasClient[] = [];

    const slow = atlas.withClient('default', async (client) => {
      seenBySlow.push(client);
      return client === stale ? late : client;
    });
    const fresh = await atlas.withClient('default', async (client) => {
      if (client === stale) throw unauthorized();
      return client;
    });
    rejectLate();

    expect(await slow).toBe(fresh);
    expect(seenBySlow).toEqual([stale, fresh]);
    expect(built).toHaveLength(2);
    expect(secretsManager).toReceiveCommandTimes(GetSecretValueCommand, 2);
  });

  it('refreshes again on a later 401 of the rebuilt client', async () => {
    holds({ ClientId: 'id', ClientSecret: 'secret' });
    const atlas = profiles();
    const rejecting = (rejected: AtlasClient) => async (client: AtlasClient) => {
      if (client === rejected) throw unauthorized();
      return client;
    };
    const first = await atlas.withClient('default', async (c) => c);

    const second = await atlas.withClient('default', rejecting(first));
    const third = await atlas.withClient('default', rejecting(second));

    expect(second).not.toBe(first);
    expect(third).not.toBe(second);
    expect(built).toHaveLength(3);
  });

  it('gives each client the onCall hook and the fetch it was given, and none when not given', async () => {
    holds({ ClientId: 'id', ClientSecret: 'secret' });
    const onCall = vi.fn();
    const fetch = vi.fn();
    const store = () =>
      new CredentialsStore({
        prefix: 'p/',
        maxAgeSeconds: 300,
        allowedProfiles: ['default'],
        client: new SecretsManagerClient({ region: 'us-east-1' }),
      });
    const options = { baseUrl: DEPLOYMENT_URL, apiVersion: '2024-11-13', timeoutMs: 5_000 };

    const hooked = await new AtlasProfiles({ ...options, credentials: store(), onCall, fetch }).withClient(
      'default',
      async (c) => c,
    );
    const plain = await new AtlasProfiles({ ...options, credentials: store() }).withClient(
      'default',
      async (c) => c,
    );

    expect(optionsOf(hooked)).toMatchObject({ onCall, fetch });
    expect(optionsOf(plain)).not.toHaveProperty('onCall');
    expect(optionsOf(plain)).not.toHaveProperty('fetch');
  });

  it('refreshes once for records that hit the same 401 together', async () => {
    holds({ ClientId: 'id', ClientSecret: 'secret' });
    const atlas = profiles();
    const stale = await atlas.withClient('default', async (c) => c);

    const clients = await Promise.all(
      Array.from({ length: 4 }, () =>
        atlas.withClient('default', async (client) => {
          if (client === stale) throw unauthorized();
          return client;
        }),
      ),
    );

    expect(new Set(clients).size).toBe(1);
    expect(clients[0]).not.toBe(stale);
    expect(built).toHaveLength(2);
    expect(secretsManager).toReceiveCommandTimes(GetSecretValueCommand, 2);
  });
});

describe('atlasProfilesFromEnvironment', () => {
  const ENV = {
    secretPrefix: 'cfn/atlas/profile/',
    secretMaxAgeSeconds: 0,
    allowedProfiles: ['default'],
    atlasBaseUrl: 'https://cloud.mongodbgov.com',
    atlasApiVersion: '2025-03-12',
    atlasTimeoutMs: 7_000,
  };

  beforeEach(() => {
    secretsManager.reset();
    built.length = 0;
  });

  it('reads the allowed profiles’ secrets under the prefix, for the maximum age, into clients of the environment’s Atlas', async () => {
    holds({ ClientId: 'id', ClientSecret: 'secret' });
    const onCall = vi.fn();
    const atlas = atlasProfilesFromEnvironment(ENV, onCall);

    const client = await atlas.withClient('default', async (c) => c);
    await atlas.withClient('default', async (c) => c);

    expect(optionsOf(client)).toMatchObject({
      baseUrl: 'https://cloud.mongodbgov.com',
      apiVersion: '2025-03-12',
      timeoutMs: 7_000,
      onCall,
    });
    expect(secretsManager).toReceiveCommandWith(GetSecretValueCommand, {
      SecretId: 'cfn/atlas/profile/default',
    });
    expect(secretsManager).toReceiveCommandTimes(GetSecretValueCommand, 2);
    await expect(atlas.withClient('other', async (c) => c)).rejects.toBeInstanceOf(ProfileNotAllowedError);
  });

  it('gives the clients no onCall hook when given none', async () => {
    holds({ ClientId: 'id', ClientSecret: 'secret' });

    const client = await atlasProfilesFromEnvironment(ENV).withClient('default', async (c) => c);

    expect(optionsOf(client)).not.toHaveProperty('onCall');
  });
});
