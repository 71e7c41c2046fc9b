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
const STOP_GRACE_MS = 1000;
/** Class-data archive written by install.sh; optional. */
const ELASTICMQ_CDS = join(LOCAL, 'elasticmq/elasticmq.jsa');

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

/** Whether both emulators are already in .local/. */
export function isInstalled(): boolean {
  return existsSync(MOTO) && existsSync(join(LOCAL, 'elasticmq/elasticmq-server.jar'));
}

const versionOf = async (command: string, args: string[]): Promise<string | undefined> => {
  try {
    const { stdout, stderr } = await promisify(execFile)(command, args);
    return `${stdout}${stderr}`;
  } catch {
    return undefined;
  }
};

/**
 * What this machine lacks to run (and, on first use, install) the emulators, each with what to
 * install; empty when nothing is missing. Node itself is not checked here: npm start runs under
 * infra/bin/launch.cjs, which provides Node >= 22 or names what to install.
 */
export async function missingPrerequisites(): Promise<string[]> {
  const missing: string[] = [];
  const java = await versionOf('java', ['-version']);
  const javaMajor = Number(java?.match(/version "(\d+)/)?.[1]);
  if (!java) {
    missing.push('java 17+ (ElasticMQ runs on it): e.g. apt-get install openjdk-17-jre-headless');
  } else if (!(javaMajor >= 17)) {
    missing.push(
      `Java 17 or newer (found ${java.split('\n')[0]}): e.g. apt-get install openjdk-17-jre-headless`,
    );
  }
  if (isInstalled()) return missing;
  const python = await versionOf('python3', [
    '-c',
    'import sys, venv; print("%d.%d" % sys.version_info[:2])',
  ]);
  const [major = 0, minor = 0] = (python ?? '').trim().split('.').map(Number);
  if (!python) {
    missing.push('python3 >= 3.10 with venv (moto runs on it): e.g. apt-get install python3 python3-venv');
  } else if (major < 3 || (major === 3 && minor < 10)) {
    missing.push(`Python 3.10 or newer with venv for moto (found ${python.trim()})`);
  }
  if (!existsSync(join(LOCAL, 'elasticmq/elasticmq-server.jar')) && !(await versionOf('mvn', ['-v']))) {
    missing.push('mvn (fetches ElasticMQ from Maven Central once): e.g. apt-get install maven');
  }
  return missing;
}

/** Runs install.sh once per process when an emulator is missing. */
export function ensureInstalled(): Promise<void> {
  if (isInstalled()) return Promise.resolve();
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

/**
 * Runs the command in a process group of its own, beside a watcher reading the shell's stdin: a
 * pipe from this process, which the kernel closes when this process ends, however it ends (a
 * SIGKILL too). The watcher then ends the group, so no emulator outlives the run that started
 * it. The command itself reads nothing (stdin /dev/null) and does not hold the pipe's copy (fd 3).
 */
const GUARD =
  'exec 3<&0; (trap "" TERM; cat <&3 >/dev/null; kill -TERM 0; sleep 1; kill -KILL 0) & exec "$@" 3<&- </dev/null';

/** Signals the command's whole process group (the command and its watcher); gone already is fine. */
const signalGroup = (child: ChildProcess, signal: NodeJS.Signals) => {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {}
};

function launch(name: string, command: string, args: string[], readyUrl: string, endpoint: string) {
  const child = spawn('sh', ['-c', GUARD, 'sh', command, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // The watcher is the group's last member once the command is gone: it goes with it.
  child.once('exit', () => signalGroup(child, 'SIGKILL'));
  // ElasticMQ's graceful shutdown waits for pending long polls (up to 20 s), even abandoned ones.
  const stop = () =>
    new Promise<void>((ok) => {
      if (child.exitCode !== null || child.signalCode !== null) return ok();
      const kill = setTimeout(() => signalGroup(child, 'SIGKILL'), STOP_GRACE_MS);
      child.once('exit', () => {
        clearTimeout(kill);
        ok();
      });
      signalGroup(child, 'SIGTERM');
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
    [
      '-Xmx256m',
      // A short-lived test server: start fast rather than peak (C1 only, one compiler thread, serial GC).
      '-XX:TieredStopAtLevel=1',
      '-XX:CICompilerCount=1',
      '-XX:+UseSerialGC',
      ...(existsSync(ELASTICMQ_CDS) ? [`-XX:SharedArchiveFile=${ELASTICMQ_CDS}`, '-Xshare:auto'] : []),
      `-Dconfig.file=${conf}`,
      '-cp',
      `${ELASTICMQ_LIB}/*`,
      'org.elasticmq.server.Main',
    ],
    `${endpoint}/?Action=ListQueues`,
    endpoint,
  );
  await ready;
  return emulator;
}
