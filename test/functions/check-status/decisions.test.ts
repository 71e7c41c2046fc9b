/**
 * Decisions of the status checker that the broader tests leave open (compare.ts, extras.ts), and
 * the errors it swallows to keep a run going (listing.ts, extras.ts, hand-back.ts, record.ts):
 * each is logged with the error itself, the only trace an operator has of it.
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { AtlasApiError } from '#lib/errors.ts';
import type { ProvisionRequest } from '#messages/request.ts';
import { METRIC } from '#runtime/metric-names.ts';
import { captureOutput } from '#test/support/handler-module.ts';
import {
  buildChecker,
  FakeAtlas,
  type FakeTable,
  minutesAgo,
  NOW,
  plentyOfTime,
  publishedDetails,
  resetAws,
} from './fixtures.ts';

const apiError = (status: number, errorCode: string) =>
  new AtlasApiError({ status, errorCode, detail: `Atlas said ${errorCode}`, operation: 'list' });

describe('StatusChecker, decisions', () => {
  let atlas: FakeAtlas;
  let table: FakeTable;

  beforeEach(() => {
    table = resetAws();
    atlas = new FakeAtlas();
  });

  const followUpsOf = (send: ReturnType<typeof vi.fn>) =>
    send.mock.calls.filter(([, options]) => (options as { followUp?: unknown })?.followUp !== undefined);

  it('starts no follow-up for a delete whose endpoint Atlas is recreating: only a create is recreated', async () => {
    const item = table.put({ status: 'DELETING', action: 'delete' });
    atlas.seedFor(item, 'PENDING_RECREATION');
    const send = vi.fn(async () => undefined);
    const { checker } = buildChecker(atlas, { requests: { send }, followUpFirstSeconds: 7 });

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ changed: 1 });

    expect(table.get(item.key)?.status).toBe('PENDING_RECREATION');
    expect(followUpsOf(send)).toEqual([]);
  });

  it('keeps a create in doubt REQUESTED while its request may still be running, and marks it checked', async () => {
    const item = table.put({ status: 'REQUESTED', pendingCreate: { sentAt: minutesAgo(10) } });
    const stored = table.get(item.key);
    if (stored) delete stored.endpointId;
    atlas.seedFor({ ...item, endpointId: 'a'.repeat(24) }, 'INITIATING');
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ checked: 1 });

    expect(table.get(item.key)).toMatchObject({ status: 'REQUESTED', checkedAt: NOW.toISOString() });
  });

  it('reports, never deletes, an extra that only a create in doubt older than a day could account for', async () => {
    // The provisioner forgets such a create (its endpoint would have shown by now): an extra
    // endpoint is someone else's, for an operator, however long ago the key's create was in doubt.
    const item = table.put({
      status: 'ACTIVE',
      vpcRegionName: undefined,
      unconfirmedCreates: [minutesAgo(24 * 60 + 1)],
    });
    atlas.seedFor(item, 'ACTIVE');
    const extra = { ...atlas.seedFor(item, 'ACTIVE'), id: 'f'.repeat(24) };
    atlas.endpoints.set(item.groupId, [...(atlas.endpoints.get(item.groupId) ?? []).slice(0, 1), extra]);
    const { checker, metrics } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ duplicatesDeleted: 0 });

    expect(atlas.deletes).toEqual([]);
    expect(publishedDetails()).toEqual([
      expect.objectContaining({ outcome: 'DUPLICATE_FOUND', endpointId: extra.id }),
    ]);
    expect(metrics.addMetric).toHaveBeenCalledWith(METRIC.duplicateEndpoints, 'Count', 1);
  });

  it('still deletes an extra a create in doubt sent exactly a day ago accounts for', async () => {
    const item = table.put({
      status: 'ACTIVE',
      vpcRegionName: undefined,
      unconfirmedCreates: [minutesAgo(24 * 60)],
    });
    atlas.seedFor(item, 'ACTIVE');
    const extra = { ...atlas.seedFor(item, 'INITIATING'), id: 'f'.repeat(24) };
    atlas.endpoints.set(item.groupId, [...(atlas.endpoints.get(item.groupId) ?? []).slice(0, 1), extra]);
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ duplicatesDeleted: 1 });

    expect(atlas.deletes).toEqual([{ groupId: item.groupId, endpointId: extra.id }]);
  });

  it("neither reports nor deletes an endpoint a create still in doubt may have made: it is the provisioner's", async () => {
    // A FAILED endpoint was deleted and the create that replaces it is in doubt: the endpoint
    // Atlas lists for the key is most likely that create's, which the provisioner adopts.
    const item = table.put({
      status: 'DELETING',
      vpcRegionName: undefined,
      pendingCreate: { sentAt: minutesAgo(1) },
      unconfirmedCreates: [minutesAgo(30)],
    });
    const created = { ...atlas.seedFor(item, 'INITIATING'), id: 'f'.repeat(24) };
    atlas.endpoints.set(item.groupId, [created]);
    const { checker, metrics } = buildChecker(atlas);

    await checker.run(plentyOfTime);

    expect(atlas.deletes).toEqual([]);
    expect(publishedDetails().filter((d) => d.outcome.startsWith('DUPLICATE'))).toEqual([]);
    expect(metrics.addMetric).not.toHaveBeenCalledWith(METRIC.duplicateEndpoints, 'Count', expect.anything());
    expect(table.get(item.key)).toMatchObject({ pendingCreate: { sentAt: minutesAgo(1) } });
    expect(table.get(item.key)?.reported).toBeUndefined();
  });

  it('never deletes an endpoint the provisioner answered the key with after the ledger was read', async () => {
    const item = table.put({
      status: 'ACTIVE',
      vpcRegionName: undefined,
      unconfirmedCreates: [minutesAgo(30)],
    });
    const old = atlas.seedFor(item, 'DELETING');
    const created = { ...old, id: 'f'.repeat(24), status: 'INITIATING' };
    atlas.endpoints.set(item.groupId, [old, created]);
    // Between the checker's ledger read and its listing, a delete and a create for the key were
    // answered: the new endpoint is the key's PROVISIONED answer, not an extra of the old read.
    const request: ProvisionRequest = {
      requestId: 'req-again',
      action: 'create' as const,
      groupId: item.groupId,
      cloudProvider: 'AWS' as const,
      regionName: item.regionName as ProvisionRequest['regionName'],
      profile: 'default',
    };
    const racing = {
      withClient: <T>(profile: string, fn: Parameters<typeof atlas.profiles.withClient<T>>[1]) =>
        atlas.profiles.withClient(profile, (client) =>
          fn({
            listEndpoints: async (groupId, provider) => {
              const claimed = await table.ledger.claim(request, 'worker', 60);
              await table.ledger.settle(claimed, 'worker', {
                status: 'INITIATING',
                endpointId: created.id,
                request,
                statusSince: NOW.toISOString(),
              });
              return client.listEndpoints(groupId, provider);
            },
            deleteEndpoint: client.deleteEndpoint,
          }),
        ),
    };
    const { checker } = buildChecker(atlas, { atlas: racing });

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ duplicatesDeleted: 0 });

    expect(atlas.deletes).toEqual([]);
    expect(table.get(item.key)).toMatchObject({ endpointId: created.id, status: 'INITIATING' });
    expect(publishedDetails().filter((d) => d.outcome.startsWith('DUPLICATE'))).toEqual([]);
  });

  it('deletes an extra only after proving the ledger read still holds, and records against that proof', async () => {
    const item = table.put({
      status: 'ACTIVE',
      vpcRegionName: undefined,
      unconfirmedCreates: [minutesAgo(30)],
    });
    atlas.seedFor(item, 'ACTIVE');
    const extra = { ...atlas.seedFor(item, 'INITIATING'), id: 'f'.repeat(24) };
    atlas.endpoints.set(item.groupId, [...(atlas.endpoints.get(item.groupId) ?? []).slice(0, 1), extra]);
    const { checker } = buildChecker(atlas);

    await expect(checker.run(plentyOfTime)).resolves.toMatchObject({ duplicatesDeleted: 1, checked: 1 });

    expect(table.ledger.writes).toEqual(['confirmUnchanged', 'recordCheck', 'clearOutbox']);
    expect(atlas.deletes).toEqual([{ groupId: item.groupId, endpointId: extra.id }]);
    expect(table.get(item.key)).not.toHaveProperty('unconfirmedCreates');
  });

  it('counts no duplicate endpoints for a key a provisioner holds that has only its own endpoint', async () => {
    const item = table.put({ status: 'ACTIVE', vpcRegionName: undefined });
    const stored = table.get(item.key);
    if (stored) stored.lease = { owner: 'worker', expiresAt: NOW.getTime() + 60_000 };
    atlas.seedFor(item, 'ACTIVE');
    const { checker, metrics } = buildChecker(atlas);

    await checker.run(plentyOfTime);

    expect(metrics.addMetric).not.toHaveBeenCalledWith(METRIC.duplicateEndpoints, 'Count', expect.anything());
  });
});

describe('StatusChecker, the errors it swallows', () => {
  let atlas: FakeAtlas;
  let table: FakeTable;

  beforeEach(() => {
    table = resetAws();
    atlas = new FakeAtlas();
  });

  /** Runs a checker that logs at WARN; the JSON lines it wrote. */
  async function logsOf(overrides: Parameters<typeof buildChecker>[1] = {}) {
    const lines = captureOutput();
    const logger = new Logger({ serviceName: 'status-checker', logLevel: 'WARN' });
    await buildChecker(atlas, { logger, ...overrides }).checker.run(plentyOfTime);
    vi.mocked(process.stdout.write).mockRestore();
    vi.mocked(process.stderr.write).mockRestore();
    return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  const withError = (message: string) =>
    expect.objectContaining({ error: expect.objectContaining({ message }) });

  it('logs a project it could not list for now with the failure, naming the project', async () => {
    const item = table.put({ status: 'INITIATING' });
    atlas.failNext(item.groupId, apiError(503, 'SERVICE_UNAVAILABLE'));

    const entries = await logsOf();

    expect(entries).toContainEqual(
      expect.objectContaining({
        level: 'WARN',
        groupId: item.groupId,
        failure: expect.objectContaining({ code: 'SERVICE_UNAVAILABLE', httpStatus: 503 }),
      }),
    );
  });

  it('logs an extra endpoint Atlas would not delete with the error', async () => {
    const item = table.put({
      status: 'ACTIVE',
      vpcRegionName: undefined,
      unconfirmedCreates: [minutesAgo(5)],
    });
    atlas.seedFor(item, 'ACTIVE');
    atlas.endpoints.set(item.groupId, [
      ...(atlas.endpoints.get(item.groupId) ?? []),
      { id: 'f'.repeat(24), cloudProvider: 'AWS', regionName: item.regionName, status: 'INITIATING' },
    ]);
    const refusing = {
      withClient: <T>(profile: string, fn: Parameters<typeof atlas.profiles.withClient<T>>[1]) =>
        atlas.profiles.withClient(profile, (client) =>
          fn({
            listEndpoints: client.listEndpoints,
            deleteEndpoint: async () => Promise.reject(apiError(500, 'UNEXPECTED_ERROR')),
          }),
        ),
    };

    const entries = await logsOf({ atlas: refusing });

    expect(entries).toContainEqual(withError(apiError(500, 'UNEXPECTED_ERROR').message));
  });

  it('never counts an extra whose delete Atlas answers 404 for a missing project as deleted: an operator is told', async () => {
    const item = table.put({
      status: 'ACTIVE',
      vpcRegionName: undefined,
      unconfirmedCreates: [minutesAgo(5)],
    });
    atlas.seedFor(item, 'ACTIVE');
    atlas.endpoints.set(item.groupId, [
      ...(atlas.endpoints.get(item.groupId) ?? []),
      { id: 'f'.repeat(24), cloudProvider: 'AWS', regionName: item.regionName, status: 'INITIATING' },
    ]);
    const missingProject = new AtlasApiError({
      status: 404,
      errorCode: 'GROUP_NOT_FOUND',
      detail: `No group with ID ${item.groupId} exists.`,
      operation: 'delete',
    });
    const refusing = {
      withClient: <T>(profile: string, fn: Parameters<typeof atlas.profiles.withClient<T>>[1]) =>
        atlas.profiles.withClient(profile, (client) =>
          fn({
            listEndpoints: client.listEndpoints,
            deleteEndpoint: async () => Promise.reject(missingProject),
          }),
        ),
    };
    const metrics = { addMetric: vi.fn() };

    const entries = await logsOf({ atlas: refusing, metrics });

    expect(table.get(item.key)?.unconfirmedCreates).toEqual([minutesAgo(5)]);
    expect(publishedDetails()).toEqual([]);
    expect(entries).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        naturalKey: item.key,
        failure: expect.objectContaining({ code: 'GROUP_NOT_FOUND', detail: missingProject.detail }),
      }),
    );
    expect(metrics.addMetric).toHaveBeenCalledWith(METRIC.checkFailed, 'Count', 1);
  });

  it('logs a FAILED key it could not hand back as an error, naming the key', async () => {
    const item = table.put({ status: 'ACTIVE' });
    atlas.seedFor(item, 'FAILED');

    const entries = await logsOf({
      requests: { send: vi.fn(async () => Promise.reject(new Error('SQS is down'))) },
    });

    expect(entries).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        naturalKey: item.key,
        error: expect.objectContaining({ message: 'SQS is down' }),
      }),
    );
  });

  it('records a recreation all the same when its follow-ups cannot be started, and logs why', async () => {
    const item = table.put({ status: 'ACTIVE' });
    atlas.seedFor(item, 'PENDING_RECREATION');

    const entries = await logsOf({
      requests: { send: vi.fn(async () => Promise.reject(new Error('SQS is down'))) },
      followUpFirstSeconds: 7,
    });

    expect(table.get(item.key)?.status).toBe('PENDING_RECREATION');
    expect(entries).toContainEqual(
      expect.objectContaining({
        level: 'WARN',
        naturalKey: item.key,
        error: expect.objectContaining({ message: 'SQS is down' }),
      }),
    );
  });

  it('logs a check it could not record as an error, naming the key', async () => {
    const item = table.put({ status: 'ACTIVE' });
    atlas.seedFor(item, 'ACTIVE');
    vi.spyOn(table.ledger, 'recordCheck').mockRejectedValue(
      new Error('Throughput exceeds the current capacity'),
    );

    const entries = await logsOf();

    expect(entries).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        naturalKey: item.key,
        error: expect.objectContaining({ message: 'Throughput exceeds the current capacity' }),
      }),
    );
  });
});
