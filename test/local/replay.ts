/**
 * What an operator does after an outage, in the local flow: `npm run replay`'s core, moving the
 * DLQ back into the request queue, then waiting until the tracker saw every replayed delivery.
 * Used by the end-to-end tests and the outage soak.
 */
import { replay } from '#infra/ops/replay.ts';
import type { LocalFlow } from './flow.ts';

/** Replays the DLQ into the request queue (npm run replay's core), waits until the tracker has seen every replayed delivery, and returns how many moved. */
export async function replayDlq(flow: LocalFlow): Promise<number> {
  const { environment, tracker } = flow;
  const deliveries = () => tracker.requests.reduce((n, r) => n + r.deliveries.length, 0);
  const before = deliveries();
  const task = await replay({
    sqs: environment.clients.sqs,
    dlqArn: environment.dlq.arn,
    requestQueueArn: environment.requestQueue.arn,
    pollIntervalMs: 100,
  });
  if (task.status !== 'COMPLETED') {
    throw new Error(`the move task ended ${task.status}: ${task.failureReason ?? 'no reason given'}`);
  }
  // Until the tracker sees the replayed deliveries their requests still count as settled in the DLQ.
  await tracker.waitFor(() => deliveries() >= before + task.moved, {
    timeoutMs: 30_000,
    what: `the ${task.moved} replayed messages to be delivered`,
  });
  return task.moved;
}
