import { describe, expect, it } from 'vitest';
import { resourcesFromEnvironment } from '#infra/ops/resources.ts';
import { main, opsInstructions, parseCommandLine } from '#test/local/start.ts';
import { runCommand } from '#test/support/command-line.ts';

describe('npm start command line', () => {
  it('runs the demo by default, giving up after 180 s', () => {
    expect(parseCommandLine([])).toEqual({
      keep: false,
      timeoutSeconds: 180,
      file: undefined,
      atlas: undefined,
    });
  });

  it('exits 2 on an unknown flag, naming it, with the usage', async () => {
    const { code, stderr } = await runCommand(() => main(['--kep']));

    expect(code).toBe(2);
    expect(stderr).toMatch(/^error: Unknown option '--kep'.*\n\nusage: npm start/s);
  });

  it.each([
    [['--timeout', '0'], '--timeout must be a whole number of 1 or more (given "0")'],
    [['--atlas-url', 'not a url'], '--atlas-url must be a URL (given "not a url")'],
    [['--credentials', 'secret.json'], '--credentials goes with --atlas-url'],
    [['--file', 'no-such-requests.jsonl'], 'the requests file no-such-requests.jsonl does not exist'],
  ])('exits 2 on %j, naming what is wrong, before starting anything', async (argv, message) => {
    const { code, stderr } = await runCommand(() => main(argv));

    expect(code).toBe(2);
    expect(stderr).toContain(`error: ${message}`);
  });
});

describe('what `npm start -- --keep` prints for another shell', () => {
  const environment = {
    awsEnvironment: { AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: 'http://localhost:4566' },
    requestQueue: {
      url: 'http://localhost:9324/000000000000/requests',
      arn: 'arn:aws:sqs:us-east-1:000000000000:requests',
      name: 'requests',
    },
    dlq: {
      url: 'http://localhost:9324/000000000000/requests-dlq',
      arn: 'arn:aws:sqs:us-east-1:000000000000:requests-dlq',
      name: 'requests-dlq',
    },
    tableName: 'ledger',
    frontDoor: undefined,
  };

  it('exports the variables send, status and replay read, and runs them without resource flags', async () => {
    const lines = opsInstructions(environment);
    const exported = Object.fromEntries(
      lines
        .filter((line) => line.startsWith('export '))
        .flatMap((line) => line.slice('export '.length).split(' '))
        .map((pair) => pair.split('=') as [string, string]),
    );
    const given = resourcesFromEnvironment(exported);

    expect(given).toMatchObject({
      requestQueueUrl: environment.requestQueue.url,
      dlqUrl: environment.dlq.url,
      tableName: 'ledger',
    });
    expect(exported.AWS_ENDPOINT_URL).toBe('http://localhost:4566');
    const commands = lines.filter((line) => line.startsWith('npm run'));
    expect(commands.map((line) => line.split(' ')[2])).toEqual(['send', 'status', 'replay']);
    for (const line of commands) expect(line).not.toMatch(/--(queue-url|dlq-url|table)\b/);
  });
});
