/**
 * The local AWS API implementations never outlive the process that started them, however it
 * ends: here it is killed outright (SIGKILL), which no handler of its own can answer.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';

/** Whether anything answers HTTP at the URL. */
const answers = async (url: string) => {
  try {
    await (await fetch(url, { signal: AbortSignal.timeout(1_000) })).arrayBuffer();
    return true;
  } catch {
    return false;
  }
};

describe('an emulator', () => {
  it('stops when the process that started it is killed outright', async () => {
    // GIVEN a process that started moto and ElasticMQ
    const module = join(import.meta.dirname, 'emulators.ts');
    const script = `import { startElasticMq, startMoto } from ${JSON.stringify(module)};
      const [moto, sqs] = await Promise.all([startMoto(), startElasticMq()]);
      console.log(JSON.stringify([moto.endpoint, sqs.endpoint]));
      setTimeout(() => process.exit(1), 60_000);`;
    const starter = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    starter.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    await vi.waitFor(() => expect(out).toContain(']'), { timeout: 90_000, interval: 200 });
    const [moto, sqs] = JSON.parse(out) as [string, string];
    expect(await answers(`${moto}/moto-api/`)).toBe(true);
    expect(await answers(`${sqs}/?Action=ListQueues`)).toBe(true);

    // WHEN it is killed outright
    starter.kill('SIGKILL');
    await once(starter, 'exit');

    // THEN both go with it
    await vi.waitFor(
      async () => {
        expect(await answers(`${moto}/moto-api/`)).toBe(false);
        expect(await answers(`${sqs}/?Action=ListQueues`)).toBe(false);
      },
      { timeout: 10_000, interval: 250 },
    );
  }, 120_000);
});
