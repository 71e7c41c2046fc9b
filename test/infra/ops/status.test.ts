import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { formatAge, type LedgerRow, ledgerTable, main, readLedger } from '#infra/ops/status.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const db = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const NOW = new Date('2026-11-29T10:00:00.000Z');
const GROUP = '6565b8f1c0e4a2b3d4e5f601';

const row = (overrides: Partial<LedgerRow>): LedgerRow => ({
  key: `${GROUP}#AWS#US_EAST_1#-`,
  action: 'create',
  status: 'ACTIVE',
  statusSince: '2026-11-29T09:00:00.000Z',
  endpointId: 'e00000000000000000000001',
  ...overrides,
});

describe('readLedger', () => {
  beforeEach(() => {
    ddb.reset();
  });

  it('reads every page of the scan, sorted by natural key', async () => {
    ddb
      .on(ScanCommand)
      .resolvesOnce({
        Items: [row({ key: 'b#AWS#US_EAST_1#-' })],
        LastEvaluatedKey: { key: 'b#AWS#US_EAST_1#-' },
      })
      .resolves({ Items: [row({ key: 'a#AWS#US_EAST_1#-' })] });

    const rows = await readLedger(db, 'ledger');

    expect(rows.map((r) => r.key)).toEqual(['a#AWS#US_EAST_1#-', 'b#AWS#US_EAST_1#-']);
    expect(ddb).toHaveReceivedCommandTimes(ScanCommand, 2);
    expect(ddb).toHaveReceivedNthCommandWith(ScanCommand, 2, {
      ExclusiveStartKey: { key: 'b#AWS#US_EAST_1#-' },
    });
  });

  it('filters on the project when a group is given', async () => {
    ddb.on(ScanCommand).resolves({ Items: [] });

    await readLedger(db, 'ledger', { groupId: GROUP });

    expect(ddb).toHaveReceivedCommandWith(ScanCommand, {
      TableName: 'ledger',
      FilterExpression: 'groupId = :g',
      ExpressionAttributeValues: { ':g': GROUP },
    });
  });
});

describe('ledgerTable', () => {
  it('shows natural key, action, status, endpoint id, age and last error', () => {
    const table = ledgerTable(
      [
        row({}),
        row({
          key: `${GROUP}#AWS#EU_WEST_1#-`,
          status: 'PENDING_ACCEPTANCE',
          statusSince: '2026-11-27T08:00:00.000Z',
          stuckAt: '2026-11-28T08:00:00.000Z',
          atlasErrorMessage: 'waiting for the interface endpoint',
        }),
        row({
          key: `${GROUP}#AWS#US_WEST_2#-`,
          status: 'REQUESTED',
          statusSince: '2026-11-29T09:59:15.000Z',
          endpointId: undefined,
          lastError: {
            code: 'RATE_LIMITED',
            httpStatus: 429,
            detail: 'x'.repeat(200),
            at: '2026-11-29T09:59:00.000Z',
          },
        }),
      ],
      NOW,
    );

    const [header, active, stuck, failing] = table.split('\n');
    expect(header).toMatch(/^NATURAL KEY\s+ACTION\s+STATUS\s+ENDPOINT\s+AGE\s+LAST ERROR$/);
    expect(active).toMatch(/#US_EAST_1#-\s+create\s+ACTIVE\s+e00000000000000000000001\s+1h 0m$/);
    expect(stuck).toMatch(/PENDING_ACCEPTANCE \(stuck\)\s+\S+\s+2d 2h\s+waiting for the interface endpoint$/);
    expect(failing).toMatch(/REQUESTED\s+-\s+45s\s+RATE_LIMITED \(429\): x+…$/);
    expect(failing?.split('RATE_LIMITED')[1]?.length).toBeLessThan(80);
  });

  it.each([
    [5_000, '5s'],
    [125_000, '2m'],
    [3_780_000, '1h 3m'],
    [90_000_000, '1d 1h'],
  ])('writes %i ms as %s', (ms, text) => {
    expect(formatAge(ms)).toBe(text);
  });
});

describe('npm run status', () => {
  let out: string[];

  beforeEach(() => {
    ddb.reset();
    out = [];
    vi.spyOn(console, 'log').mockImplementation((text: string) => out.push(text));
    vi.stubEnv('AWS_REGION', 'us-east-1');
  });

  it('prints the table of the ledger named by --table', async () => {
    ddb.on(ScanCommand).resolves({ Items: [row({})] });

    await expect(main(['--table', 'ledger'])).resolves.toBe(0);

    expect(out.join('\n')).toMatch(/NATURAL KEY[\s\S]*ACTIVE[\s\S]*1 item\(s\) in ledger/);
  });

  it('reads the ledger LEDGER_TABLE names when no flag does, as `npm start -- --keep` exports it', async () => {
    vi.stubEnv('LEDGER_TABLE', 'local-ledger');
    ddb.on(ScanCommand).resolves({ Items: [row({})] });

    await expect(main([])).resolves.toBe(0);

    expect(ddb).toHaveReceivedCommandWith(ScanCommand, { TableName: 'local-ledger' });
  });

  it('says so when the project has no items', async () => {
    ddb.on(ScanCommand).resolves({ Items: [] });

    await main(['--table', 'ledger', '--group', GROUP]);

    expect(out).toEqual([`no ledger items for project ${GROUP} in ledger`]);
  });

  it('fails naming a bad --group before reading anything', async () => {
    await expect(main(['--table', 'ledger', '--group', 'xyz'])).rejects.toThrow(
      /--group must be a 24-character/,
    );
    expect(ddb.calls()).toHaveLength(0);
  });
});
