/**
 * Runs Lambda handlers on this machine the way Lambda does: an SQS event source (long polls,
 * real-shaped SQSEvent batches, deletes only what the batch response says succeeded, deletes
 * nothing when the function throws, times out or crashes), and a schedule. So visibility,
 * redrive and the DLQ behave as on AWS. Handlers run in this process (`loadHandler`) or in a
 * child process that can really be killed mid-batch (`processInvoker`).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, ScheduledEvent, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { lambdaContext, recordFromMessage } from '#test/support/sqs-events.ts';

export type LambdaHandler<E, R> = (event: E, context: Context) => Promise<R>;
/** What an SQS handler answers: a batch response, or nothing when every record succeeded. */
export type SqsResult = SQSBatchResponse | undefined;

/** The function's process was killed (a simulated crash) before it answered. */
export class FunctionCrashedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'FunctionCrashedError';
  }
}

/** The function ran past its timeout and was stopped, as Lambda stops it. */
export class FunctionTimeoutError extends Error {
  constructor(functionName: string, timeoutMs: number) {
    super(`${functionName} timed out after ${timeoutMs / 1000} s`);
    this.name = 'FunctionTimeoutError';
  }
}

/** A handler failed to load (the cold start failed). */
export class FunctionInitError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'FunctionInitError';
  }
}

export interface ContextOptions {
  functionName: string;
  region: string;
  timeoutMs: number;
  memoryMb?: number;
}

/** The context of one invocation: its remaining time counts down from the function timeout. */
export function invocationContext(options: ContextOptions): Context {
  const deadline = Date.now() + options.timeoutMs;
  return lambdaContext({
    callbackWaitsForEmptyEventLoop: false,
    functionName: options.functionName,
    invokedFunctionArn: `arn:aws:lambda:${options.region}:000000000000:function:${options.functionName}`,
    memoryLimitInMB: String(options.memoryMb ?? 1024),
    logGroupName: `/aws/lambda/${options.functionName}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  });
}

/**
 * Where a handler runs. `invoke` fails with FunctionTimeoutError when the handler runs past
 * `context.timeoutMs`, counted from when it starts (a cold start is not counted, as on Lambda).
 */
export interface FunctionInvoker<E, R> {
  invoke(event: E, context: ContextOptions): Promise<R>;
  /** Ends the running invocations as a crash would: they never answer. */
  kill(): Promise<void>;
  close(): Promise<void>;
}

const loadedEnvironment = new Map<string, string>();

/**
 * Imports a handler module in this process after setting its environment: the functions read
 * their configuration at module load. One environment per process: a second call with a
 * different value for a variable already set by an earlier call fails.
 */
export async function loadHandler<E, R>(
  modulePath: string,
  env: Record<string, string>,
  exportName = 'handler',
): Promise<LambdaHandler<E, R>> {
  for (const [name, value] of Object.entries(env)) {
    const earlier = loadedEnvironment.get(name);
    if (earlier !== undefined && earlier !== value) {
      throw new FunctionInitError(
        `${name} is already ${earlier} in this process; handlers read their configuration once at load, ` +
          'so use one environment per process (or processInvoker)',
      );
    }
  }
  for (const [name, value] of Object.entries(env)) {
    loadedEnvironment.set(name, value);
    process.env[name] = value;
  }
  const module = (await import(pathToFileURL(resolve(modulePath)).href)) as Record<string, unknown>;
  const handler = module[exportName];
  if (typeof handler !== 'function') {
    throw new FunctionInitError(`${modulePath} does not export a function named ${exportName}`);
  }
  return handler as LambdaHandler<E, R>;
}

/**
 * Runs a handler loaded in this process. `kill` abandons the running invocations (nothing is
 * answered or deleted); their promises cannot be stopped and finish in the background, so use
 * `processInvoker` where the work itself must stop.
 */
export function inProcessInvoker<E, R>(handler: LambdaHandler<E, R>): FunctionInvoker<E, R> {
  const abandon = new Set<(error: Error) => void>();
  return {
    invoke(event, context) {
      return new Promise<R>((ok, fail) => {
        abandon.add(fail);
        const timer = setTimeout(
          () => fail(new FunctionTimeoutError(context.functionName, context.timeoutMs)),
          context.timeoutMs,
        );
        handler(event, invocationContext(context))
          .then(ok, fail)
          .finally(() => {
            clearTimeout(timer);
            abandon.delete(fail);
          });
      });
    },
    async kill() {
      for (const fail of abandon) fail(new FunctionCrashedError('the function was killed'));
      abandon.clear();
    },
    async close() {},
  };
}

export interface ProcessInvokerOptions {
  modulePath: string;
  /** The function's environment (the child gets only this, plus PATH and HOME). */
  env: Record<string, string>;
  exportName?: string;
  /** Receives the function's stdout and stderr (its logs). Default: this process's stdout. */
  output?: (text: string) => void;
}

type HostMessage =
  | { type: 'ready' }
  | { type: 'init-error'; message: string }
  | { type: 'result'; id: string; result: unknown }
  | { type: 'error'; id: string; error: { name: string; message: string; stack?: string } };

const HOST = resolve(import.meta.dirname, 'function-host.ts');

/**
 * Runs a handler in a child process, a container of its own: started on first use (a cold
 * start), reused while warm, and `kill` sends SIGKILL mid-invocation as a crash would. The next
 * invocation starts a new one.
 */
export function processInvoker<E, R>(options: ProcessInvokerOptions): FunctionInvoker<E, R> {
  const output = options.output ?? ((text: string) => process.stdout.write(text));
  let current: Container<R> | undefined;

  const stop = async (signal: NodeJS.Signals) => {
    const container = current;
    current = undefined;
    await container?.stop(signal);
  };

  return {
    invoke(event, context) {
      current ??= new Container<R>(options, output, (exited) => {
        if (current === exited) current = undefined;
      });
      return current.invoke(event, context);
    },
    kill: () => stop('SIGKILL'),
    close: () => stop('SIGTERM'),
  };
}

/** One child process running the handler. */
class Container<R> {
  readonly #child: ChildProcess;
  readonly #ready: Promise<void>;
  readonly #pending = new Map<string, { ok: (r: R) => void; fail: (e: Error) => void }>();
  readonly #exited = Promise.withResolvers<void>();

  constructor(
    options: ProcessInvokerOptions,
    output: (text: string) => void,
    onExit: (c: Container<R>) => void,
  ) {
    const ready = Promise.withResolvers<void>();
    this.#ready = ready.promise;
    // Init failures surface on invoke.
    this.#ready.catch(() => undefined);
    this.#child = fork(HOST, [options.modulePath, options.exportName ?? 'handler'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...options.env },
      execArgv: ['--import', import.meta.resolve('tsx')],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.#child.stdout?.on('data', (chunk: Buffer) => output(chunk.toString()));
    this.#child.stderr?.on('data', (chunk: Buffer) => output(chunk.toString()));
    this.#child.on('message', (message: HostMessage) => {
      if (message.type === 'ready') return ready.resolve();
      if (message.type === 'init-error') return ready.reject(new FunctionInitError(message.message));
      const call = this.#pending.get(message.id);
      if (!call) return;
      this.#pending.delete(message.id);
      if (message.type === 'result') call.ok(message.result as R);
      else call.fail(Object.assign(new Error(message.error.message), message.error));
    });
    this.#child.once('exit', (code, signal) => {
      onExit(this);
      ready.reject(new FunctionInitError(`the function process exited during init (${signal ?? code})`));
      for (const call of this.#pending.values()) {
        call.fail(new FunctionCrashedError(`the function process exited (${signal ?? code})`));
      }
      this.#pending.clear();
      this.#exited.resolve();
    });
  }

  invoke(event: unknown, context: ContextOptions): Promise<R> {
    return new Promise<R>((ok, fail) => {
      this.#ready.then(() => {
        const id = randomUUID();
        // Lambda stops the whole sandbox when an invocation times out.
        const timer = setTimeout(() => {
          this.#pending.delete(id);
          fail(new FunctionTimeoutError(context.functionName, context.timeoutMs));
          void this.stop('SIGKILL');
        }, context.timeoutMs);
        const done =
          <T>(settle: (value: T) => void) =>
          (value: T) => {
            clearTimeout(timer);
            settle(value);
          };
        this.#pending.set(id, { ok: done(ok), fail: done(fail) });
        this.#child.send({ id, event, context }, (error) => {
          if (!error) return;
          this.#pending.delete(id);
          clearTimeout(timer);
          fail(new FunctionCrashedError('the function process is gone', { cause: error }));
        });
      }, fail);
    });
  }

  async stop(signal: NodeJS.Signals): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill(signal);
    await this.#exited.promise;
  }
}

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

export interface SqsEventSourceOptions {
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
export class SqsEventSource {
  readonly #options: SqsEventSourceOptions;
  readonly #stop = new AbortController();
  readonly #inFlight = new Set<FunctionInvoker<SQSEvent, SqsResult>>();
  readonly #listeners = new Set<(activity: BatchActivity) => void>();
  #pollers: Promise<void>[] = [];

  constructor(options: SqsEventSourceOptions) {
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

export interface ScheduleOptions {
  invoker: FunctionInvoker<ScheduledEvent, unknown>;
  periodMs: number;
  region: string;
  functionName: string;
  timeoutSeconds: number;
  /** Called after each run with its error, if any. */
  onRun?: (run: { at: number; durationMs: number; error?: Error }) => void;
}

/** A rate schedule: invokes the function every period, one run at a time, as EventBridge Scheduler would. */
export class Schedule {
  readonly #options: ScheduleOptions;
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: ScheduleOptions) {
    this.#options = options;
  }

  start(): this {
    this.#arm();
    return this;
  }

  /** Runs the function now (after any run in progress) and resolves when it has finished. */
  runNow(): Promise<void> {
    const run = this.#chain.then(() => this.#run());
    this.#chain = run;
    return run;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#chain;
    await this.#options.invoker.close();
  }

  #arm() {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.runNow().then(() => this.#arm());
    }, this.#options.periodMs);
  }

  async #run(): Promise<void> {
    if (this.#stopped) return;
    const { invoker, region, functionName, timeoutSeconds } = this.#options;
    const at = Date.now();
    const event: ScheduledEvent = {
      version: '0',
      id: randomUUID(),
      'detail-type': 'Scheduled Event',
      source: 'aws.scheduler',
      account: '000000000000',
      time: new Date(at).toISOString(),
      region,
      resources: [`arn:aws:scheduler:${region}:000000000000:schedule/default/${functionName}`],
      detail: {},
    };
    let error: Error | undefined;
    try {
      await invoker.invoke(event, { functionName, region, timeoutMs: timeoutSeconds * 1000 });
    } catch (caught) {
      error = caught as Error;
    }
    this.#options.onRun?.({ at, durationMs: Date.now() - at, ...(error && { error }) });
  }
}
