import { describe, expect, it } from 'vitest';
import { naturalKey, type ProvisionRequest } from '#messages/request.ts';
import { InMemoryLedger } from '#test/support/in-memory-ledger.ts';
import { ledgerContract, START } from '#test/support/ledger-contract.ts';

describe('InMemoryLedger', () => {
  // The same cases the real Ledger passes on DynamoDB (test/functions/lib/ledger/ledger.moto.test.ts).
  describe('keeps the ledger contract', () => {
    let last: InMemoryLedger;
    ledgerContract(
      async (now) => {
        last = new InMemoryLedger(now);
        return last;
      },
      async (raw) => last.storeRaw(raw),
    );
  });

  const request: ProvisionRequest = {
    requestId: 'req-1',
    action: 'create',
    groupId: 'a'.repeat(24),
    cloudProvider: 'AWS',
    regionName: 'US_EAST_1',
    profile: 'default',
  };

  it('refuses a claim on a key marked busy, as if another worker held it with no known lease', async () => {
    const ledger = new InMemoryLedger(() => new Date(START));
    ledger.busy.add(naturalKey(request));

    const refused = ledger.claim(request, 'a', 60);

    await expect(refused).rejects.toMatchObject({ name: 'KeyBusyError', retryAfterSeconds: undefined });
    expect(await ledger.get(naturalKey(request))).toBeUndefined();
  });

  it('lists its writes by method, so a test can prove a path wrote nothing', async () => {
    const ledger = new InMemoryLedger(() => new Date(START));
    const key = naturalKey(request);
    const claimed = await ledger.claim(request, 'a', 60);
    await ledger.amend(key, 'a', { endpointFailures: 1 });
    await ledger.recordFailure(key, 'a', { disposition: 'retry', code: 'X', detail: 'x' });
    await ledger.claim(request, 'a', 60);
    await ledger.release(key, 'a');
    await ledger.claim(request, 'a', 60);
    await ledger.settle(claimed, 'a', { status: 'REQUESTED', request, statusSince: claimed.statusSince });
    await ledger.recordCheck(key, 'REQUESTED', { status: 'REQUESTED' });
    await ledger.clearOutbox(key, []);
    await ledger.clearOutbox(key, ['e']);
    await ledger.get(key);
    await ledger.listTracked({ limit: 1 });

    expect(ledger.writes).toEqual([
      'claim',
      'amend',
      'recordFailure',
      'claim',
      'release',
      'claim',
      'settle',
      'recordCheck',
      'clearOutbox',
    ]);
  });

  it('reads the wall clock when given none', async () => {
    const before = Date.now();
    const item = await new InMemoryLedger().claim(request, 'a', 60);

    expect(Date.parse(item.createdAt)).toBeGreaterThanOrEqual(before);
    expect(item.lease?.expiresAt).toBeGreaterThanOrEqual(before + 60_000);
  });

  it('stores a copy of an item a test starts from', async () => {
    const ledger = new InMemoryLedger();
    const item = { ...(await new InMemoryLedger(() => new Date(START)).claim(request, 'a', 60)) };
    ledger.store(item);
    item.status = 'ACTIVE';

    expect(await ledger.get(item.key)).toMatchObject({ status: 'REQUESTED' });
  });
});
