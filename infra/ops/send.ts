/**
 * `npm run send`: publishes provisioning requests to the request queue, validated by the same
 * parser the function uses, so a request that leaves here is never rejected as malformed.
 * One from flags, or many from a JSON Lines file (every line checked before any is sent).
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DEFAULT_STACK_NAME } from '#infra/names.ts';
import { InvalidRequestError } from '#lib/errors.ts';
import { type ProvisionRequest, parseRequest } from '#messages/request.ts';
import { CommandError, isMain, ProgressBar, parseCommand, runMain, UsageError } from './cli.ts';
import { resolveResources, resourceFlags, resourcesFromFlags } from './resources.ts';

const BATCH = 10;

export interface RequestFlags {
  group?: string;
  region?: string;
  'vpc-region'?: string;
  action?: string;
  profile?: string;
  provider?: string;
  'request-id'?: string;
}

/** A request built from flags, with a generated requestId when none is given; UsageError lists every problem. */
export function requestFromFlags(flags: RequestFlags, newId: () => string = randomUUID): ProvisionRequest {
  const absent = (['group', 'region'] as const).filter((f) => flags[f] === undefined);
  if (absent.length > 0)
    throw new UsageError(`missing ${absent.map((f) => `--${f}`).join(' and ')}`, { usage: USAGE });
  const body = {
    requestId: flags['request-id'] ?? newId(),
    action: flags.action,
    groupId: flags.group,
    cloudProvider: flags.provider ?? 'AWS',
    regionName: flags.region,
    vpcRegionName: flags['vpc-region'],
    profile: flags.profile,
  };
  try {
    return parseRequest(JSON.stringify(body));
  } catch (error) {
    if (!(error instanceof InvalidRequestError)) throw error;
    const named = error.issues.map((issue) =>
      issue.replace(/^(\w+):/, (_, field: string) => `${flagOf(field)}:`),
    );
    throw new UsageError(`invalid request: ${named.join('; ')}`);
  }
}

const FLAG_OF: Record<string, string> = {
  requestId: '--request-id',
  action: '--action',
  groupId: '--group',
  cloudProvider: '--provider',
  regionName: '--region',
  vpcRegionName: '--vpc-region',
  profile: '--profile',
};
const flagOf = (field: string) => FLAG_OF[field] ?? field;

export interface FileRequest {
  /** 1-based line number in the file. */
  line: number;
  request: ProvisionRequest;
  /** Whether the requestId was generated here (the line had none). */
  generatedId: boolean;
}

/**
 * Parses a JSON Lines file: one request object per non-blank line, a requestId generated where
 * a line has none. Returns the requests, or the problems of every bad line (line number first).
 */
export function parseRequestLines(
  text: string,
  newId: () => string = randomUUID,
): { requests: FileRequest[]; problems: string[] } {
  const requests: FileRequest[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (error) {
      problems.push(`line ${line}: not valid JSON (${(error as Error).message})`);
      return;
    }
    const hasId = typeof json === 'object' && json !== null && 'requestId' in json;
    const body = typeof json === 'object' && json !== null && !hasId ? { requestId: newId(), ...json } : json;
    try {
      requests.push({ line, request: parseRequest(JSON.stringify(body)), generatedId: !hasId });
    } catch (error) {
      if (!(error instanceof InvalidRequestError)) throw error;
      problems.push(`line ${line}: ${error.issues.join('; ')}`);
    }
  });
  return { requests, problems };
}

/** Sends one request; resolves with its SQS message id. */
export async function sendRequest(
  sqs: SQSClient,
  queueUrl: string,
  request: ProvisionRequest,
): Promise<string> {
  const out = await sqs.send(
    new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(request) }),
  );
  return out.MessageId ?? '';
}

/**
 * Sends the requests ten per SendMessageBatch call. Every batch is tried; entries SQS refused are
 * named (line and requestId) in the error thrown at the end.
 */
export async function sendRequests(
  sqs: SQSClient,
  queueUrl: string,
  requests: readonly FileRequest[],
  onProgress?: (sent: number, total: number) => void,
): Promise<number> {
  const refused: string[] = [];
  let sent = 0;
  for (let i = 0; i < requests.length; i += BATCH) {
    const chunk = requests.slice(i, i + BATCH);
    const out = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((r, n) => ({ Id: String(n), MessageBody: JSON.stringify(r.request) })),
      }),
    );
    for (const failed of out.Failed ?? []) {
      const r = chunk[Number(failed.Id)];
      refused.push(
        `line ${r?.line} (requestId ${r?.request.requestId}): ${failed.Code}: ${failed.Message ?? ''}`,
      );
    }
    sent += out.Successful?.length ?? 0;
    onProgress?.(sent, requests.length);
  }
  if (refused.length > 0) {
    throw new CommandError(
      `SQS refused ${refused.length} of ${requests.length} request(s):\n  ${refused.join('\n  ')}`,
    );
  }
  return sent;
}

const USAGE = `usage: npm run send -- --group <projectId> --region <REGION> [--vpc-region <REGION>]
                     [--action create|delete] [--profile <name>] [--request-id <id>]
       npm run send -- --file requests.jsonl
   queue: [--stack <name>] [--requester <name>] [--queue-url <url>]

Publishes provisioning requests to the request queue, validated like the function validates
them. A requestId is generated when none is given, and printed. --file sends one JSON request
per line, after checking every line. The queue comes from --queue-url, else from
REQUEST_QUEUE_URL (as \`npm start -- --keep\` exports it) unless --stack is given, else from the
outputs of the deployed stack (default ${DEFAULT_STACK_NAME}). On a deployment with requesters,
--requester names whose queue (from the stack's Requesters output): the requests are that
requester's, and the queue admits only its senders. AWS_ENDPOINT_URL points it at an emulator.`;

/** The command: parses argv, prints to stdout (results) and stderr (progress), resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const flags = parseCommand(
    {
      ...resourceFlags(['requestQueueUrl']),
      group: { type: 'string' },
      region: { type: 'string' },
      'vpc-region': { type: 'string' },
      action: { type: 'string' },
      profile: { type: 'string' },
      provider: { type: 'string' },
      'request-id': { type: 'string' },
      file: { type: 'string' },
      requester: { type: 'string' },
    },
    argv,
    USAGE,
  );
  if (!flags) return 0;
  const requestFlags = [
    'group',
    'region',
    'vpc-region',
    'action',
    'profile',
    'provider',
    'request-id',
  ] as const;
  if (flags.file !== undefined && requestFlags.some((f) => flags[f] !== undefined)) {
    throw new UsageError('--file cannot be combined with request flags (--group, --region, ...)', {
      usage: USAGE,
    });
  }
  const sqs = new SQSClient({});
  const queue = async () =>
    (
      await resolveResources(['requestQueueUrl'], {
        given: resourcesFromFlags(flags),
        stack: flags.stack,
        requester: flags.requester,
        sqs,
      })
    ).requestQueueUrl;

  if (flags.file === undefined) {
    const request = requestFromFlags(flags);
    const messageId = await sendRequest(sqs, await queue(), request);
    console.log(
      `sent ${request.action} ${request.groupId} ${request.regionName}: requestId ${request.requestId}`,
    );
    console.error(`(SQS message ${messageId})`);
    return 0;
  }

  let text: string;
  try {
    text = await readFile(flags.file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${flags.file}: ${(error as Error).message}`);
  }
  const { requests, problems } = parseRequestLines(text);
  if (problems.length > 0) {
    throw new UsageError(`${flags.file}: nothing sent; fix these line(s):\n  ${problems.join('\n  ')}`);
  }
  if (requests.length === 0) throw new UsageError(`${flags.file} holds no request`);
  const queueUrl = await queue();
  const bar = new ProgressBar('sent');
  const sent = await sendRequests(sqs, queueUrl, requests, (done, total) => bar.update(done, total));
  for (const r of requests.filter((r) => r.generatedId))
    console.log(`line ${r.line}: requestId ${r.request.requestId}`);
  console.log(`sent ${sent} request(s) from ${flags.file}`);
  return 0;
}

if (isMain(import.meta)) await runMain(() => main(process.argv.slice(2)));
