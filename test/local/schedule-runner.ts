/** A rate schedule on this machine, as EventBridge Scheduler invokes a function. */
import { randomUUID } from 'node:crypto';
import type { ScheduledEvent } from 'aws-lambda';
import type { FunctionInvoker } from './invocation.ts';

export interface ScheduleRunnerOptions {
  invoker: FunctionInvoker<ScheduledEvent, unknown>;
  periodMs: number;
  region: string;
  functionName: string;
  timeoutSeconds: number;
  /** Called after each run with its error, if any. */
  onRun?: (run: { at: number; durationMs: number; error?: Error }) => void;
}

/** A rate schedule: invokes the function every period, one run at a time, as EventBridge Scheduler would. */
export class ScheduleRunner {
  readonly #options: ScheduleRunnerOptions;
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: ScheduleRunnerOptions) {
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
