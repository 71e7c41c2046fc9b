/**
 * Handlers run in child processes (./function-host.ts), each a container of its own that a
 * crash really kills mid-batch.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import {
  type ContextOptions,
  FunctionCrashedError,
  FunctionInitError,
  type FunctionInvoker,
  FunctionTimeoutError,
} from './invocation.ts';

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
  let current: FunctionProcess<R> | undefined;

  const stop = async (signal: NodeJS.Signals) => {
    const container = current;
    current = undefined;
    await container?.stop(signal);
  };

  return {
    invoke(event, context) {
      current ??= new FunctionProcess<R>(options, output, (exited) => {
        if (current === exited) current = undefined;
      });
      return current.invoke(event, context);
    },
    kill: () => stop('SIGKILL'),
    close: () => stop('SIGTERM'),
  };
}

/** One child process running the handler. */
class FunctionProcess<R> {
  readonly #child: ChildProcess;
  readonly #ready: Promise<void>;
  readonly #pending = new Map<string, { ok: (r: R) => void; fail: (e: Error) => void }>();
  readonly #exited = Promise.withResolvers<void>();

  constructor(
    options: ProcessInvokerOptions,
    output: (text: string) => void,
    onExit: (c: FunctionProcess<R>) => void,
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
