import { readFileSync } from 'node:fs';
import type { CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { CloudAssembly } from 'aws-cdk-lib/cx-api';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '#infra/app.ts';
import { DEFAULT_STACK_NAME } from '#infra/names.ts';
import type { AtlasBackupPrivateEndpointsStack } from '#infra/stack.ts';

// The feature flags `cdk synth` applies (cdk.json), with bundling skipped.
const CONTEXT = {
  ...JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context,
  'aws:cdk:bundling-stacks': [],
};
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:atlas-alarms';

describe('createApp settings from CDK context', () => {
  let stack: AtlasBackupPrivateEndpointsStack;
  let template: Template;
  const id = (c: IConstruct) => stack.getLogicalId(c.node.defaultChild as CfnElement);

  beforeAll(() => {
    // GIVEN a `settings` object (cdk.json) and `-c` keys, which arrive as strings
    const app = createApp({
      context: {
        ...CONTEXT,
        settings: { maxAttempts: 7, allowedProfiles: ['default'], eventBusName: 'ignored-bus' },
        stackName: 'AtlasBackupPrivateEndpointsTeamB',
        allowedProfiles: 'default, team-b',
        eventBusName: 'atlas-events',
        maxConcurrency: '3',
        projectConcurrency: '8',
        batchSize: '20',
        scheduleRateMinutes: '1',
        logRetentionDays: '90',
        alarmTopicArn: TOPIC,
      },
    });
    // WHEN the app is synthesized
    stack = app.node.findChild('AtlasBackupPrivateEndpointsTeamB') as AtlasBackupPrivateEndpointsStack;
    template = Template.fromStack(stack);
  });

  afterAll(() => CloudAssembly.cleanupTemporaryDirectories());

  it('names the stack from the stackName context', () => {
    expect(stack.stackName).toBe('AtlasBackupPrivateEndpointsTeamB');
  });

  it('takes settings from the settings object', () => {
    // THEN maxReceiveCount is maxAttempts 7 + 3
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: Match.objectLike({ maxReceiveCount: 10 }),
    });
  });

  it('lets an individual key win over the settings object and splits lists on commas', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: id(stack.provisioner.role as IConstruct) }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'secretsmanager:GetSecretValue',
            Resource: ['default', 'team-b'].map((profile) => ({
              'Fn::Join': [
                '',
                [
                  'arn:',
                  { Ref: 'AWS::Partition' },
                  ':secretsmanager:',
                  { Ref: 'AWS::Region' },
                  ':',
                  { Ref: 'AWS::AccountId' },
                  `:secret:cfn/atlas/profile/${profile}-??????`,
                ],
              ],
            })),
          }),
          Match.objectLike({
            Action: 'events:PutEvents',
            Resource: {
              'Fn::Join': [
                '',
                [
                  'arn:',
                  { Ref: 'AWS::Partition' },
                  ':events:',
                  { Ref: 'AWS::Region' },
                  ':',
                  { Ref: 'AWS::AccountId' },
                  ':event-bus/atlas-events',
                ],
              ],
            },
          }),
        ]),
      },
    });
  });

  it('coerces numbers given as strings, with a batching window for batches above 10', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 20,
      MaximumBatchingWindowInSeconds: 1,
      // 3 split between the request queue and the continuation queue, at least 2 each.
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    template.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'rate(1 minute)' });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 90 });
  });

  it("passes a function's setting given with -c on to its environment", () => {
    const checker = template.toJSON().Resources[id(stack.statusChecker)].Properties;
    expect(checker.Environment.Variables).toMatchObject({
      PROJECT_CONCURRENCY: '8',
      ALLOWED_PROFILES: 'default,team-b',
    });
  });

  it('notifies the alarm topic when any alarm fires and clears', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThan(0);
    for (const alarm of alarms) {
      expect(alarm.Properties).toMatchObject({ AlarmActions: [TOPIC], OKActions: [TOPIC] });
    }
  });

  describe('invalid context', () => {
    const build = (context: Record<string, unknown>) => () =>
      createApp({ context: { ...CONTEXT, ...context } });

    it('fails if a -c setting is invalid, naming it and the value', () => {
      expect(build({ maxConcurrency: '1' })).toThrow(/maxConcurrency: .*\(given "1"\)/);
    });

    it('fails if a list entry given with -c is invalid', () => {
      expect(build({ allowedProfiles: 'default,bad profile' })).toThrow(
        /allowedProfiles\.1: .*"bad profile"/,
      );
    });

    it('fails if the settings context is a string that is not JSON', () => {
      expect(build({ settings: '{maxAttempts: 3' })).toThrow(/"settings" context is not a JSON object/);
    });

    it('fails if the settings object holds an unknown setting', () => {
      expect(build({ settings: { maxAttempt: 3 } })).toThrow(/invalid settings/);
    });

    it('accepts the settings context as a JSON string, as `-c settings=...` passes it', () => {
      const app = createApp({ context: { ...CONTEXT, settings: '{"maxAttempts": 9}' } });
      const built = app.node.findChild(DEFAULT_STACK_NAME) as AtlasBackupPrivateEndpointsStack;
      expect(built.settings.maxAttempts).toBe(9);
    });
  });
});
