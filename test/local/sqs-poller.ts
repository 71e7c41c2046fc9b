/**
 * Lambda's SQS event source mapping on this machine: long polls, real-shaped SQSEvent batches,
 * deletes only what the batch response says succeeded, and nothing when the function throws,
 * times out or crashes. So visibility, redrive and the DLQ behave as on AWS.
 */
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { recordFromMessage } from '#test/support/sqs-events.ts';
import {
  FunctionCrashedError,
  type FunctionInvoker,
  FunctionTimeoutError,
  type SqsResult,
} from './invocation.ts';

/** What the event source did with a batch. */
export type BatchActivity =
  | { type: 'received'; records: SQSRecord[]; at: number }
  | { type: 'completed'; records: SQSRecord[]; deleted: SQSRecord[]; failed: SQSRecord[]; at: number }
  /** The function threw, timed out or crashed: nothing was deleted. */
  | {
      type: 'errored';
      records: SQSRecord[];
      reason: 'threw' | 'timeout' | 'crashed';
      error: Error;
      at: number;
    }
  /** Polling or deleting failed. */
  | { type: 'poll-error'; error: Error; at: number };

export interface SqsPollerOptions {
  sqs: SQSClient;
  queue: { url: string; arn: string };
  region: string;
  functionName: string;
  timeoutSeconds: number;
  /** Records per invocation (the event source's BatchSize). */
  batchSize: number;
  /** Concurrent invocations (the event source's maxConcurrency); each poller has its own invoker. Default 1. */
  concurrency?: number;
  /** Builds one poller's invoker (one "container"). */
  invoker: () => FunctionInvoker<SQSEvent, SqsResult>;
  /** Long-poll wait, s. Default 20, as Lambda's pollers. */
  waitTimeSeconds?: number;
  /** Simulated crash: the function dies on a batch for which this answers true, before it can answer or act. */
  crashWhen?: (records: SQSRecord[]) => boolean;
  onActivity?: (activity: BatchActivity) => void;
}

/** Lambda's SQS event source mapping, with ReportBatchItemFailures. */
export class SqsPoller {
  readonly #options: SqsPollerOptions;
  readonly #stop = new AbortController();
  readonly #inFlight = new Set<FunctionInvoker<SQSEvent, SqsResult>>();
  readonly #listeners = new Set<(activity: BatchActivity) => void>();
  #pollers: Promise<void>[] = [];

  constructor(options: SqsPollerOptions) {
    this.#options = options;
    if (options.onActivity) this.#listeners.add(options.onActivity);
  }

  /** Starts polling. */
  start(): this {
    const count = this.#options.concurrency ?? 1;
    this.#pollers = Array.from({ length: count }, () => this.#poll());
    return this;
  }

  subscribe(listener: (activity: BatchActivity) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Kills every running invocation now: nothing is answered or deleted. Polling goes on with new containers. */
  async crash(): Promise<void> {
    await Promise.all([...this.#inFlight].map((invoker) => invoker.kill()));
  }

  /** Stops polling, waits for the running invocations to finish, and closes the invokers. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.all(this.#pollers);
  }

  #emit(activity: BatchActivity) {
    for (const listener of this.#listeners) listener(activity);
  }

  async #poll(): Promise<void> {
    const invoker = this.#options.invoker();
    const signal = this.#stop.signal;
    try {
      while (!signal.aborted) {
        let messages: Message[];
        try {
          messages = await this.#receive(signal);
        } catch (error) {
          if (signal.aborted) break;
          this.#emit({ type: 'poll-error', error: error as Error, at: Date.now() });
          await new Promise((ok) => setTimeout(ok, 500));
          continue;
        }
        if (messages.length > 0) await this.#invoke(invoker, messages);
      }
    } finally {
      await invoker.close();
    }
  }

  async #receive(signal: AbortSignal): Promise<Message[]> {
    const { sqs, queue, batchSize } = this.#options;
    const messages: Message[] = [];
    // Lambda gathers batches over 10 messages from several receives.
    while (messages.length < batchSize) {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queue.url,
          MaxNumberOfMessages: Math.min(10, batchSize - messages.length),
          WaitTimeSeconds: messages.length === 0 ? (this.#options.waitTimeSeconds ?? 20) : 0,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
        { abortSignal: signal },
      );
      const got = out.Messages ?? [];
      messages.push(...got);
      if (got.length === 0 || batchSize <= 10) break;
    }
    return messages;
  }

  async #invoke(invoker: FunctionInvoker<SQSEvent, SqsResult>, messages: Message[]): Promise<void> {
    const { queue, region, functionName, timeoutSeconds } = this.#options;
    const records = messages.map((m) => recordFromMessage(m, queue.arn, region));
    this.#emit({ type: 'received', records, at: Date.now() });
    if (this.#options.crashWhen?.(records)) {
      await invoker.kill();
      const error = new FunctionCrashedError('the function died on this batch (simulated crash)');
      this.#emit({ type: 'errored', records, reason: 'crashed', error, at: Date.now() });
      return;
    }
    this.#inFlight.add(invoker);
    let response: SqsResult;
    try {
      response = await invoker.invoke(
        { Records: records },
        { functionName, region, timeoutMs: timeoutSeconds * 1000 },
      );
    } catch (error) {
      const reason =
        error instanceof FunctionTimeoutError
          ? 'timeout'
          : error instanceof FunctionCrashedError
            ? 'crashed'
            : 'threw';
      this.#emit({ type: 'errored', records, reason, error: error as Error, at: Date.now() });
      return;
    } finally {
      this.#inFlight.delete(invoker);
    }

    const failures = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    // Lambda fails the whole batch when the response names a record it was not given.
    if ([...failures].some((id) => !id || !records.some((r) => r.messageId === id))) {
      const error = new Error(`batch response names unknown items: ${[...failures].join(', ')}`);
      this.#emit({ type: 'errored', records, reason: 'threw', error, at: Date.now() });
      return;
    }
    const deleted = records.filter((r) => !failures.has(r.messageId));
    const failed = records.filter((r) => failures.has(r.messageId));
    try {
      for (let i = 0; i < deleted.length; i += 10) {
        const chunk = deleted.slice(i, i + 10);
        const out = await this.#options.sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queue.url,
            Entries: chunk.map((r, n) => ({ Id: String(n), ReceiptHandle: r.receiptHandle })),
          }),
        );
        if (out.Failed?.length) throw new Error(`DeleteMessageBatch failed: ${JSON.stringify(out.Failed)}`);
      }
    } catch (error) {
      this.#emit({ type: 'poll-error', error: error as Error, at: Date.now() });
    }
    this.#emit({ type: 'completed', records, deleted, failed, at: Date.now() });
  }
}
