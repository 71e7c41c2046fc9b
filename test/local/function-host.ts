/**
 * A function "container": the child process `processInvoker` forks. Loads the handler (its
 * configuration is read from this process's environment at load), then answers invocations
 * sent over IPC until it is killed.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ContextOptions, invocationContext } from './invocation.ts';

interface InvokeMessage {
  id: string;
  event: unknown;
  context: ContextOptions;
}

const [modulePath, exportName = 'handler'] = process.argv.slice(2);
const send = (message: object) =>
  new Promise<void>((ok) => {
    if (!process.send) return ok();
    process.send(message, () => ok());
  });

let handler: (event: unknown, context: ReturnType<typeof invocationContext>) => Promise<unknown>;
try {
  if (!modulePath) throw new Error('no handler module given');
  const module = (await import(pathToFileURL(resolve(modulePath)).href)) as Record<string, unknown>;
  const exported = module[exportName];
  if (typeof exported !== 'function') throw new Error(`${modulePath} does not export ${exportName}`);
  handler = exported as typeof handler;
} catch (error) {
  await send({ type: 'init-error', message: `${modulePath}: ${(error as Error).stack ?? error}` });
  process.exit(1);
}

process.on('message', (message: InvokeMessage) => {
  handler(message.event, invocationContext(message.context)).then(
    (result) => send({ type: 'result', id: message.id, result }),
    (error: Error) =>
      send({
        type: 'error',
        id: message.id,
        error: { name: error.name, message: error.message, stack: error.stack },
      }),
  );
});
// The runner went away: a container does not outlive its runtime.
process.on('disconnect', () => process.exit(0));
await send({ type: 'ready' });
