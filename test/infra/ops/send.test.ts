import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { UsageError } from '#infra/ops/cli.ts';
import {
  type FileRequest,
  main,
  parseRequestLines,
  requestFromFlags,
  sendRequests,
} from '#infra/ops/send.ts';
import { parseRequest } from '#messages/request.ts';

const sqs = mockClient(SQSClient);
const client = new SQSClient({ region: 'us-east-1' });
const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/requests';
const GROUP = '6565b8f1c0e4a2b3d4e5f601';

const line = (fields: object) =>
  JSON.stringify({ groupId: GROUP, cloudProvider: 'AWS', regionName: 'US_EAST_1', ...fields });

describe('requestFromFlags', () => {
  it('builds a create request with the defaults and a generated requestId', () => {
    expect(requestFromFlags({ group: GROUP, region: 'US_EAST_1' }, () => 'generated-1')).toEqual({
      requestId: 'generated-1',
      action: 'create',
      groupId: GROUP,
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      profile: 'default',
    });
  });

  it('takes every flag', () => {
    const request = requestFromFlags({
      group: GROUP,
      region: 'US_EAST_1',
      'vpc-region': 'EU_WEST_1',
      action: 'delete',
      profile: 'team-a',
      'request-id': 'mine-1',
    });

    expect(request).toEqual({
      requestId: 'mine-1',
      action: 'delete',
      groupId: GROUP,
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      vpcRegionName: 'EU_WEST_1',
      profile: 'team-a',
    });
    expect(parseRequest(JSON.stringify(request))).toEqual(request);
  });

  it('fails naming each bad flag, as the function would reject it', () => {
    const attempt = () => requestFromFlags({ group: 'ABC', region: 'US_EAST_1', action: 'purge' });

    expect(attempt).toThrow(UsageError);
    expect(attempt).toThrow(/--action: .*--group: must be a 24-character lowercase hex Atlas project id/s);
  });

  it('fails naming the missing flags', () => {
    expect(() => requestFromFlags({ action: 'delete' })).toThrow(/^missing --group and --region/);
  });
});

describe('parseRequestLines', () => {
  it('parses every non-blank line, generating the requestIds that are missing', () => {
    let n = 0;
    const text = [line({ requestId: 'given-1' }), '', line({ action: 'delete' }), '   '].join('\n');

    const { requests, problems } = parseRequestLines(text, () => `gen-${++n}`);

    expect(problems).toEqual([]);
    expect(requests).toEqual([
      {
        line: 1,
        generatedId: false,
        request: expect.objectContaining({ requestId: 'given-1', action: 'create' }),
      },
      {
        line: 3,
        generatedId: true,
        request: expect.objectContaining({ requestId: 'gen-1', action: 'delete' }),
      },
    ]);
  });

  it('names every bad line and what is wrong with it', () => {
    const text = [
      line({ requestId: 'ok-1' }),
      '{not json',
      line({ requestId: 'bad-1', regionName: 'MARS_1' }),
      line({ requestId: 'bad-2', colour: 'blue' }),
    ].join('\n');

    const { problems } = parseRequestLines(text);

    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^line 2: not valid JSON/);
    expect(problems[1]).toMatch(/^line 3: regionName: must be one of the Atlas regions/);
    expect(problems[2]).toBe('line 4: unknown field(s): colour');
  });
});

describe('sendRequests', () => {
  const requests = (count: number): FileRequest[] =>
    parseRequestLines(Array.from({ length: count }, (_, i) => line({ requestId: `r-${i}` })).join('\n'))
      .requests;

  beforeEach(() => {
    sqs.reset();
  });

  it('sends ten requests per batch call, reporting progress', async () => {
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommand['input']) => ({
      Successful: (input.Entries ?? []).map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}` })),
    }));
    const progress = vi.fn();

    const sent = await sendRequests(client, QUEUE_URL, requests(23), progress);

    expect(sent).toBe(23);
    expect(sqs).toHaveReceivedCommandTimes(SendMessageBatchCommand, 3);
    expect(progress.mock.calls).toEqual([
      [10, 23],
      [20, 23],
      [23, 23],
    ]);
    const bodies = sqs.commandCalls(SendMessageBatchCommand).flatMap((c) => c.args[0].input.Entries ?? []);
    expect(bodies.map((e) => JSON.parse(e.MessageBody ?? '').requestId)).toEqual(
      Array.from({ length: 23 }, (_, i) => `r-${i}`),
    );
  });

  it('tries every batch, then fails naming the line and requestId of each refused entry', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .resolvesOnce({
        Successful: [{ Id: '0', MessageId: 'm', MD5OfMessageBody: '' }],
        Failed: [{ Id: '1', Code: 'InternalError', SenderFault: false, Message: 'try later' }],
      })
      .resolves({ Successful: [] });

    await expect(sendRequests(client, QUEUE_URL, requests(12))).rejects.toThrow(
      /refused 1 of 12 request\(s\):\n {2}line 2 \(requestId r-1\): InternalError: try later/,
    );
    expect(sqs).toHaveReceivedCommandTimes(SendMessageBatchCommand, 2);
  });
});

describe('npm run send', () => {
  let out: string[];

  beforeEach(() => {
    sqs.reset();
    out = [];
    vi.spyOn(console, 'log').mockImplementation((text: string) => out.push(text));
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    vi.stubEnv('AWS_REGION', 'us-east-1');
  });

  it('publishes one validated request and prints its requestId', async () => {
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm-1' });

    const code = await main(['--queue-url', QUEUE_URL, '--group', GROUP, '--region', 'US_EAST_1']);

    expect(code).toBe(0);
    const body = JSON.parse(sqs.commandCalls(SendMessageCommand)[0]?.args[0].input.MessageBody ?? '{}');
    expect(body).toMatchObject({ groupId: GROUP, regionName: 'US_EAST_1', action: 'create' });
    expect(out.join('\n')).toContain(`requestId ${body.requestId}`);
  });

  it('sends to the queue REQUEST_QUEUE_URL names when no flag does, as `npm start -- --keep` exports it', async () => {
    vi.stubEnv('REQUEST_QUEUE_URL', QUEUE_URL);
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm-2' });

    await expect(main(['--group', GROUP, '--region', 'US_EAST_1'])).resolves.toBe(0);

    expect(sqs).toHaveReceivedCommandWith(SendMessageCommand, { QueueUrl: QUEUE_URL });
  });

  it('sends nothing from a file with a bad line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'send-'));
    const file = join(dir, 'requests.jsonl');
    writeFileSync(file, `${line({ requestId: 'a' })}\n${line({ requestId: 'b', groupId: 'nope' })}\n`);

    await expect(main(['--queue-url', QUEUE_URL, '--file', file])).rejects.toThrow(
      /nothing sent; fix these line\(s\):\n {2}line 2: groupId: /,
    );
    expect(sqs.calls()).toHaveLength(0);
  });

  it('refuses --file combined with request flags', async () => {
    await expect(main(['--file', 'x.jsonl', '--group', GROUP])).rejects.toThrow(/cannot be combined/);
  });
});
