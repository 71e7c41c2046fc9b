/**
 * `npm run retire` against moto's DynamoDB (started here), through the command's main as the
 * script runs it: the table from LEDGER_TABLE, AWS_ENDPOINT_URL pointing at the emulator. The
 * sweep then sends what it recorded (the in-memory checker, with Atlas down).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { StatusChangedDetailSchema } from '#events/schema.ts';
import { main, RETIRED_BY_OPERATOR } from '#infra/ops/retire.ts';
import { fromRaw } from '#ledger/table.ts';
import { type Moto, startMoto } from '#test/local/emulators.ts';
import { createLedgerTable } from '#test/support/ledger-table.ts';

const NOW = new Date('2026-11-29T10:00:00.000Z');
const GROUP = '6565b8f1c0e4a2b3d4e5f601';
const OTHER = '6565b8f1c0e4a2b3d4e5f602';
const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

let moto: Moto;
let db: DynamoDBDocumentClient;
let tables = 0;
let tableName: string;

const key = (group: string, region: string) => `${group}#AWS#${region}#${region}`;

function item(group: string, region: string, overrides: Record<string, unknown> = {}) {
  return {
    key: key(group, region),
    groupId: group,
    cloudProvider: 'AWS',
    regionName: region,
    vpcRegionName: region,
    profile: 'default',
    action: 'create',
    requesters: { orders: ['o-1', 'o-2'] },
    holds: ['orders'],
    status: 'ACTIVE',
    statusSince: '2026-11-01T00:00:00.000Z',
    endpointId: `${region.length.toString(16)}${'e'.repeat(23)}`,
    tracked: 'OPEN',
    checkedAt: '2026-11-29T09:55:00.000Z',
    createdAt: '2026-11-01T00:00:00.000Z',
    updatedAt: '2026-11-29T09:55:00.000Z',
    ...overrides,
  };
}

const read = async (k: string) => {
  const out = await db.send(new GetCommand({ TableName: tableName, Key: { key: k }, ConsistentRead: true }));
  return out.Item ? fromRaw(out.Item) : undefined;
};

beforeAll(async () => {
  moto = await startMoto();
  db = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials: CREDENTIALS }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
});

afterAll(async () => {
  await moto?.stop();
});

describe('npm run retire', () => {
  let out: string[];

  beforeEach(async () => {
    tables += 1;
    tableName = `retire-${tables}`;
    await createLedgerTable(db as unknown as DynamoDBClient, tableName);
    const items = [
      item(GROUP, 'US_EAST_1'),
      item(GROUP, 'EU_WEST_1', {
        status: 'MISSING',
        endpointId: undefined,
        holds: undefined,
        tracked: undefined,
      }),
      item(GROUP, 'US_WEST_2', {
        status: 'REQUESTED',
        endpointId: undefined,
        holds: undefined,
        tracked: undefined,
      }),
      item(GROUP, 'AP_SOUTH_1', { lease: { owner: 'worker', expiresAt: NOW.getTime() + 30_000 } }),
      item(OTHER, 'US_EAST_1'),
    ];
    for (const raw of items) await db.send(new PutCommand({ TableName: tableName, Item: raw }));
    out = [];
    vi.spyOn(console, 'log').mockImplementation((text: string) => out.push(text));
    vi.stubEnv('AWS_ENDPOINT_URL', moto.endpoint);
    vi.stubEnv('AWS_REGION', 'us-east-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', CREDENTIALS.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', CREDENTIALS.secretAccessKey);
    vi.stubEnv('LEDGER_TABLE', tableName);
  });

  it('lists what it would do with --dry-run and writes nothing', async () => {
    const before = await read(key(GROUP, 'US_EAST_1'));

    await expect(main(['--project', GROUP, '--dry-run'], () => NOW)).resolves.toBe(0);

    const text = out.join('\n');
    expect(text).toMatch(/US_EAST_1#US_EAST_1\s+ACTIVE\s+\S+\s+would retire/);
    expect(text).toMatch(/EU_WEST_1\s+MISSING\s+-\s+already gone/);
    expect(text).toMatch(/US_WEST_2\s+REQUESTED\s+-\s+nothing to retire/);
    expect(text).toMatch(/AP_SOUTH_1\s+ACTIVE\s+\S+\s+refused: a request holds the key/);
    expect(text).toContain(`dry run: would retire 1 of 4 key(s) of project ${GROUP}; 1 held by a request`);
    expect(await read(key(GROUP, 'US_EAST_1'))).toEqual(before);
  });

  it("retires the project's keys with an event each in the outbox, refuses a held key, and touches no other project", async () => {
    const held = await read(key(GROUP, 'AP_SOUTH_1'));
    const other = await read(key(OTHER, 'US_EAST_1'));

    await expect(
      main(['--project', GROUP, '--reason', 'project deleted (TICKET-42)'], () => NOW),
    ).resolves.toBe(1);

    const retired = await read(key(GROUP, 'US_EAST_1'));
    expect(retired).toMatchObject({
      status: 'MISSING',
      statusSince: NOW.toISOString(),
      lastError: { code: RETIRED_BY_OPERATOR, detail: 'project deleted (TICKET-42)', at: NOW.toISOString() },
      tracked: 'OPEN',
    });
    expect(retired).not.toHaveProperty('endpointId');
    expect(retired).not.toHaveProperty('holds');
    const events = Object.values(retired?.outbox ?? {}).map((e) => StatusChangedDetailSchema.parse(e));
    expect(events).toEqual([
      expect.objectContaining({
        outcome: 'MISSING',
        requester: 'orders',
        requestIds: ['o-1', 'o-2'],
        previousStatus: 'ACTIVE',
        status: 'MISSING',
        endpointId: item(GROUP, 'US_EAST_1').endpointId,
        error: { code: RETIRED_BY_OPERATOR, detail: 'project deleted (TICKET-42)' },
      }),
    ]);
    expect(await read(key(GROUP, 'AP_SOUTH_1'))).toEqual(held);
    expect(await read(key(OTHER, 'US_EAST_1'))).toEqual(other);
    expect(await read(key(GROUP, 'US_WEST_2'))).toMatchObject({ status: 'REQUESTED' });
    const text = out.join('\n');
    expect(text).toMatch(/US_EAST_1#US_EAST_1\s+ACTIVE\s+\S+\s+retired: MISSING/);
    expect(text).toContain(`retired 1 of 4 key(s) of project ${GROUP} in ${tableName}; 1 not retired`);

    // Once the request is done, a second run retires the rest and nothing twice.
    out.length = 0;
    await expect(main(['--project', GROUP], () => new Date(NOW.getTime() + 60_000))).resolves.toBe(0);
    expect(await read(key(GROUP, 'AP_SOUTH_1'))).toMatchObject({ status: 'MISSING' });
    expect(Object.keys((await read(key(GROUP, 'US_EAST_1')))?.outbox ?? {})).toHaveLength(1);
  });

  it('says so when the project has no items', async () => {
    await expect(main(['--project', 'f'.repeat(24)], () => NOW)).resolves.toBe(0);
    expect(out).toEqual([`no ledger items for project ${'f'.repeat(24)} in ${tableName}`]);
  });

  it.each([
    [[], /--project is required/],
    [['--project', 'xyz'], /--project must be a 24-character/],
    [['--project', GROUP, '--reason', ''], /--reason must be/],
  ])('refuses %j as a usage error before reading anything', async (argv, message) => {
    await expect(main(argv, () => NOW)).rejects.toThrow(message);
  });
});
