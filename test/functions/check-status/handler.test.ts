import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { ScheduledEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { checkStatusEnvironment, resolveSettings } from '#infra/settings.ts';
import { FUNCTION_VARIABLES, VARIABLES } from '#runtime/environment.ts';
import { captureOutput, importWithEnv } from '#test/support/handler-module.ts';
import { checkResources } from '#test/support/resources.ts';
import { lambdaContext } from '#test/support/sqs-events.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const eventBridge = mockClient(EventBridgeClient);

/** What the stack gives the function with every setting at its default. */
const ENV: Record<string, string> = {
  AWS_REGION: 'us-east-1',
  ...checkStatusEnvironment(resolveSettings(), checkResources()),
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
};

const scheduledEvent = () =>
  JSON.parse(
    readFileSync(resolve(import.meta.dirname, '../../../events/scheduled.json'), 'utf8'),
  ) as ScheduledEvent;

const loadHandler = async (env: Record<string, string>) =>
  (await importWithEnv(env, () => import('../../../functions/check-status/handler.ts'))).handler;

describe('check-status handler', () => {
  beforeEach(() => {
    ddb.reset();
    eventBridge.reset();
    ddb.on(QueryCommand).resolves({ Items: [] });
  });

  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('fails the cold start with a message naming each missing or bad variable', async () => {
    const { LEDGER_TABLE_NAME: _, ...partial } = ENV;

    await expect(loadHandler({ ...partial, IN_PROGRESS_DEADLINE_MINUTES: '0' })).rejects.toThrow(
      /LEDGER_TABLE_NAME: .*IN_PROGRESS_DEADLINE_MINUTES: /,
    );
  });

  it('reads its environment through the contract: without any variable, the cold start names each it reads', async () => {
    const start = loadHandler({ AWS_REGION: 'us-east-1', POWERTOOLS_LOG_LEVEL: 'SILENT' });

    const pattern = FUNCTION_VARIABLES.checkStatus.map((o) => `${VARIABLES[o].name}: `).join('.*');
    await expect(start).rejects.toThrow(new RegExp(pattern));
  });

  it('checks the ledger on the scheduled event of events/scheduled.json and returns the summary', async () => {
    // Prepare
    const handler = await loadHandler(ENV);

    // Act
    const summary = await handler(scheduledEvent(), lambdaContext());

    // Assess
    expect(summary).toEqual({
      checked: 0,
      changed: 0,
      stuck: 0,
      missing: 0,
      duplicatesDeleted: 0,
      skipped: 0,
      projects: 0,
      stoppedEarly: false,
    });
    expect(ddb).toHaveReceivedCommandWith(QueryCommand, { TableName: 'ledger', IndexName: 'byCheck' });
  });

  it("stops reading the ledger once less than the safety margin of the function's time is left", async () => {
    // Prepare
    const handler = await loadHandler({ ...ENV, SAFETY_MARGIN_MS: '20000' });
    let remaining = 60_000;
    ddb.on(QueryCommand).callsFake(() => {
      remaining = 15_000;
      return {
        Items: [],
        LastEvaluatedKey: { key: 'k', tracked: 'OPEN', checkedAt: '2026-11-29T10:00:00.000Z' },
      };
    });

    // Act
    const summary = await handler(
      scheduledEvent(),
      lambdaContext({ getRemainingTimeInMillis: () => remaining }),
    );

    // Assess
    expect(summary).toMatchObject({ stoppedEarly: true, checked: 0 });
    expect(ddb).toHaveReceivedCommandTimes(QueryCommand, 1);
  });

  it('flushes the metrics of the run in the project namespace', async () => {
    // Prepare
    const handler = await loadHandler({ ...ENV, POWERTOOLS_METRICS_DISABLED: 'false' });
    const output = captureOutput();

    // Act
    await handler(scheduledEvent(), lambdaContext());

    // Assess
    const emf = output
      .map((line) => JSON.parse(line))
      .find((entry) => entry._aws?.CloudWatchMetrics?.[0]?.Namespace === 'AtlasBackupPrivateEndpoints');
    expect(emf).toMatchObject({ service: 'status-checker', CheckedEndpoints: 0, StatusChanged: 0, Stuck: 0 });
  });

  it("logs under the status checker's service name and counts its cold start", async () => {
    const handler = await loadHandler({
      ...ENV,
      POWERTOOLS_LOG_LEVEL: 'INFO',
      POWERTOOLS_METRICS_DISABLED: 'false',
      // Lambda says how the environment started; only an on-demand one has a cold start.
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    });
    const output = captureOutput();

    await handler(scheduledEvent(), lambdaContext());

    const entries = output.map((line) => JSON.parse(line) as Record<string, unknown>);
    const logs = entries.filter((entry) => entry.level !== undefined);
    expect(logs.length).toBeGreaterThan(0);
    for (const entry of logs) expect(entry).toMatchObject({ service: 'status-checker' });
    expect(entries).toContainEqual(expect.objectContaining({ ColdStart: 1 }));
  });
});
