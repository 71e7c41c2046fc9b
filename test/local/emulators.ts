/**
 * Starts the local AWS API implementations on free loopback ports: moto in server mode (SQS,
 * Secrets Manager, DynamoDB, EventBridge) and ElasticMQ (SQS with message move tasks). They are
 * installed into .local/ by install.sh on first use; a server that cannot start fails loudly.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const ROOT = resolve(import.meta.dirname, '../..');
const LOCAL = join(ROOT, '.local');
const MOTO = join(LOCAL, 'venv/bin/moto_server');
const ELASTICMQ_LIB = join(LOCAL, 'elasticmq/lib');

export interface Emulator {
  /** Base URL, e.g. http://localhost:4566. */
  readonly endpoint: string;
  stop(): Promise<void>;
}

export interface Moto extends Emulator {
  /** Forget every resource (POST /moto-api/reset). */
  reset(): Promise<void>;
}

let installing: Promise<void> | undefined;

/** Runs install.sh once per process when an emulator is missing. */
export function ensureInstalled(): Promise<void> {
  if (existsSync(MOTO) && existsSync(join(LOCAL, 'elasticmq/elasticmq-server.jar'))) return Promise.resolve();
  installing ??= promisify(execFile)('bash', [join(ROOT, 'test/local/install.sh')], { maxBuffer: 16 << 20 })
    .then(() => undefined)
    .catch((error: Error & { stderr?: string }) => {
      throw new Error(`could not install the local emulators: ${error.stderr || error.message}`);
    });
  return installing;
}

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? ok(address.port) : fail(new Error('no port')),
      );
    });
  });
}

async function waitReady(url: string, child: ChildProcess, name: string, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`${name} exited with ${child.exitCode} before it was ready:\n${log()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill('SIGKILL');
  throw new Error(`${name} did not answer at ${url} within 60 s:\n${log()}`);
}

function launch(name: string, command: string, args: string[], readyUrl: string, endpoint: string) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const stop = () =>
    new Promise<void>((ok) => {
      if (child.exitCode !== null) return ok();
      child.once('exit', () => ok());
      child.kill('SIGTERM');
    });
  return {
    child,
    ready: waitReady(readyUrl, child, name, () => output),
    emulator: { endpoint, stop },
  };
}

export async function startMoto(): Promise<Moto> {
  await ensureInstalled();
  const port = await freePort();
  const endpoint = `http://localhost:${port}`;
  const { ready, emulator } = launch(
    'moto',
    MOTO,
    ['-H', '127.0.0.1', '-p', String(port)],
    `${endpoint}/moto-api/`,
    endpoint,
  );
  await ready;
  return {
    ...emulator,
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!res.ok) throw new Error(`moto reset answered ${res.status}`);
    },
  };
}

export async function startElasticMq(): Promise<Emulator> {
  await ensureInstalled();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'elasticmq-'));
  const conf = join(dir, 'elasticmq.conf');
  writeFileSync(
    conf,
    `include classpath("application.conf")
node-address { protocol = http, host = localhost, port = ${port}, context-path = "" }
rest-sqs { enabled = true, bind-port = ${port}, bind-hostname = "127.0.0.1", sqs-limits = strict }
rest-stats { enabled = false }
aws { region = us-east-1, accountId = 000000000000 }
`,
  );
  const endpoint = `http://localhost:${port}`;
  const { ready, emulator } = launch(
    'elasticmq',
    'java',
    ['-Xmx256m', `-Dconfig.file=${conf}`, '-cp', `${ELASTICMQ_LIB}/*`, 'org.elasticmq.server.Main'],
    `${endpoint}/?Action=ListQueues`,
    endpoint,
  );
  await ready;
  return emulator;
}
