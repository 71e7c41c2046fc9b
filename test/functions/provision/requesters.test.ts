/**
 * Who may ask for what: a record's requester is the queue it came on (or, on the private
 * continuation queue, the requester the provisioner itself wrote); its grant is checked before
 * anything else; and a delete releases only the asker's hold, unless an operator forces it.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import type { ProvisionRequestInput } from '#messages/request.ts';
import { type RequesterEntry, Requesters } from '#messages/requesters.ts';
import { createRequest, sqsRecord } from '#test/support/sqs-events.ts';
import {
  buildProvisioner,
  keyOf,
  provisionerScene,
  publishedDetails,
  QUEUES,
  sentTo,
  sqs,
} from './fixtures.ts';

const PROJECT_A = 'aaaaaaaaaaaaaaaaaaaaaaaa';
const BASE = 'https://sqs.us-east-1.amazonaws.com/123456789012';
const ARN = 'arn:aws:sqs:us-east-1:123456789012';

const requester = (name: string, grant: Partial<RequesterEntry> = {}): RequesterEntry => ({
  name,
  queueArn: `${ARN}:${name}-requests`,
  queueUrl: `${BASE}/${name}-requests`,
  dlqUrl: `${BASE}/${name}-dlq`,
  projects: 'ALL',
  profiles: ['default'],
  actions: ['create', 'delete'],
  ...grant,
});
const TEAM_A = requester('team-a', { projects: [PROJECT_A] });
const TEAM_B = requester('team-b');
const OPS = requester('ops', { actions: ['delete'], operator: true });
const CREATE_ONLY = requester('create-only', { actions: ['create'], profiles: ['default'] });

/** A record as SQS delivers it from `from`'s own queue, with the attributes its sender set. */
function from(
  entry: RequesterEntry,
  body: ProvisionRequestInput | string,
  attributes: Record<string, string> = {},
) {
  const record = sqsRecord(body);
  record.eventSourceARN = entry.queueArn;
  record.messageAttributes = attributesOf(attributes);
  return record;
}

const attributesOf = (attributes: Record<string, string>): SQSRecord['messageAttributes'] =>
  Object.fromEntries(
    Object.entries(attributes).map(([name, stringValue]) => [
      name,
      { dataType: 'String', stringValue, stringListValues: [], binaryListValues: [] },
    ]),
  );

describe('Provisioner, who may ask for what', () => {
  const scene = provisionerScene();
  const build = () =>
    buildProvisioner(scene.atlas, { requesters: new Requesters([TEAM_A, TEAM_B, OPS, CREATE_ONLY]) })
      .provisioner;

  describe('a request outside its grant', () => {
    it.each([
      [
        'a project',
        { groupId: 'bbbbbbbbbbbbbbbbbbbbbbbb' },
        TEAM_A,
        /"team-a" is not granted project bbbbbbbbbbbbbbbbbbbbbbbb$/,
      ],
      [
        'an action',
        { groupId: PROJECT_A, action: 'delete' as const },
        CREATE_ONLY,
        /"create-only" is not granted action "delete"$/,
      ],
    ])(
      'is rejected NOT_AUTHORIZED for %s, naming the requester and what the grant lacks, before it claims or calls anything',
      async (_, fields, asker, reason) => {
        const provisioner = build();
        const request = createRequest(fields);

        await expect(provisioner.handleRecord(from(asker, request))).resolves.toBe('REJECTED');

        expect(scene.atlas.calls).toEqual([]);
        expect(scene.table.items.get(keyOf(request))).toBeUndefined();
        expect(scene.table.writes).toEqual([]);
        const [answer] = publishedDetails();
        expect(answer).toMatchObject({
          outcome: 'REJECTED',
          requester: asker.name,
          requestIds: [request.requestId],
        });
        expect(answer?.error?.code).toBe('NOT_AUTHORIZED');
        expect(answer?.error?.detail).toMatch(reason);
        expect(sentTo(QUEUES.rejectedQueueUrl)).toEqual([
          expect.objectContaining({
            MessageAttributes: expect.objectContaining({
              ErrorCode: { DataType: 'String', StringValue: 'NOT_AUTHORIZED' },
              RequesterName: { DataType: 'String', StringValue: asker.name },
            }),
          }),
        ]);
      },
    );

    it('names every part the grant lacks at once', async () => {
      const provisioner = buildProvisioner(scene.atlas, {
        allowedProfiles: ['default', 'prod'],
        requesters: new Requesters([TEAM_A, CREATE_ONLY]),
      }).provisioner;
      const request = createRequest({ action: 'delete', profile: 'prod' });

      await provisioner.handleRecord(from(TEAM_A, request));

      expect(publishedDetails()[0]?.error?.detail).toBe(
        `requester "team-a" is not granted project ${request.groupId}, profile "prod"`,
      );
    });

    it('is allowed once inside the grant: the same request on a granted project is provisioned', async () => {
      await expect(build().handleRecord(from(TEAM_A, createRequest({ groupId: PROJECT_A })))).resolves.toBe(
        'PROVISIONED',
      );
    });
  });

  describe('identity comes only from the channel', () => {
    it('ignores a body naming another requester: the body is not the channel (and the contract refuses the field)', async () => {
      const provisioner = build();
      const request = { ...createRequest({ groupId: 'bbbbbbbbbbbbbbbbbbbbbbbb' }), requester: 'team-b' };

      await expect(provisioner.handleRecord(from(TEAM_A, JSON.stringify(request)))).resolves.toBe('REJECTED');

      expect(scene.atlas.calls).toEqual([]);
      expect(publishedDetails()[0]).toMatchObject({
        requester: 'team-a',
        error: { code: 'INVALID_REQUEST' },
      });
    });

    it.each(['Requester', 'FollowUp', 'EndpointId', 'Waits'])(
      'rejects a request carrying the reserved attribute %s, naming it, never trusting or dropping it',
      async (name) => {
        const provisioner = build();
        const request = createRequest({ groupId: 'bbbbbbbbbbbbbbbbbbbbbbbb' });

        const outcome = await provisioner.handleRecord(from(TEAM_A, request, { [name]: 'team-b' }));

        expect(outcome).toBe('REJECTED');
        expect(scene.atlas.calls).toEqual([]);
        expect(scene.table.items.size).toBe(0);
        const [answer] = publishedDetails();
        expect(answer).toMatchObject({
          outcome: 'REJECTED',
          requester: 'team-a',
          error: { code: 'UNTRUSTED_MESSAGE' },
        });
        expect(answer?.error?.detail).toContain(`"${name}" is reserved`);
      },
    );

    it('rejects an OriginalMessageId that is not an SQS message id, and never copies more than a bounded part of it', async () => {
      const provisioner = build();
      const huge = 'x'.repeat(48 * 1024);

      await provisioner.handleRecord(from(TEAM_B, createRequest(), { OriginalMessageId: huge }));

      const [answer] = publishedDetails();
      expect(answer?.error?.code).toBe('UNTRUSTED_MESSAGE');
      expect(answer?.messageId).not.toBe(huge);
      expect(JSON.stringify(answer).length).toBeLessThan(2_000);
      expect(sentTo(QUEUES.continuationQueueUrl)).toEqual([]);
    });

    it("answers a replay under the messageId it carries, within the requester's own scope", async () => {
      const provisioner = build();

      await provisioner.handleRecord(
        from(TEAM_B, createRequest(), { OriginalMessageId: 'first-message-id' }),
      );

      expect(publishedDetails()[0]).toMatchObject({ requester: 'team-b', messageId: 'first-message-id' });
    });

    it('rejects a record from a queue of no requester, to the rejected queue', async () => {
      const record = sqsRecord(createRequest());
      record.eventSourceARN = `${ARN}:somebody-elses-queue`;

      await expect(build().handleRecord(record)).resolves.toBe('REJECTED');

      expect(scene.atlas.calls).toEqual([]);
      expect(publishedDetails()[0]?.error?.detail).toMatch(/somebody-elses-queue" belongs to no requester/);
      expect(sqs.commandCalls(SendMessageCommand).map((c) => c.args[0].input.QueueUrl)).toEqual([
        QUEUES.rejectedQueueUrl,
      ]);
    });

    it('rejects a continuation that names no requester of the deployment', async () => {
      const record = sqsRecord(createRequest());
      record.eventSourceARN = QUEUES.continuationQueueArn;
      record.messageAttributes = attributesOf({ Requester: 'nobody', Waits: '1' });

      await expect(build().handleRecord(record)).resolves.toBe('REJECTED');

      expect(scene.atlas.calls).toEqual([]);
      expect(publishedDetails()[0]?.error?.detail).toMatch(/continuation names no requester.*"nobody"/);
    });

    it("acts for the requester a continuation names, and parks it in that requester's own DLQ", async () => {
      const provisioner = buildProvisioner(scene.atlas, {
        requesters: new Requesters([TEAM_A, TEAM_B]),
        maxAttempts: 1,
      }).provisioner;
      const record = sqsRecord(createRequest());
      record.eventSourceARN = QUEUES.continuationQueueArn;
      record.messageAttributes = attributesOf({ Requester: 'team-b', Waits: '1', OriginalMessageId: 'm-1' });
      scene.atlas.failNext('list', Object.assign(new Error('boom'), { name: 'Unexpected' }));

      await expect(provisioner.handleRecord(record)).resolves.toBe('DEAD_LETTERED');

      expect(sentTo(TEAM_B.dlqUrl)).toHaveLength(1);
      expect(publishedDetails()[0]).toMatchObject({ requester: 'team-b', messageId: 'm-1' });
    });
  });

  describe('holds', () => {
    it('releases only the asker while another requester holds the key: RELEASED, how many remain, the endpoint stays', async () => {
      const provisioner = build();
      const request = createRequest({ groupId: PROJECT_A });
      await provisioner.handleRecord(from(TEAM_A, request));
      await provisioner.handleRecord(from(TEAM_B, { ...request, requestId: 'b-create' }));
      scene.atlas.calls.length = 0;

      const outcome = await provisioner.handleRecord(
        from(TEAM_B, { ...request, requestId: 'b-delete', action: 'delete' }),
      );

      expect(outcome).toBe('RELEASED');
      expect(scene.atlas.calls).toEqual([]);
      expect(scene.atlas.endpoints.get(PROJECT_A)?.map((e) => e.status)).toEqual(['INITIATING']);
      expect(scene.table.items.get(keyOf(request))).toMatchObject({
        holds: ['team-a'],
        status: 'INITIATING',
        action: 'create',
      });
      const answer = publishedDetails().at(-1);
      expect(answer).toMatchObject({ outcome: 'RELEASED', requester: 'team-b', holdsRemaining: 1 });
      expect(JSON.stringify(answer)).not.toContain('team-a');
    });

    it('deletes the endpoint with the last hold', async () => {
      const provisioner = build();
      const request = createRequest({ groupId: PROJECT_A });
      await provisioner.handleRecord(from(TEAM_A, request));
      await provisioner.handleRecord(from(TEAM_B, { ...request, requestId: 'b-create' }));
      await provisioner.handleRecord(from(TEAM_B, { ...request, requestId: 'b-delete', action: 'delete' }));

      const outcome = await provisioner.handleRecord(
        from(TEAM_A, { ...request, requestId: 'a-delete', action: 'delete' }),
      );

      expect(outcome).toBe('DELETE_REQUESTED');
      expect(scene.atlas.endpoints.get(PROJECT_A)?.map((e) => e.status)).toEqual(['DELETING']);
      expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('holds');
      expect(publishedDetails().at(-1)).not.toHaveProperty('forced');
    });

    it("never deletes an endpoint for a requester that holds none of it: another's endpoint stays", async () => {
      const provisioner = build();
      const request = createRequest({ groupId: PROJECT_A });
      await provisioner.handleRecord(from(TEAM_A, request));

      const outcome = await provisioner.handleRecord(
        from(TEAM_B, { ...request, requestId: 'b-delete', action: 'delete' }),
      );

      expect(outcome).toBe('RELEASED');
      expect(scene.atlas.endpoints.get(PROJECT_A)?.map((e) => e.status)).toEqual(['INITIATING']);
    });

    it('counts a repeated create as one hold: its own delete then deletes', async () => {
      const provisioner = build();
      const request = createRequest({ groupId: PROJECT_A });
      await provisioner.handleRecord(from(TEAM_A, request));
      await provisioner.handleRecord(from(TEAM_A, { ...request, requestId: 'again' }));

      expect(scene.table.items.get(keyOf(request))?.holds).toEqual(['team-a']);
      await expect(
        provisioner.handleRecord(from(TEAM_A, { ...request, requestId: 'a-delete', action: 'delete' })),
      ).resolves.toBe('DELETE_REQUESTED');
    });

    it('lets an operator delete whatever the holds, and says the delete was forced', async () => {
      const provisioner = build();
      const request = createRequest({ groupId: PROJECT_A });
      await provisioner.handleRecord(from(TEAM_A, request));
      await provisioner.handleRecord(from(TEAM_B, { ...request, requestId: 'b-create' }));

      const outcome = await provisioner.handleRecord(
        from(OPS, { ...request, requestId: 'ops-delete', action: 'delete' }),
      );

      expect(outcome).toBe('DELETE_REQUESTED');
      expect(scene.atlas.endpoints.get(PROJECT_A)?.map((e) => e.status)).toEqual(['DELETING']);
      const published = publishedDetails();
      expect(published.find((e) => e.requester === 'ops')).toMatchObject({
        outcome: 'DELETE_REQUESTED',
        forced: true,
      });
      // The holders' creates will never reach ACTIVE: each is told, naming the operator's delete.
      expect(published.filter((e) => e.outcome === 'SUPERSEDED')).toEqual([
        expect.objectContaining({
          requester: 'team-a',
          requestIds: [request.requestId],
          supersededBy: 'ops-delete',
        }),
        expect.objectContaining({
          requester: 'team-b',
          requestIds: ['b-create'],
          supersededBy: 'ops-delete',
        }),
      ]);
      expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('holds');
    });

    it('keeps the hold of a create that waits, through its continuation, for the requester that sent it', async () => {
      const provisioner = buildProvisioner(scene.atlas, {
        requesters: new Requesters([TEAM_A]),
        followUp: { firstSeconds: 10, maxSeconds: 30 },
      }).provisioner;
      const request = createRequest({ groupId: PROJECT_A });

      await provisioner.handleRecord(from(TEAM_A, request));
      const [followUp] = sentTo(QUEUES.continuationQueueUrl);

      expect(followUp?.MessageAttributes?.Requester).toEqual({ DataType: 'String', StringValue: 'team-a' });
      expect(scene.table.items.get(keyOf(request))?.holds).toEqual(['team-a']);
    });
  });
});
