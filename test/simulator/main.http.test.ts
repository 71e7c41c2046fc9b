/**
 * The simulator's command line (test/simulator/main.ts) as a person starts it: a real process,
 * real HTTP to the URL it prints, then SIGTERM; its flag mistakes through the exported main.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '#test/simulator/main.ts';
import { runCommand } from '#test/support/command-line.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = 'test/simulator/main.ts';
const GROUP_ID = '6565b8f1c0e4a2b3d4e5f601';

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function output(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

describe('simulator command line', () => {
  let child: ChildProcess;
  let url: string;
  let printed = '';

  beforeAll(async () => {
    child = start([
      '--port',
      '0',
      '--service-account',
      'cli-client:cli-secret',
      '--api-key',
      'clipub:clipriv',
      '--project',
      GROUP_ID,
      '--seed',
      '5',
      '--fail-probability',
      '1',
      '--activation-delay-ms',
      '0',
    ]);
    url = await new Promise<string>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        printed += chunk;
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(printed);
        if (match?.[1]) resolve(match[1]);
      });
      child.once('exit', (code) => reject(new Error(`the simulator exited with ${code} before listening`)));
    });
  });

  afterAll(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('prints its URL without echoing the credentials', () => {
    expect(printed).not.toContain('cli-secret');
    expect(printed).not.toContain('clipriv');
  });

  async function apiHeaders() {
    const token = await fetch(`${url}/api/oauth/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('cli-client:cli-secret').toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    expect(token.status).toBe(200);
    const { access_token } = (await token.json()) as { access_token: string };
    return {
      authorization: `Bearer ${access_token}`,
      accept: 'application/vnd.atlas.2024-11-13+json',
    };
  }

  it('serves the service account given on the command line and only the listed projects', async () => {
    const headers = await apiHeaders();

    const listed = await fetch(`${url}/api/atlas/v2/groups/${GROUP_ID}/backup/AWS/privateEndpoints`, {
      headers,
    });
    expect(listed.status).toBe(200);
    expect(await listed.json()).toMatchObject({ results: [], totalCount: 0 });
    const other = await fetch(`${url}/api/atlas/v2/groups/${'a'.repeat(24)}/backup/AWS/privateEndpoints`, {
      headers,
    });
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ errorCode: 'GROUP_NOT_FOUND' });
  });

  it('fails new endpoints with --fail-probability 1', async () => {
    const headers = await apiHeaders();
    const path = `${url}/api/atlas/v2/groups/${GROUP_ID}/backup/AWS/privateEndpoints`;
    const created = await fetch(path, {
      method: 'POST',
      headers: { ...headers, 'content-type': headers.accept },
      body: JSON.stringify({ cloudProvider: 'AWS', regionName: 'EU_WEST_1' }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const read = await fetch(`${path}/${id}`, { headers });
    expect(await read.json()).toMatchObject({ id, status: 'FAILED', errorMessage: expect.any(String) });
  });

  it('challenges with Digest for the API key', async () => {
    const reply = await fetch(`${url}/api/atlas/v2/groups/${GROUP_ID}/backup/AWS/privateEndpoints`, {
      headers: { accept: 'application/vnd.atlas.2024-11-13+json' },
    });
    expect(reply.status).toBe(401);
    expect(reply.headers.get('www-authenticate')).toMatch(/^Digest realm="MMS Public API"/);
  });

  it('stops with exit code 0 on SIGTERM', async () => {
    const exited = output(child);
    child.kill('SIGTERM');
    expect((await exited).code).toBe(0);
  });
});

it('exits with code 2 and the usage for a malformed option', async () => {
  const { code, stderr } = await output(start(['--service-account', 'no-colon']));
  expect(code).toBe(2);
  expect(stderr).toContain('error: --service-account must be A:B (given "no-colon")');
  expect(stderr).toContain('usage:');
});

describe('main', () => {
  it('exits with code 2 on an unknown flag, naming it', async () => {
    const { code, stderr } = await runCommand(() => main(['--bogus']), { usage: 'usage: main' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^error: Unknown option '--bogus'/);
  });

  it.each([
    [['--fail-probability', '1.5'], '--fail-probability must be a number from 0 to 1 (given "1.5")'],
    [['--port', 'eighty'], '--port must be a whole number of 0 or more (given "eighty")'],
    [['--rate-limit', '10:x'], '--rate-limit must be a whole number of 0 or more (given "x")'],
  ])('exits with code 2 on %j, naming the flag and the value', async (argv, message) => {
    const { code, stderr } = await runCommand(() => main(argv));
    expect(code).toBe(2);
    expect(stderr).toContain(`error: ${message}`);
  });
});
