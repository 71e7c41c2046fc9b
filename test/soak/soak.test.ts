import { describe, expect, it } from 'vitest';
import { main, parseOptions, parseOutages } from '#test/soak/soak.ts';
import { runCommand } from '#test/support/command-line.ts';

describe('npm run soak command line', () => {
  it('takes the defaults the usage states', () => {
    expect(parseOptions([])).toMatchObject({
      requests: 1000,
      seed: 1,
      projects: 100,
      timeoutMinutes: 15,
      failProbability: 0,
      lateFactors: [1.5, 2, 3],
    });
  });

  it('reads --outage: each service with its length, and a kind or the service default', () => {
    expect(parseOutages('events:30,dynamodb:45,sqs:10:throttle,atlas:60')).toEqual([
      { service: 'events', seconds: 30, kind: 'partial' },
      { service: 'dynamodb', seconds: 45, kind: 'throttle' },
      { service: 'sqs', seconds: 10, kind: 'throttle' },
      { service: 'atlas', seconds: 60, kind: 'error' },
    ]);
    expect(parseOptions(['--outage', 'events:30'])).toMatchObject({
      requests: 200,
      outageStartMs: 5_000,
      tailMs: 5_000,
      replay: true,
    });
  });

  it('reads when the outages start, how long requests flow after them, and whether the DLQ is replayed', () => {
    expect(
      parseOptions(['--outage', 'events:300', '--outage-start', '0', '--tail-seconds', '300', '--keep-dlq']),
    ).toMatchObject({ outageStartMs: 0, tailMs: 300_000, replay: false });
  });

  it('exits 2 on an unknown flag, naming it, with the usage', async () => {
    const { code, stderr } = await runCommand(() => main(['--request', '5']));

    expect(code).toBe(2);
    expect(stderr).toMatch(/^error: Unknown option '--request'.*\n\nusage: npm run soak/s);
  });

  it.each([
    [['--requests', '0'], '--requests must be a whole number of 1 or more (given "0")'],
    [['--seed', '1.5'], '--seed must be a whole number (given "1.5")'],
    [['--timeout-minutes', '0'], '--timeout-minutes must be a number of minutes over 0 (given "0")'],
    [['--fail-probability', '2'], '--fail-probability must be a number from 0 to 1 (given "2")'],
    [
      ['--late-factors', '1.5,1'],
      '--late-factors must be numbers over 1 (later than the timeout) (given "1")',
    ],
    [['--requests', '1000', '--projects', '1'], '--requests 1000 needs more than 1 projects'],
    [
      ['--outage', 'lambda:30'],
      '--outage: the service must be one of events, dynamodb, secretsmanager, sqs, atlas (given "lambda:30")',
    ],
    [['--outage', 'events:0'], '--outage: the length must be a number of seconds over 0 (given "events:0")'],
    [['--outage', 'events:30', '--shared'], '--outage and --shared do not go together'],
    [['--outage-start=-1'], '--outage-start must be a number from 0 to 86400 (given "-1")'],
    [
      ['--outage', 'events:30:down'],
      '--outage: the kind must be error, throttle or partial (given "events:30:down")',
    ],
  ])('exits 2 on %j, naming the flag', async (argv, message) => {
    const { code, stderr } = await runCommand(() => main(argv));

    expect(code).toBe(2);
    expect(stderr).toContain(`error: ${message}`);
  });
});
