import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { AtlasClient, AtlasClientOptions } from '#atlas/client.ts';
import { CredentialsStore } from '#atlas/credentials.ts';
import { AtlasProfiles } from '#atlas/profiles.ts';
import { AtlasApiError, AtlasNetworkError } from '#lib/errors.ts';

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
