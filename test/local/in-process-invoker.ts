/** Handlers imported and run in this process: quick, but a crash cannot stop their work. */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  FunctionCrashedError,
  FunctionInitError,
  type FunctionInvoker,
  FunctionTimeoutError,
  invocationContext,
  type LambdaHandler,
} from './invocation.ts';

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
