/**
 * End to end through the EventBridge front door, on moto (EventBridge and SQS), the real
 * provisioner and status checker, and the Atlas simulator (started here): an event put on the
 * front door bus becomes a request-queue message whose body is the event's detail, is provisioned,
 * and is answered by status events matched by its requestId. The queues are on moto here, because
 * moto's EventBridge delivers only to moto's queues; moto's rule has the template's pattern, and
 * expresses the template's InputPath as the input transformer moto applies (see environment.ts).
 */
import { readFileSync } from 'node:fs';
import { DescribeRuleCommand, ListTargetsByRuleCommand, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AtlasBackupPrivateEndpointsStack } from '#infra/stack.ts';
import { putRequestEvent } from '#messages/requester.ts';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import { endpointKey, keepFunctionLogs, simulatorOf } from './support.ts';

keepFunctionLogs();

const BUS = 'platform-requests';
const SOURCES = ['orders', 'com.acme.*'];
const GROUP = '6610000000000000000000f1';

describe('the EventBridge front door', () => {
  let flow: LocalFlow;

  beforeAll(async () => {
    flow = await startLocalFlow({
      queues: 'moto',
      settings: { requestEventBusName: BUS, requestEventSources: SOURCES },
      simulator: { activationDelayMs: 300 },
      checkPeriodMs: 500,
    });
  });
  afterAll(async () => {
    await flow?.stop();
    CloudAssembly.cleanupTemporaryDirectories();
  });

  it('has the rule the template has: its pattern, and the detail as the message body', async () => {
    // Prepare: the stack as `cdk synth` builds it from the same settings
    const { frontDoor, clients } = flow.environment;
    const template = Template.fromStack(
      new AtlasBackupPrivateEndpointsStack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'E2e', {
        settings: { requestEventBusName: BUS, requestEventSources: SOURCES },
      }),
    );
    const [rule] = Object.values(
      template.findResources('AWS::Events::Rule', { Properties: { EventBusName: BUS } }),
    );

    // Act
    const local = await clients.eventBridge.send(
      new DescribeRuleCommand({ Name: frontDoor?.ruleName, EventBusName: BUS }),
    );
    const { Targets = [] } = await clients.eventBridge.send(
      new ListTargetsByRuleCommand({ Rule: frontDoor?.ruleName, EventBusName: BUS }),
    );

    // Assess: the same pattern, the template's account (a token) being the account moto gives the run
    expect(rule?.Properties.EventPattern.account).toEqual([{ Ref: 'AWS::AccountId' }]);
    expect(JSON.parse(local.EventPattern ?? '')).toEqual({
      ...rule?.Properties.EventPattern,
      account: [flow.environment.accountId],
    });
    expect(rule?.Properties.Targets).toEqual([expect.objectContaining({ InputPath: '$.detail' })]);
    expect(Targets).toEqual([
      expect.objectContaining({
        Arn: flow.environment.requestQueue.arn,
        InputTransformer: { InputPathsMap: { detail: '$.detail' }, InputTemplate: '<detail>' },
      }),
    ]);
  });

  it('provisions a request put on the bus and answers it with status events matched by its requestId', {
    timeout: 60_000,
  }, async () => {
    // Prepare
    const { clients } = flow.environment;
    const sample = JSON.parse(readFileSync(new URL('../../events/put-events.json', import.meta.url), 'utf8'));

    // Requests through the front door arrive without a send of ours: follow them from their first delivery.
    flow.tracker.followUnknown();

    // Act: one through the requester library, one as the AWS CLI sample puts it, one from a source the rule does not accept
    const viaLibrary = await putRequestEvent(
      { groupId: GROUP, cloudProvider: 'AWS', regionName: 'EU_WEST_1' },
      { eventBusName: BUS, source: 'com.acme.orders', client: clients.eventBridge },
    );
    const cli = await clients.eventBridge.send(new PutEventsCommand({ Entries: sample }));
    const ignored = await putRequestEvent(
      { requestId: 'billing:not-accepted', groupId: GROUP, cloudProvider: 'AWS', regionName: 'US_EAST_1' },
      { eventBusName: BUS, source: 'billing', client: clients.eventBridge },
    );
    const cliRequest = JSON.parse(sample[0].Detail);
    const requestIds = [viaLibrary.requestId, cliRequest.requestId];
    await flow.tracker.waitFor(
      () => requestIds.every((id) => flow.tracker.requests.some((r) => r.requestId === id && r.final)),
      { timeoutMs: 45_000, what: 'both accepted requests to reach a final place' },
    );

    // Assess: the body the provisioner received is the detail, unchanged
    expect(cli.FailedEntryCount).toBe(0);
    const tracked = flow.tracker.requests.find((r) => r.requestId === viaLibrary.requestId);
    expect(JSON.parse(tracked?.body ?? '')).toEqual(viaLibrary.request);
    for (const requestId of requestIds) {
      const request = flow.tracker.requests.find((r) => r.requestId === requestId);
      expect(request?.final, flow.tracker.describe()).toBe('provisioned');
      const answers = flow.tracker.events.filter((e) => e.requestIds.includes(requestId));
      expect(answers.map((e) => e.outcome)).toContain('PROVISIONED');
      expect(answers.at(-1)?.status).toBe('ACTIVE');
    }
    const active = simulatorOf(flow)
      .endpoints()
      .filter((e) => e.status === 'ACTIVE')
      .map((e) => endpointKey(e));
    expect(active).toEqual(
      expect.arrayContaining([
        endpointKey({ groupId: GROUP, regionName: 'EU_WEST_1' }),
        endpointKey({ groupId: cliRequest.groupId, regionName: cliRequest.regionName }),
      ]),
    );
    // The event from a source the rule does not accept never became a request.
    expect(flow.tracker.requests.map((r) => r.requestId)).not.toContain(ignored.requestId);
    expect(flow.tracker.problems).toEqual([]);
  });
});
