/**
 * The delete action (functions/provision/delete.ts) while a create is in doubt: how long the
 * request waits before a listing can tell what to delete.
 */
import { describe, expect, it } from 'vitest';
import { AtlasNetworkError } from '#lib/errors.ts';
import { createRequest, sqsRecord } from '#test/support/sqs-events.ts';
import { buildProvisioner, provisionerScene, QUEUES, sentTo, sqs } from './fixtures.ts';

describe('delete', () => {
  const scene = provisionerScene();

  it('waits, while a create is in doubt, only for what is left of the settle period', async () => {
    const request = createRequest();
    scene.atlas.failNext('create', new AtlasNetworkError('create', 'timeout'));
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, createSettleSeconds: 30 });
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
    sqs.resetHistory();
    scene.clock += 27_500;

    await expect(
      provisioner.handleRecord(sqsRecord({ ...request, requestId: 'del-1', action: 'delete' })),
    ).resolves.toBe('WAITING');

    expect(sentTo(QUEUES.continuationQueueUrl)).toEqual([
      expect.objectContaining({
        DelaySeconds: 3,
        MessageAttributes: expect.objectContaining({ Waits: { DataType: 'Number', StringValue: '1' } }),
      }),
    ]);
  });
});
