/**
 * How a request that did not finish ends (functions/provision/failure.ts), on the paths the
 * broader provisioner tests leave open: the first failure's date and what the log keeps of an
 * error nobody expected.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it, vi } from 'vitest';
import { AtlasApiError } from '#lib/errors.ts';
import { createRequest, sqsRecord } from '#test/support/sqs-events.ts';
import {
  buildProvisioner,
  NOW,
  provisionerScene,
  publishedDetails,
  QUEUES,
  sentTo,
  sqs,
} from './fixtures.ts';

describe('failure', () => {
  const scene = provisionerScene();

  it('dates the first failure from now when the receive timestamp is zero', async () => {
    const request = createRequest();
    vi.spyOn(scene.table, 'claim').mockRejectedValue(new Error('ProvisionedThroughputExceededException'));
    const { provisioner } = buildProvisioner(scene.atlas, { maxAttempts: 2 });

    await expect(
      provisioner.handleRecord(sqsRecord(request, { receiveCount: 2, firstReceivedAt: 0 })),
    ).resolves.toBe('DEAD_LETTERED');

    expect(sentTo(QUEUES.dlqUrl)[0]?.MessageAttributes?.FirstFailureAt?.StringValue).toBe(NOW.toISOString());
  });

  it('announces a rejected body that names no request with no requestIds, and parks it without one', async () => {
    const { provisioner } = buildProvisioner(scene.atlas);
    const record = sqsRecord('this is not a request');

    await expect(provisioner.handleRecord(record)).resolves.toBe('REJECTED');

    expect(publishedDetails()).toEqual([
      expect.objectContaining({ outcome: 'REJECTED', requestIds: [], messageId: record.messageId }),
    ]);
    expect(sentTo(QUEUES.rejectedQueueUrl)[0]?.MessageAttributes).not.toHaveProperty('RequestId');
  });

  /** The JSON lines a provisioner logging at WARN writes while `act` runs. */
  async function logged(act: (logger: Logger) => Promise<unknown>) {
    const lines: string[] = [];
    for (const stream of [process.stdout, process.stderr]) {
      vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
        lines.push(String(chunk));
        return true;
      });
    }
    await act(new Logger({ serviceName: 'provisioner', logLevel: 'WARN' }));
    return lines
      .flatMap((l) => l.split('\n'))
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  it('logs the error itself, stack and all, only for a failure nobody expected', async () => {
    const unexpected = new TypeError('cannot read properties of undefined');
    const entries = await logged(async (logger) => {
      const { provisioner } = buildProvisioner(scene.atlas, { logger });
      scene.atlas.failNext(
        'list',
        unexpected,
        new AtlasApiError({ status: 500, errorCode: 'UNEXPECTED_ERROR', operation: 'list' }),
      );
      await expect(provisioner.handleRecord(sqsRecord(createRequest()))).rejects.toBe(unexpected);
      await expect(provisioner.handleRecord(sqsRecord(createRequest()))).rejects.toThrow(/500/);
    });

    const retried = entries.filter((e) => e.failure !== undefined);
    expect(retried.map((e) => [(e.failure as { code: string }).code, e.error])).toEqual([
      [
        'INTERNAL_ERROR',
        expect.objectContaining({
          name: 'TypeError',
          message: unexpected.message,
          stack: expect.any(String),
        }),
      ],
      ['UNEXPECTED_ERROR', undefined],
    ]);
  });

  it('logs the ledger error it swallows when a failure cannot be recorded, and still parks the request', async () => {
    scene.atlas.failNext(
      'list',
      new AtlasApiError({ status: 403, errorCode: 'USER_UNAUTHORIZED', operation: 'list' }),
    );
    vi.spyOn(scene.table, 'recordFailure').mockRejectedValue(
      new Error('ProvisionedThroughputExceededException'),
    );
    const entries = await logged(async (logger) => {
      const { provisioner } = buildProvisioner(scene.atlas, { logger });
      await expect(provisioner.handleRecord(sqsRecord(createRequest()))).resolves.toBe('DEAD_LETTERED');
    });

    expect(entries).toContainEqual(
      expect.objectContaining({
        level: 'WARN',
        error: expect.objectContaining({ message: 'ProvisionedThroughputExceededException' }),
      }),
    );
  });

  it('logs the SQS error it swallows when a retry cannot be delayed, and still retries', async () => {
    sqs.on(ChangeMessageVisibilityCommand).rejects(new Error('ReceiptHandleIsInvalid'));
    scene.atlas.failNext(
      'list',
      new AtlasApiError({ status: 500, errorCode: 'UNEXPECTED_ERROR', operation: 'list' }),
    );
    const entries = await logged(async (logger) => {
      const { provisioner } = buildProvisioner(scene.atlas, { logger });
      await expect(provisioner.handleRecord(sqsRecord(createRequest()))).rejects.toThrow(/500/);
    });

    expect(entries).toContainEqual(
      expect.objectContaining({
        level: 'WARN',
        error: expect.objectContaining({ message: 'ReceiptHandleIsInvalid' }),
      }),
    );
  });
});
