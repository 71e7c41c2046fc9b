/**
 * A Lambda function as the local runner sees it: the handler's signature, the context of one
 * invocation, how an invocation fails (crash, timeout, init), and where a handler runs
 * (`FunctionInvoker`: ./in-process-invoker.ts or ./process-invoker.ts).
 */
import type { Context, SQSBatchResponse } from 'aws-lambda';
import { lambdaContext } from '#test/support/sqs-events.ts';

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
