/**
 * A key is bound to the profile its endpoint was made with: a request for it that names another
 * profile is rejected before anything reaches Atlas, so no request (and no failing one) can point
 * the key, or the status checker's sweep, at other credentials.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { AtlasApiError } from '#lib/errors.ts';
import { createRequest, sqsRecord } from '#test/support/sqs-events.ts';
import { buildProvisioner, keyOf, provisionerScene, publishedDetails, QUEUES, sqs } from './fixtures.ts';

const PROFILES = { allowedProfiles: ['default', 'ops'] };

describe('Provisioner, a key bound to its profile', () => {
  const scene = provisionerScene();

  it.each([
    ['create', 'create'],
    ['delete', 'delete'],
  ] as const)(
    'rejects a %s naming another profile than the endpoint was made with, with no Atlas call',
    async (_, action) => {
      // Prepare: the key's endpoint made with "default"
      const { provisioner } = buildProvisioner(scene.atlas, PROFILES);
      const request = createRequest();
      await provisioner.handleRecord(sqsRecord(request));
      scene.atlas.calls.length = 0;
      sqs.resetHistory();

      // Act
      const other = { ...request, requestId: 'other-1', action, profile: 'ops' };
      await expect(provisioner.handleRecord(sqsRecord(other))).resolves.toBe('REJECTED');

      // Assess: nothing reached Atlas, the key still points at "default", the reason names both
      expect(scene.atlas.calls).toEqual([]);
      const item = scene.table.items.get(keyOf(request));
      expect(item).toMatchObject({
        profile: 'default',
        status: 'INITIATING',
        requesters: { default: [request.requestId] },
      });
      expect(item).not.toHaveProperty('lease');
      expect(scene.atlas.endpoints.get(request.groupId)?.map((e) => e.status)).toEqual(['INITIATING']);
      const rejected = publishedDetails().at(-1);
      expect(rejected).toMatchObject({ outcome: 'REJECTED', requestIds: ['other-1'] });
      expect(rejected?.error).toMatchObject({ code: 'PROFILE_MISMATCH' });
      expect(rejected?.error?.detail).toMatch(/profile "default".*profile "ops"/);
      expect(sqs).toReceiveCommandWith(SendMessageCommand, {
        QueueUrl: QUEUES.rejectedQueueUrl,
        MessageAttributes: expect.objectContaining({
          ErrorCode: { DataType: 'String', StringValue: 'PROFILE_MISMATCH' },
        }),
      });
    },
  );

  it('rejects another profile while a create is in doubt, since that create was sent with the first', async () => {
    const { provisioner } = buildProvisioner(scene.atlas, PROFILES);
    const request = createRequest();
    scene.atlas.failNext(
      'create',
      new AtlasApiError({ status: 503, errorCode: 'SERVICE_UNAVAILABLE', operation: 'create' }),
    );
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
    expect(scene.table.items.get(keyOf(request))).toHaveProperty('pendingCreate');
    scene.atlas.calls.length = 0;

    await expect(
      provisioner.handleRecord(sqsRecord({ ...request, requestId: 'other-1', profile: 'ops' })),
    ).resolves.toBe('REJECTED');
    expect(scene.atlas.calls).toEqual([]);
    expect(scene.table.items.get(keyOf(request))?.profile).toBe('default');
  });

  it('lets a request that failed with another profile leave the key as it was', async () => {
    const { provisioner } = buildProvisioner(scene.atlas, PROFILES);
    const request = createRequest();
    // A new key's first request fails before any create: it leaves no endpoint and binds nothing.
    scene.atlas.failNext(
      'list',
      new AtlasApiError({ status: 403, errorCode: 'USER_UNAUTHORIZED', operation: 'list' }),
    );
    await expect(provisioner.handleRecord(sqsRecord({ ...request, profile: 'ops' }))).resolves.toBe(
      'DEAD_LETTERED',
    );

    await expect(provisioner.handleRecord(sqsRecord({ ...request, requestId: 'default-1' }))).resolves.toBe(
      'PROVISIONED',
    );
    expect(scene.table.items.get(keyOf(request))).toMatchObject({ profile: 'default', status: 'INITIATING' });
  });

  it('binds the key anew once its endpoint is gone', async () => {
    const { provisioner } = buildProvisioner(scene.atlas, PROFILES);
    const request = createRequest();
    await provisioner.handleRecord(sqsRecord(request));
    scene.atlas.endpoints.set(request.groupId, []);
    await expect(
      provisioner.handleRecord(sqsRecord({ ...request, requestId: 'delete-1', action: 'delete' })),
    ).resolves.toBe('DELETED');

    await expect(
      provisioner.handleRecord(sqsRecord({ ...request, requestId: 'ops-1', profile: 'ops' })),
    ).resolves.toBe('PROVISIONED');
    expect(scene.table.items.get(keyOf(request))).toMatchObject({ profile: 'ops', status: 'INITIATING' });
  });
});
