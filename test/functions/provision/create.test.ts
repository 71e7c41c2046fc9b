/**
 * The create action (functions/provision/create.ts) on the paths the broader provisioner tests
 * leave open: a create in doubt resolved by a listing whatever the ledger names, the creates in
 * doubt the key remembers after extras are deleted, and a FAILED endpoint being recreated that
 * Atlas lists again or another endpoint replaces.
 */
import { describe, expect, it, vi } from 'vitest';
import { AtlasApiError, AtlasNetworkError } from '#lib/errors.ts';
import { createRequest, sqsRecord } from '#test/support/sqs-events.ts';
import { buildProvisioner, keyOf, provisionerScene, publishedDetails, QUEUES, sentTo } from './fixtures.ts';

const SETTLE = 30;
const DAY_MS = 24 * 3_600_000;
const timeout = () => new AtlasNetworkError('create', 'timeout');

describe('create', () => {
  const scene = provisionerScene();

  const item = (request: object) => {
    const found = scene.table.items.get(keyOf(request));
    if (!found) throw new Error('no ledger item');
    return found;
  };

  /** `count` creates of one key time out, a settle period apart, each after a listing that shows nothing. */
  async function createsInDoubt(count: number, overrides: Parameters<typeof buildProvisioner>[1] = {}) {
    const request = createRequest();
    const { provisioner, metrics } = buildProvisioner(scene.atlas, {
      now: scene.now,
      createSettleSeconds: SETTLE,
      ...overrides,
    });
    const sentAt: string[] = [];
    for (let i = 0; i < count; i += 1) {
      scene.atlas.failNext('create', timeout());
      sentAt.push(new Date(scene.clock).toISOString());
      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
      scene.clock += SETTLE * 1000;
    }
    scene.atlas.calls.length = 0;
    return { request, provisioner, metrics, sentAt };
  }

  describe('a create in doubt', () => {
    it('is resolved by a listing after the settle period, even when the ledger names a live endpoint', async () => {
      // A sweep followed the endpoint the create made while its request was away: the ledger
      // names it (INITIATING) beside the create in doubt, and Atlas now lists it ACTIVE.
      const { request, provisioner } = await createsInDoubt(1);
      const landed = scene.endpoint(request, 'ACTIVE');
      Object.assign(item(request), { status: 'INITIATING', endpointId: landed.id });

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list']);
      expect(item(request)).toMatchObject({ status: 'ACTIVE', endpointId: landed.id });
      expect(item(request)).not.toHaveProperty('pendingCreate');
      expect(publishedDetails().at(-1)).toMatchObject({
        outcome: 'ADOPTED',
        status: 'ACTIVE',
        previousStatus: 'INITIATING',
      });
    });

    it('answered by the one endpoint listed leaves no creates in doubt remembered', async () => {
      const { request, provisioner } = await createsInDoubt(1);
      const landed = scene.endpoint(request, 'INITIATING');

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

      expect(item(request)).toMatchObject({ endpointId: landed.id, status: 'INITIATING' });
      expect(item(request)).not.toHaveProperty('unconfirmedCreates');
      expect(item(request)).not.toHaveProperty('pendingCreate');
    });

    it('answered by one endpoint forgets the remembered creates older than a day, keeping the others', async () => {
      const { request, provisioner, sentAt } = await createsInDoubt(2);
      const stale = new Date(scene.clock - DAY_MS - 1).toISOString();
      item(request).unconfirmedCreates = [stale, ...(item(request).unconfirmedCreates ?? [])];
      scene.endpoint(request, 'INITIATING');

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

      expect(item(request).unconfirmedCreates).toEqual([sentAt[0]]);
    });

    it('after three, with two endpoints listed: deletes the extra and remembers the create still unaccounted for', async () => {
      const { request, provisioner, sentAt } = await createsInDoubt(3);
      const extra = scene.endpoint(request, 'INITIATING');
      const kept = scene.endpoint(request, 'ACTIVE');

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

      expect(scene.atlas.calls.map((c) => [c.op, c.endpointId])).toEqual([
        ['list', undefined],
        ['delete', extra.id],
      ]);
      // The extra deleted accounts for the oldest create in doubt; the next one may still land.
      expect(item(request)).toMatchObject({ endpointId: kept.id, unconfirmedCreates: [sentAt[1]] });
      expect(publishedDetails().map((d) => [d.outcome, d.endpointId])).toEqual([
        ['ADOPTED', kept.id],
        ['DUPLICATE_DELETED', extra.id],
      ]);
    });

    it('still accounts for an extra endpoint exactly a day after it was sent', async () => {
      // One create in doubt, then one that Atlas answered: the first is remembered.
      const request = createRequest();
      const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, createSettleSeconds: SETTLE });
      scene.atlas.failNext('create', timeout());
      const firstSentAt = scene.clock;
      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
      scene.clock += SETTLE * 1000;
      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('PROVISIONED');
      const late = scene.endpoint(request, 'INITIATING');
      item(request).status = 'MISSING';
      scene.clock = firstSentAt + DAY_MS;

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

      expect(scene.atlas.calls.filter((c) => c.op === 'delete').map((c) => c.endpointId)).toEqual([late.id]);
      expect(publishedDetails().at(-1)).toMatchObject({ outcome: 'DUPLICATE_DELETED', endpointId: late.id });
    });

    it('whose successor answers 409 and lists two endpoints: deletes the extra two earlier creates account for', async () => {
      const { request, provisioner, metrics } = await createsInDoubt(2);
      vi.spyOn(scene.atlas, 'listEndpoints').mockResolvedValueOnce([]);
      scene.atlas.failNext(
        'create',
        new AtlasApiError({ status: 409, errorCode: 'CONFLICT', operation: 'create' }),
      );
      const kept = scene.endpoint(request, 'ACTIVE');
      const extra = scene.endpoint(request, 'INITIATING');

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

      expect(scene.atlas.calls.filter((c) => c.op === 'delete').map((c) => c.endpointId)).toEqual([extra.id]);
      expect(item(request)).toMatchObject({ endpointId: kept.id });
      expect(item(request)).not.toHaveProperty('pendingCreate');
      expect(metrics.addMetric).not.toHaveBeenCalledWith('DuplicateEndpoints', 'Count', expect.anything());
    });
  });

  it("creates rather than adopt an endpoint of another region whose VPC region is the request's", async () => {
    const request = createRequest();
    scene.atlas.seed(request.groupId, {
      cloudProvider: 'AWS',
      regionName: 'EU_WEST_1',
      vpcRegionName: 'US_EAST_1',
      status: 'ACTIVE',
    });
    const { provisioner } = buildProvisioner(scene.atlas);

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('PROVISIONED');
    expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list', 'create']);
  });

  describe('a FAILED endpoint', () => {
    it('answered by the create itself is announced once, as RECREATING', async () => {
      const request = createRequest();
      vi.spyOn(scene.atlas, 'createEndpoint').mockResolvedValueOnce({
        id: 'c'.repeat(24),
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'FAILED',
      });
      const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now });

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('RECREATING');

      expect(publishedDetails()).toEqual([
        expect.objectContaining({ outcome: 'RECREATING', endpointId: 'c'.repeat(24), status: 'DELETING' }),
      ]);
    });

    it('that Atlas lists FAILED again while it is recreated is deleted again, and counted', async () => {
      const request = createRequest();
      const failed = scene.endpoint(request, 'FAILED');
      const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now });
      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('RECREATING');
      // The delete did not take: Atlas lists the endpoint FAILED, not DELETING.
      failed.status = 'FAILED';
      scene.atlas.calls.length = 0;

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('RECREATING');

      expect(scene.atlas.calls.map((c) => [c.op, c.endpointId])).toEqual([
        ['list', undefined],
        ['delete', failed.id],
      ]);
      expect(item(request)).toMatchObject({ endpointFailures: 2, recreating: true });
    });

    it('replaced by another live endpoint while it is recreated: the key adopts it and stops recreating', async () => {
      const request = createRequest();
      scene.endpoint(request, 'FAILED');
      const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now });
      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('RECREATING');
      scene.atlas.endpoints.set(request.groupId, []);
      const replacement = scene.endpoint(request, 'ACTIVE');

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

      expect(item(request)).toMatchObject({ status: 'ACTIVE', endpointId: replacement.id });
      expect(item(request)).not.toHaveProperty('recreating');
    });

    it("found after a 409 counts against the key's failures: the last one allowed parks the request", async () => {
      const request = createRequest();
      scene.endpoint(request, 'FAILED');
      const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, maxEndpointFailures: 2 });
      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('RECREATING');
      // The FAILED endpoint is gone; the new create is refused, and a FAILED one is listed after all.
      scene.atlas.endpoints.set(request.groupId, []);
      vi.spyOn(scene.atlas, 'listEndpoints').mockResolvedValueOnce([]);
      scene.atlas.failNext(
        'create',
        new AtlasApiError({ status: 409, errorCode: 'CONFLICT', operation: 'create' }),
      );
      const second = scene.endpoint(request, 'FAILED');

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('DEAD_LETTERED');

      expect(scene.atlas.calls.filter((c) => c.op === 'delete')).toHaveLength(1);
      expect(item(request)).toMatchObject({ status: 'FAILED', endpointId: second.id });
      expect(sentTo(QUEUES.dlqUrl)).toHaveLength(1);
    });
  });
});
