/**
 * End to end with requesters (issue 19, "who may ask for what"): each requester sends on its own
 * queue, the provisioner acts for the requester whose queue a message came on and within its
 * grant only, holds keep an endpoint while any requester needs it, an operator's delete is
 * forced, and the front door turns an account's request events into its requester's requests.
 * The ground truth is read where it lives: the ledger on moto, the simulator's endpoints and its
 * recorded calls, the rejected queue, and the status events the tracker hears.
 */
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusChangedDetail } from '#events/schema.ts';
import { REQUESTED_DETAIL_TYPE } from '#messages/front-door.ts';
import { naturalKey } from '#messages/request.ts';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import type { TrackedRequest } from '#test/local/tracker.ts';
import {
  attribute,
  body,
  endpointKey,
  eventually,
  keepFunctionLogs,
  ledgerItems,
  peekQueue,
  queueDepth,
  simulatorOf,
} from './support.ts';

keepFunctionLogs();

const ACCOUNT_A = '111111111111';
const ACCOUNT_B = '222222222222';
const ACCOUNT_OPS = '333333333333';
const ACCOUNT_DOOR = '444444444444';
/** The one project team-a is granted. */
const P = '6630000000000000000000a1';
/** A project outside team-a's grant (team-b, granted ALL, may ask for it). */
const Q = '6630000000000000000000b2';
const BUS = 'platform-requests';
type Region = Parameters<typeof body>[0]['regionName'];

const SETTINGS = {
  requestEventBusName: BUS,
  requestEventSources: ['orders'],
  requesters: [
    {
      name: 'team-a',
      senders: [ACCOUNT_A],
      projects: [P],
      profiles: ['default'],
      actions: ['create' as const, 'delete' as const],
    },
    {
      name: 'team-b',
      senders: [ACCOUNT_B],
      frontDoorAccounts: [ACCOUNT_B],
      projects: 'ALL' as const,
      profiles: ['default'],
      actions: ['create' as const, 'delete' as const],
    },
    {
      name: 'ops',
      senders: [ACCOUNT_OPS],
      projects: 'ALL' as const,
      profiles: ['default'],
      actions: ['delete' as const],
      operator: true,
    },
    {
      name: 'door',
      frontDoorAccounts: [ACCOUNT_DOOR],
      projects: 'ALL' as const,
      profiles: ['default'],
      actions: ['create' as const],
    },
  ],
};

describe('requesters: who may ask for what', () => {
  let flow: LocalFlow;

  beforeAll(async () => {
    flow = await startLocalFlow({
      settings: SETTINGS,
      simulator: { activationDelayMs: 300, deletionDelayMs: 300 },
      checkPeriodMs: 1000,
    });
  });
  afterAll(async () => {
    await flow?.stop();
  });

  /** Sends one request as the requester and waits for its final place. */
  const ask = async (
    requester: string,
    request: Parameters<typeof body>[0] | string,
    attributes?: Record<string, string>,
  ): Promise<TrackedRequest> => {
    const [tracked] = await flow.send([typeof request === 'string' ? request : body(request)], {
      requester,
      ...(attributes && { attributes }),
    });
    if (!tracked) throw new Error('nothing sent');
    await flow.tracker.waitFor(() => tracked.final !== undefined, {
      timeoutMs: 30_000,
      what: `${tracked.label} (${requester}) to reach a final place`,
    });
    return tracked;
  };
  const outcomes = (r: TrackedRequest) => r.events.map((e) => e.outcome);
  const itemOf = async (key: string) => (await ledgerItems(flow.environment)).find((i) => i.key === key);
  const atlasCallsFor = (groupId: string) =>
    simulatorOf(flow).requests.filter((r) => r.groupId === groupId || r.path.includes(groupId));
  const endpointsOf = (groupId: string, regionName: string) =>
    simulatorOf(flow)
      .endpoints(groupId)
      .filter((e) => e.regionName === regionName && e.status !== 'DELETED');

  const K1 = { groupId: P, cloudProvider: 'AWS', regionName: 'US_EAST_1' } as const;
  const k1 = naturalKey(K1);

  it('writes each requester into REQUESTERS with its own queues and grant, as the stack does', () => {
    const registry = JSON.parse(flow.environment.provisionEnvironment.REQUESTERS ?? '[]');
    const { requesters } = flow.environment;

    expect(Object.keys(requesters)).toEqual(['team-a', 'team-b', 'ops', 'door']);
    expect(registry).toEqual([
      {
        name: 'team-a',
        queueArn: requesters['team-a']?.queue.arn,
        queueUrl: requesters['team-a']?.queue.url,
        dlqUrl: requesters['team-a']?.dlq.url,
        projects: [P],
        profiles: ['default'],
        actions: ['create', 'delete'],
      },
      expect.objectContaining({ name: 'team-b', projects: 'ALL' }),
      expect.objectContaining({ name: 'ops', actions: ['delete'], operator: true }),
      expect.objectContaining({ name: 'door', actions: ['create'] }),
    ]);
  });

  it('provisions an allowed create of team-a, answered to team-a: PROVISIONED, then ACTIVE', async () => {
    // Act
    const created = await ask('team-a', { requestId: 'a-create', ...K1 });

    // Assess
    expect(created.final, flow.tracker.describe()).toBe('provisioned');
    expect(outcomes(created)[0]).toBe('PROVISIONED');
    expect(created.events.at(-1)?.status).toBe('ACTIVE');
    expect(new Set(created.events.map((e) => e.requester))).toEqual(new Set(['team-a']));
    const item = await eventually(async () => (await itemOf(k1))?.status === 'ACTIVE' && itemOf(k1), {
      timeoutMs: 10_000,
      what: 'the ledger to record the key ACTIVE',
    });
    expect(item?.requesters).toEqual({ 'team-a': ['a-create'] });
    expect(item?.holds).toEqual(['team-a']);
    expect(endpointsOf(P, 'US_EAST_1').map((e) => e.status)).toEqual(['ACTIVE']);
  });

  it("rejects team-a's create for a project outside its grant, naming team-a, before any Atlas call", async () => {
    // Act
    const refused = await ask('team-a', { requestId: 'a-outside', groupId: Q, regionName: 'EU_WEST_1' });

    // Assess: its answer, to team-a
    expect(refused.final).toBe('rejected');
    expect(refused.error?.code).toBe('NOT_AUTHORIZED');
    expect(refused.error?.detail).toContain(`requester "team-a" is not granted project ${Q}`);
    expect(refused.events.map((e) => e.requester)).toEqual(['team-a']);
    // Assess: nothing happened for it: no Atlas call for the project, no ledger item
    expect(atlasCallsFor(Q)).toEqual([]);
    expect((await ledgerItems(flow.environment)).filter((i) => i.key.startsWith(Q))).toEqual([]);
    // Assess: the message is parked in the rejected queue with its reason
    const rejected = await peekQueue(flow.environment.clients.sqs, flow.environment.rejectedQueue.url);
    const parked = rejected.find((m) => m.Body === refused.body);
    expect(attribute(parked ?? {}, 'ErrorCode')).toBe('NOT_AUTHORIZED');
    expect(attribute(parked ?? {}, 'Detail')).toContain('requester "team-a"');
  });

  it("adopts for team-b the key team-a holds, and releases only team-b's hold on its delete", async () => {
    // Act: team-b creates the key team-a made
    const adopted = await ask('team-b', { requestId: 'b-create', ...K1 });

    // Assess: the same endpoint, now held by both
    expect(adopted.final).toBe('provisioned');
    expect(outcomes(adopted)).toContain('ADOPTED');
    expect(adopted.events.every((e) => e.requester === 'team-b')).toBe(true);
    expect((await itemOf(k1))?.holds).toEqual(['team-a', 'team-b']);
    expect(endpointsOf(P, 'US_EAST_1')).toHaveLength(1);

    // Act: team-b deletes it
    const released = await ask('team-b', { requestId: 'b-delete', action: 'delete', ...K1 });

    // Assess: RELEASED, one hold left, the endpoint stays for team-a
    const answer = released.events.find((e) => e.outcome === 'RELEASED');
    expect(released.final, flow.tracker.describe()).toBe('released');
    expect(answer).toMatchObject({ requester: 'team-b', holdsRemaining: 1 });
    expect(outcomes(released)).not.toContain('DELETE_REQUESTED');
    expect((await itemOf(k1))?.holds).toEqual(['team-a']);
    expect(endpointsOf(P, 'US_EAST_1').map((e) => e.status)).toEqual(['ACTIVE']);
  });

  it("deletes the endpoint on team-a's delete, the last hold: DELETE_REQUESTED, then DELETED", async () => {
    // Act
    const deleted = await ask('team-a', { requestId: 'a-delete', action: 'delete', ...K1 });

    // Assess
    expect(deleted.final, flow.tracker.describe()).toBe('deleted');
    expect(outcomes(deleted)[0]).toBe('DELETE_REQUESTED');
    expect(deleted.events.at(-1)?.status).toBe('DELETED');
    expect(deleted.events.every((e) => e.requester === 'team-a')).toBe(true);
    await eventually(() => endpointsOf(P, 'US_EAST_1').length === 0, {
      timeoutMs: 10_000,
      what: 'the endpoint to be gone from Atlas',
    });
    const item = await eventually(async () => (await itemOf(k1))?.status === 'DELETED' && itemOf(k1), {
      timeoutMs: 10_000,
      what: 'the ledger to record the key DELETED',
    });
    expect(item?.holds ?? []).toEqual([]);
  });

  it("force-deletes on the operator's delete a key team-a and team-b hold: forced, and gone", async () => {
    // Prepare: both teams hold a key
    const key = { groupId: P, regionName: 'EU_WEST_1' } as const;
    expect((await ask('team-a', { requestId: 'a-held', ...key })).final).toBe('provisioned');
    expect((await ask('team-b', { requestId: 'b-held', ...key })).final).toBe('provisioned');
    const k2 = naturalKey({ ...key, cloudProvider: 'AWS' });
    expect((await itemOf(k2))?.holds).toEqual(['team-a', 'team-b']);

    // Act
    const forced = await ask('ops', { requestId: 'ops-delete', action: 'delete', ...key });

    // Assess: the operator's answer says it was forced; the endpoint is gone
    expect(forced.final, flow.tracker.describe()).toBe('deleted');
    expect(forced.events[0]).toMatchObject({
      outcome: 'DELETE_REQUESTED',
      requester: 'ops',
      forced: true,
    });
    await eventually(() => endpointsOf(P, 'EU_WEST_1').length === 0, {
      timeoutMs: 10_000,
      what: 'the forced-deleted endpoint to be gone from Atlas',
    });
    const item = await eventually(async () => (await itemOf(k2))?.status === 'DELETED' && itemOf(k2), {
      timeoutMs: 10_000,
      what: 'the ledger to record the forced key DELETED',
    });
    expect(item?.holds ?? []).toEqual([]);
  });

  it("acts for nobody else when a message on team-a's queue names team-b (attribute or body)", async () => {
    // Act: a project only team-b may ask for, sent on team-a's queue claiming to be team-b
    const byAttribute = await ask(
      'team-a',
      { requestId: 'a-as-b-attribute', groupId: Q, regionName: 'US_WEST_2' },
      { Requester: 'team-b' },
    );
    const byBody = await ask(
      'team-a',
      JSON.stringify({
        requestId: 'a-as-b-body',
        requester: 'team-b',
        groupId: Q,
        cloudProvider: 'AWS',
        regionName: 'US_WEST_2',
      }),
    );

    // Assess: both rejected with their reason, answered to team-a, and nothing done for anyone
    expect(byAttribute.final).toBe('rejected');
    expect(byAttribute.error?.code).toBe('UNTRUSTED_MESSAGE');
    expect(byAttribute.error?.detail).toContain('"Requester"');
    expect(byBody.final).toBe('rejected');
    expect(byBody.error?.detail).toContain('requester');
    for (const r of [byAttribute, byBody]) expect(r.events.map((e) => e.requester)).toEqual(['team-a']);
    expect(atlasCallsFor(Q)).toEqual([]);
    expect((await ledgerItems(flow.environment)).filter((i) => i.key.startsWith(Q))).toEqual([]);
  });

  it("turns a front-door event of an account into that account's requester's request, and no other's", {
    timeout: 60_000,
  }, async () => {
    // Prepare
    const { environment } = flow;
    const relayDepths = async () =>
      Promise.all((environment.frontDoor?.relays ?? []).map((r) => queueDepth(r.from.sqs, r.from.queue.url)));
    const entry = (requestId: string, regionName: Region) => ({
      EventBusName: BUS,
      Source: 'orders',
      DetailType: REQUESTED_DETAIL_TYPE,
      Detail: body({ requestId, groupId: Q, regionName }),
    });
    flow.tracker.followUnknown();

    // Act: an event of the run's own account, which no requester's front door names
    const own = await environment.clients.eventBridge.send(
      new PutEventsCommand({ Entries: [entry('own-account', 'SA_EAST_1')] }),
    );

    // Assess: moto delivers synchronously: no rule took it
    expect(own.FailedEntryCount).toBe(0);
    expect(await relayDepths()).toEqual((environment.frontDoor?.relays ?? []).map(() => 0));

    // Act: one event from the door account, one from team-b's, each with its own credentials
    const door = await environment.asAccount(ACCOUNT_DOOR);
    const teamB = await environment.asAccount(ACCOUNT_B);
    await door.eventBridge.send(new PutEventsCommand({ Entries: [entry('door-create', 'AP_SOUTHEAST_2')] }));
    await teamB.eventBridge.send(new PutEventsCommand({ Entries: [entry('b-door-create', 'CA_CENTRAL_1')] }));
    const arrived = (id: string) => flow.tracker.requests.find((r) => r.requestId === id);
    await flow.tracker.waitFor(
      () => Boolean(arrived('door-create')?.final && arrived('b-door-create')?.final),
      {
        timeoutMs: 45_000,
        what: 'both front-door requests to reach a final place',
      },
    );

    // Assess: each acts as its account's requester, and is answered to it
    const fromDoor = arrived('door-create') as TrackedRequest;
    const fromB = arrived('b-door-create') as TrackedRequest;
    expect(fromDoor.requester).toBe('door');
    expect(fromB.requester).toBe('team-b');
    expect(fromDoor.final, flow.tracker.describe()).toBe('provisioned');
    expect(fromB.final, flow.tracker.describe()).toBe('provisioned');
    const requesters = (e: StatusChangedDetail[]) => new Set(e.map((x) => x.requester));
    expect(requesters(fromDoor.events)).toEqual(new Set(['door']));
    expect(requesters(fromB.events)).toEqual(new Set(['team-b']));
    const items = await ledgerItems(environment);
    const requestersOf = (regionName: Region) =>
      items.find((i) => i.key === naturalKey({ groupId: Q, cloudProvider: 'AWS', regionName }))?.requesters;
    expect(requestersOf('AP_SOUTHEAST_2')).toEqual({ door: ['door-create'] });
    expect(requestersOf('CA_CENTRAL_1')).toEqual({ 'team-b': ['b-door-create'] });
    expect(
      simulatorOf(flow)
        .endpoints(Q)
        .map((e) => endpointKey(e)),
    ).toEqual(
      expect.arrayContaining([
        endpointKey({ groupId: Q, regionName: 'AP_SOUTHEAST_2' }),
        endpointKey({ groupId: Q, regionName: 'CA_CENTRAL_1' }),
      ]),
    );
    // The run's own account's event never became a request.
    expect(arrived('own-account')).toBeUndefined();
    expect(flow.tracker.problems).toEqual([]);
  });
});
