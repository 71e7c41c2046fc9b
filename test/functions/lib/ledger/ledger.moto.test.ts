/**
 * The Ledger against real DynamoDB semantics (moto in server mode, started here), through the
 * contract the in-memory stand-in is held to as well. Contention is tested one request after
 * another: moto does not make two racing conditional writes atomic.
 */
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { StatusChangedDetail } from '#events/status-event.ts';
import { Ledger } from '#ledger/ledger.ts';
import { naturalKey, type ProvisionRequest } from '#messages/request.ts';
import { type Moto, startMoto } from '#test/local/emulators.ts';
import { ledgerContract, START } from '#test/support/ledger-contract.ts';
import { createLedgerTable } from '#test/support/ledger-table.ts';

let moto: Moto;
let db: DynamoDBDocumentClient;
let tables = 0;

beforeAll(async () => {
  moto = await startMoto();
  const client = new DynamoDBClient({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  db = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
});

afterAll(async () => {
  await moto?.stop();
});

describe('Ledger on DynamoDB', () => {
  let last = '';
  ledgerContract(
    async (now) => {
      tables += 1;
      const tableName = `ledger-${tables}`;
      await createLedgerTable(db as unknown as DynamoDBClient, tableName);
      last = tableName;
      return new Ledger({ tableName, client: db, now });
    },
    async (raw) => {
      await db.send(new PutCommand({ TableName: last, Item: raw }));
    },
  );
});

describe('Ledger on DynamoDB, beyond the contract', () => {
  const r: ProvisionRequest = {
    requestId: 'req-beyond',
    action: 'create',
    groupId: 'b'.repeat(24),
    cloudProvider: 'AWS',
    regionName: 'US_EAST_1',
    profile: 'default',
  };

  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllEnvs();
  });

  it('passes on what DynamoDB refuses other than a condition, rather than reading it as a busy key or a moved item', async () => {
    const ledger = new Ledger({ tableName: 'no-such-table', client: db, now: () => new Date(START) });
    const notFound = { name: 'ResourceNotFoundException' };

    await expect(ledger.claim(r, 'a', 60)).rejects.toMatchObject(notFound);
    await expect(ledger.recordCheck(naturalKey(r), 'ACTIVE', { status: 'ACTIVE' })).rejects.toMatchObject(
      notFound,
    );
    await expect(ledger.clearOutbox(naturalKey(r), ['a'.repeat(32)])).rejects.toMatchObject(notFound);
  });

  /** A table, and a client of it that runs `after` once a write matching `expression` was answered. */
  const between = async (expression: RegExp, after: (tableName: string) => Promise<void>) => {
    tables += 1;
    const tableName = `ledger-${tables}`;
    await createLedgerTable(db as unknown as DynamoDBClient, tableName);
    const client = {
      send: async (command: Parameters<typeof db.send>[0]) => {
        const out = await db.send(command);
        const update = command instanceof UpdateCommand ? command.input.UpdateExpression : undefined;
        if (update !== undefined && expression.test(update)) await after(tableName);
        return out;
      },
    } as unknown as DynamoDBDocumentClient;
    const now = () => new Date(START);
    const ledger = new Ledger({ tableName, client: db, now });
    await ledger.settle(await ledger.claim(r, 'a', 60), 'a', {
      status: 'DELETED',
      request: r,
      statusSince: new Date(START).toISOString(),
      events: [eventOf('a')],
    });
    return { ledger, racing: new Ledger({ tableName, client, now }) };
  };
  const eventOf = (c: string): StatusChangedDetail => ({
    version: '1',
    eventId: c.repeat(32),
    outcome: 'DELETED',
    requester: 'default',
    requestIds: [r.requestId],
    occurredAt: new Date(START).toISOString(),
  });

  it('keeps following a key that was given new events while its sent ones were cleared', async () => {
    const { racing, ledger } = await between(/^REMOVE outbox\./, async (tableName) => {
      const other = new Ledger({ tableName, client: db, now: () => new Date(START) });
      await other.settle(await other.claim(r, 'b', 60), 'b', {
        status: 'DELETED',
        request: r,
        statusSince: new Date(START).toISOString(),
        events: [eventOf('b')],
      });
    });

    await expect(racing.clearOutbox(naturalKey(r), ['a'.repeat(32)])).resolves.toBeUndefined();

    const item = await ledger.get(naturalKey(r));
    expect(item).toMatchObject({ tracked: 'OPEN' });
    expect(Object.keys(item?.outbox ?? {})).toEqual(['b'.repeat(32)]);
  });

  it('passes on a failure of leaving the check index other than a lost race', async () => {
    const { racing } = await between(/^REMOVE outbox\./, async (tableName) => {
      await db.send(new DeleteTableCommand({ TableName: tableName }));
    });

    await expect(racing.clearOutbox(naturalKey(r), ['a'.repeat(32)])).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
  });

  it('built from a table name alone, reaches the DynamoDB of the environment, stamps the system clock and leaves out undefined values', async () => {
    vi.stubEnv('AWS_ENDPOINT_URL_DYNAMODB', moto.endpoint);
    vi.stubEnv('AWS_REGION', 'us-east-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(START);
    tables += 1;
    const tableName = `ledger-${tables}`;
    await createLedgerTable(db as unknown as DynamoDBClient, tableName);
    const ledger = new Ledger({ tableName });
    const event: StatusChangedDetail = {
      version: '1',
      eventId: 'a'.repeat(32),
      outcome: 'PROVISIONED',
      requester: 'default',
      requestIds: [r.requestId],
      endpointId: undefined,
      occurredAt: new Date(START).toISOString(),
    };

    const claimed = await ledger.claim(r, 'a', 60);
    const settled = await ledger.settle(claimed, 'a', {
      status: 'REQUESTED',
      request: r,
      statusSince: claimed.statusSince,
      events: [event],
    });

    expect(claimed).toMatchObject({ createdAt: new Date(START).toISOString() });
    expect(settled.outbox?.[event.eventId]).not.toHaveProperty('endpointId');
    expect(await ledger.get(naturalKey(r))).toEqual(settled);
  });
});
