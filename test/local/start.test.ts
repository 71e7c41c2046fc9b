import { readFileSync } from 'node:fs';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { eventIdOf } from '#events/status-event.ts';
import { resourcesFromEnvironment } from '#infra/ops/resources.ts';
import { resolveSettings } from '#infra/settings.ts';
import { grantProblem } from '#messages/requesters.ts';
import { main, opsInstructions, parseCommandLine } from '#test/local/start.ts';
import { RequestTracker } from '#test/local/tracker.ts';
import { LiveView } from '#test/local/view.ts';
import { runCommand } from '#test/support/command-line.ts';

describe('npm start command line', () => {
  it('runs the demo by default, giving up after 180 s', () => {
    expect(parseCommandLine([])).toEqual({
      keep: false,
      requesters: false,
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
    [['--requesters', '--file', 'r.jsonl'], '--requesters runs its own demo'],
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

describe('`npm start -- --requesters`', () => {
  const demo = JSON.parse(
    readFileSync(new URL('../../events/demo/requesters.json', import.meta.url), 'utf8'),
  );

  it('names two requesters the settings accept, one of whose requests is outside its grant', () => {
    // Act
    const settings = resolveSettings({ requesters: demo.requesters });
    const refusals = demo.requests.flatMap((r: { requester: string; body: { groupId: string } }) => {
      const requester = settings.requesters?.find((x) => x.name === r.requester);
      if (!requester) throw new Error(`no requester ${r.requester}`);
      const problem = grantProblem(requester, {
        action: 'create',
        groupId: r.body.groupId,
        profile: 'default',
      });
      return problem ? [problem] : [];
    });

    // Assess
    expect(settings.requesters?.map((r) => r.name)).toEqual(['orders', 'platform']);
    expect(refusals).toEqual(['requester "orders" is not granted project 6565b8f1c0e4a2b3d4e5f602']);
  });

  it("shows per request its requester and outcome, and the refused one's whole reason", () => {
    // Prepare: what the run's tracker holds once the provisioner answered
    const tracker = new RequestTracker({
      eventsSqs: {} as SQSClient,
      statusEventQueueUrl: 'http://unused',
      maxReceiveCount: 3,
    });
    const [allowed, refused] = demo.requests.slice(0, 2) as Array<{ requester: string; body: object }>;
    tracker.sent(JSON.stringify(allowed?.body), 'm-1', 1, allowed?.requester);
    tracker.sent(JSON.stringify(refused?.body), 'm-2', 2, refused?.requester);
    const detail = 'requester "orders" is not granted project 6565b8f1c0e4a2b3d4e5f602';
    const answer = (messageId: string, outcome: 'PROVISIONED' | 'REJECTED', extra: object) => ({
      version: '1' as const,
      eventId: eventIdOf(outcome, messageId),
      requester: 'orders',
      requestIds: [],
      messageId,
      occurredAt: new Date().toISOString(),
      outcome,
      ...extra,
    });
    tracker.onEvent(answer('m-1', 'PROVISIONED', { status: 'ACTIVE', endpointId: 'e1' }));
    tracker.onEvent(answer('m-2', 'REJECTED', { error: { code: 'NOT_AUTHORIZED', detail } }));

    // Act: a narrow terminal, which must not cut the reason
    const summary = new LiveView(tracker, {
      write: () => undefined,
      tty: false,
      columns: 80,
      startedAt: Date.now(),
    }).summary();

    // Assess
    const lines = summary.split('\n');
    expect(lines.find((l) => l.includes('REQUEST '))).toMatch(/REQUEST\s+REQUESTER\s+ACTION/);
    expect(lines.find((l) => l.includes('orders-01-us'))).toMatch(/orders-01-us\s+orders\s+create .* ACTIVE/);
    expect(lines.find((l) => l.includes('orders-02-billing'))).toMatch(
      new RegExp(`orders-02-billing\\s+orders\\s+create .* rejected .* NOT_AUTHORIZED: ${detail}$`),
    );
  });
});
