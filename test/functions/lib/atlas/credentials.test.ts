import {
  GetSecretValueCommand,
  InternalServiceError,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { CredentialsStore, parseSecret } from '#atlas/credentials.ts';
import { CredentialsError, describeFailure, ProfileNotAllowedError } from '#lib/errors.ts';

const secretsManager = mockClient(SecretsManagerClient);
const PREFIX = 'cfn/atlas/profile/';
const CLIENT_SECRET = 'mdb_sa_sk_unit-client-secret-value';
const PRIVATE_KEY = '8c1f3a5e-unit-private-key-value';

const store = (options: Partial<ConstructorParameters<typeof CredentialsStore>[0]> = {}) =>
  new CredentialsStore({
    prefix: PREFIX,
    maxAgeSeconds: 300,
    allowedProfiles: ['default', 'team-a'],
    client: new SecretsManagerClient({ region: 'us-east-1' }),
    ...options,
  });

const secret = (profile: string, value: unknown) =>
  secretsManager
    .on(GetSecretValueCommand, { SecretId: `${PREFIX}${profile}` })
    .resolves({ SecretString: typeof value === 'string' ? value : JSON.stringify(value) });

/** Everything an error could leak through: message, serialisation and its causes. */
const everythingIn = (error: unknown): string => {
  const parts: string[] = [];
  let current: unknown = error;
  while (current instanceof Error) {
    parts.push(current.message, current.stack ?? '', JSON.stringify(current));
    current = current.cause;
  }
  return parts.join('\n');
};

const failureOf = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );

describe('CredentialsStore', () => {
  beforeEach(() => {
    secretsManager.reset();
  });

  it('reads a service account from the secret named prefix + profile, key names in any case', async () => {
    secret('team-a', { clientid: 'mdb_sa_id_1', CLIENTSECRET: CLIENT_SECRET });

    const credentials = await store().get('team-a');

    expect(credentials).toEqual({
      kind: 'serviceAccount',
      clientId: 'mdb_sa_id_1',
      clientSecret: CLIENT_SECRET,
    });
    expect(secretsManager).toReceiveCommandWith(GetSecretValueCommand, {
      SecretId: 'cfn/atlas/profile/team-a',
    });
  });

  it("reads the CloudFormation resources' API key shape, BaseURL spelled either way", async () => {
    secret('default', {
      PublicKey: 'abcdefgh',
      PrivateKey: PRIVATE_KEY,
      BaseURL: 'https://cloud.mongodbgov.com/',
    });

    const credentials = await store().get('default');

    expect(credentials).toEqual({
      kind: 'apiKey',
      publicKey: 'abcdefgh',
      privateKey: PRIVATE_KEY,
      baseUrl: 'https://cloud.mongodbgov.com',
    });
  });

  it('prefers the service account when the secret holds both key pairs', async () => {
    secret('default', {
      PublicKey: 'abcdefgh',
      PrivateKey: PRIVATE_KEY,
      ClientId: 'mdb_sa_id_1',
      ClientSecret: CLIENT_SECRET,
    });

    expect((await store().get('default')).kind).toBe('serviceAccount');
  });

  it('reads the secret once within its maximum age, and again when forced', async () => {
    secret('default', { ClientId: 'mdb_sa_id_1', ClientSecret: CLIENT_SECRET });
    const credentials = store();

    await credentials.get('default');
    await credentials.get('default');
    expect(secretsManager).toReceiveCommandTimes(GetSecretValueCommand, 1);

    await credentials.get('default', { forceFetch: true });
    expect(secretsManager).toReceiveCommandTimes(GetSecretValueCommand, 2);
  });

  it('shares one read between concurrent callers of a cold store', async () => {
    secret('default', { ClientId: 'mdb_sa_id_1', ClientSecret: CLIENT_SECRET });
    const credentials = store();

    const all = await Promise.all(Array.from({ length: 10 }, () => credentials.get('default')));

    expect(all).toHaveLength(10);
    expect(secretsManager).toReceiveCommandTimes(GetSecretValueCommand, 1);
  });

  it('reads again after the maximum age of zero', async () => {
    secret('default', { ClientId: 'mdb_sa_id_1', ClientSecret: CLIENT_SECRET });
    const credentials = store({ maxAgeSeconds: 0 });

    await credentials.get('default');
    await credentials.get('default');

    expect(secretsManager).toReceiveCommandTimes(GetSecretValueCommand, 2);
  });

  it('reads through the client it is given', async () => {
    const client = new SecretsManagerClient({ region: 'us-east-1' });
    client.send = vi.fn(async () => ({
      SecretString: JSON.stringify({ ClientId: 'own-client', ClientSecret: CLIENT_SECRET }),
    })) as never;

    const credentials = await store({ client }).get('default');

    expect(credentials).toMatchObject({ clientId: 'own-client' });
    expect(secretsManager).not.toReceiveCommand(GetSecretValueCommand);
  });

  /** Answers reads in the order the test releases them, each with the ClientId it is given. */
  const heldReads = () => {
    const held: Array<(clientId: string) => void> = [];
    secretsManager.on(GetSecretValueCommand).callsFake(
      () =>
        new Promise((resolve) => {
          held.push((clientId) =>
            resolve({ SecretString: JSON.stringify({ ClientId: clientId, ClientSecret: CLIENT_SECRET }) }),
          );
        }),
    );
    /** Lets the SDK call of each started read reach the fake. */
    const started = async (count: number) => {
      while (held.length < count) await new Promise(setImmediate);
    };
    return { held, started };
  };

  it('does not let a forced read join a read that started before it', async () => {
    const { held, started } = heldReads();
    const credentials = store();

    const before = credentials.get('default');
    const forced = credentials.get('default', { forceFetch: true });
    await started(2);
    held[0]?.('old');
    held[1]?.('rotated');

    expect(await before).toMatchObject({ clientId: 'old' });
    expect(await forced).toMatchObject({ clientId: 'rotated' });
  });

  it('lets a read that starts while a forced read runs share it, even after the older read ended', async () => {
    const { held, started } = heldReads();
    const credentials = store();
    const before = credentials.get('default');
    const forced = credentials.get('default', { forceFetch: true });
    await started(2);
    held[0]?.('old');
    await before;

    const after = credentials.get('default');
    held[1]?.('rotated');

    expect(await after).toMatchObject({ clientId: 'rotated' });
    expect(await forced).toMatchObject({ clientId: 'rotated' });
    expect(secretsManager).toReceiveCommandTimes(GetSecretValueCommand, 2);
  });

  it('answers an older read that ends after the forced read that overtook it', async () => {
    const { held, started } = heldReads();
    const credentials = store();
    const before = credentials.get('default');
    const forced = credentials.get('default', { forceFetch: true });
    await started(2);

    held[1]?.('rotated');
    await forced;
    held[0]?.('old');

    expect(await before).toMatchObject({ clientId: 'old' });
  });

  it('fails with ProfileNotAllowedError, without reading any secret, for a profile the deployment does not allow', async () => {
    const error = await failureOf(store().get('other-team'));

    expect(error).toBeInstanceOf(ProfileNotAllowedError);
    expect(describeFailure(error)).toMatchObject({ disposition: 'reject', code: 'PROFILE_NOT_ALLOWED' });
    expect(secretsManager).not.toReceiveCommand(GetSecretValueCommand);
  });

  it('fails naming the secret when it does not exist, for the dead-letter queue', async () => {
    secretsManager.on(GetSecretValueCommand).rejects(
      new ResourceNotFoundException({
        message: "Secrets Manager can't find the specified secret.",
        $metadata: {},
      }),
    );

    const error = await failureOf(store().get('default'));

    expect(error).toBeInstanceOf(CredentialsError);
    expect(error).toMatchObject({ code: 'SECRET_NOT_FOUND', secretName: 'cfn/atlas/profile/default' });
    expect((error as Error).message).toContain('"cfn/atlas/profile/default"');
    expect(describeFailure(error).disposition).toBe('dlq');
  });

  it('counts a secret that cannot be read in its current state (e.g. scheduled for deletion) as not found', async () => {
    const invalid = Object.assign(new Error('You can’t perform this operation on a secret that’s deleted.'), {
      name: 'InvalidRequestException',
    });
    secretsManager.on(GetSecretValueCommand).rejects(invalid);

    const error = await failureOf(store().get('default'));

    expect(error).toMatchObject({
      code: 'SECRET_NOT_FOUND',
      message:
        'secret "cfn/atlas/profile/default" does not exist or cannot be read in its current state (InvalidRequestException)',
      cause: invalid,
    });
  });

  it('fails for the dead-letter queue when the function may not read the secret', async () => {
    const denied = Object.assign(new Error('not authorized to perform secretsmanager:GetSecretValue'), {
      name: 'AccessDeniedException',
    });
    secretsManager.on(GetSecretValueCommand).rejects(denied);

    const error = await failureOf(store().get('default'));

    expect(error).toMatchObject({
      code: 'SECRET_ACCESS_DENIED',
      message:
        'this function may not read or decrypt secret "cfn/atlas/profile/default" (AccessDeniedException)',
      cause: denied,
    });
    expect(describeFailure(error).disposition).toBe('dlq');
  });

  it('fails as a wait (no attempt spent) when Secrets Manager is unavailable or throttling', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    secretsManager
      .on(GetSecretValueCommand)
      .rejectsOnce(new InternalServiceError({ message: 'internal error', $metadata: {} }))
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const credentials = store();

    for (const error of [
      await failureOf(credentials.get('default')),
      await failureOf(credentials.get('default')),
    ]) {
      expect(error).toMatchObject({ code: 'SECRET_UNAVAILABLE' });
      expect(describeFailure(error).disposition).toBe('wait');
    }
    secretsManager.on(GetSecretValueCommand).rejects(throttled);
    expect(await failureOf(credentials.get('default'))).toMatchObject({
      message: 'secret "cfn/atlas/profile/default" could not be read just now (ThrottlingException)',
      cause: throttled,
    });
  });

  it('fails naming the secret, never quoting it, when the secret is not JSON', async () => {
    secret('default', `ClientSecret=${CLIENT_SECRET}`);

    const error = await failureOf(store().get('default'));

    expect(error).toMatchObject({
      code: 'SECRET_MALFORMED',
      message: 'secret "cfn/atlas/profile/default" is not valid JSON',
    });
    expect(everythingIn(error)).not.toContain(CLIENT_SECRET);
    expect(describeFailure(error).disposition).toBe('dlq');
  });

  it.each([
    [{ ClientSecret: CLIENT_SECRET }, 'has ClientSecret but no ClientId'],
    [{ ClientId: 'mdb_sa_id_1' }, 'has ClientId but no ClientSecret'],
    [{ ClientId: ['mdb_sa_id_1'], ClientSecret: CLIENT_SECRET }, 'has ClientSecret but no ClientId'],
    [{ PublicKey: 'abcdefgh' }, 'has PublicKey but no PrivateKey'],
    [{ privatekey: PRIVATE_KEY, ClientId: '' }, 'has PrivateKey but no PublicKey'],
    [
      { Username: 'someone', Password: PRIVATE_KEY },
      'holds neither ClientId and ClientSecret nor PublicKey and PrivateKey',
    ],
    [[CLIENT_SECRET], 'is not a JSON object'],
    [null, 'is not a JSON object'],
    [42, 'is not a JSON object'],
    [
      { ClientId: 'id', ClientSecret: CLIENT_SECRET, BaseUrl: 'ftp://example.com' },
      'has a BaseUrl that is not https (http is allowed only for localhost, 127.0.0.0/8 and [::1])',
    ],
    [
      { ClientId: 'id', ClientSecret: CLIENT_SECRET, BaseUrl: 'http://cloud.mongodb.com' },
      'has a BaseUrl that is not https (http is allowed only for localhost, 127.0.0.0/8 and [::1])',
    ],
    [
      { ClientId: 'id', ClientSecret: CLIENT_SECRET, BaseUrl: 'http://127.0.0.1.example.com' },
      'has a BaseUrl that is not https (http is allowed only for localhost, 127.0.0.0/8 and [::1])',
    ],
    [
      { ClientId: 'id', ClientSecret: CLIENT_SECRET, BaseUrl: `https://u:${PRIVATE_KEY}@cloud.mongodb.com` },
      'has a BaseUrl that has a user name or password in it',
    ],
  ])('fails on the secret %j saying it %s, without its values', (value, problem) => {
    let error: unknown;
    try {
      parseSecret('cfn/atlas/profile/default', JSON.stringify(value));
    } catch (caught) {
      error = caught;
    }

    expect(error).toMatchObject({
      code: 'SECRET_MALFORMED',
      message: `secret "cfn/atlas/profile/default" ${problem}`,
    });
    expect(everythingIn(error)).not.toContain(CLIENT_SECRET);
    expect(everythingIn(error)).not.toContain(PRIVATE_KEY);
  });

  it('accepts an https BaseUrl, and plain http only to a loopback host', () => {
    const withBase = (BaseUrl: string) =>
      parseSecret('s', JSON.stringify({ ClientId: 'id', ClientSecret: CLIENT_SECRET, BaseUrl }));

    expect(withBase('https://cloud.mongodbgov.com/')).toMatchObject({
      baseUrl: 'https://cloud.mongodbgov.com',
    });
    for (const local of [
      'http://localhost:8080',
      'http://127.0.0.1:9',
      'http://127.5.6.7',
      'http://[::1]:3000',
    ]) {
      expect(withBase(local)).toMatchObject({ baseUrl: local });
    }
  });

  it('parks a request whose secret has an http BaseUrl in the DLQ, naming the secret only', async () => {
    secret('default', { ClientId: 'id', ClientSecret: CLIENT_SECRET, BaseUrl: 'http://cloud.mongodb.com' });

    const error = await failureOf(store().get('default'));

    expect(error).toBeInstanceOf(CredentialsError);
    expect(error).toMatchObject({ code: 'SECRET_MALFORMED' });
    expect(describeFailure(error).disposition).toBe('dlq');
    expect(everythingIn(error)).toContain('"cfn/atlas/profile/default"');
    expect(everythingIn(error)).not.toContain('cloud.mongodb.com');
    expect(everythingIn(error)).not.toContain(CLIENT_SECRET);
  });

  it('fails on a secret without a value', () => {
    expect(() => parseSecret('s', undefined)).toThrow(
      new CredentialsError('secret "s" has no value', 's', 'SECRET_MALFORMED'),
    );
  });

  it('counts an empty value as absent, even beside a filled one spelled in another case', () => {
    const parsed = parseSecret(
      's',
      JSON.stringify({ ClientId: 'id', ClientSecret: CLIENT_SECRET, clientsecret: '' }),
    );

    expect(parsed).toEqual({ kind: 'serviceAccount', clientId: 'id', clientSecret: CLIENT_SECRET });
  });

  it('drops every trailing slash of a BaseUrl', () => {
    const parsed = parseSecret(
      's',
      JSON.stringify({
        ClientId: 'id',
        ClientSecret: CLIENT_SECRET,
        BaseUrl: 'https://cloud.mongodbgov.com//',
      }),
    );

    expect(parsed).toMatchObject({ baseUrl: 'https://cloud.mongodbgov.com' });
  });

  it('reads a secret stored as binary', () => {
    const raw = new TextEncoder().encode(JSON.stringify({ publicKey: 'abcdefgh', privateKey: PRIVATE_KEY }));

    expect(parseSecret('s', raw)).toEqual({ kind: 'apiKey', publicKey: 'abcdefgh', privateKey: PRIVATE_KEY });
  });
});
