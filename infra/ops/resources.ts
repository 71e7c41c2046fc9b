/**
 * Finds the deployed resources an operator command works on: from flags first; else, unless
 * --stack names a stack, from environment variables (those `npm start -- --keep` prints); else
 * from the stack's CloudFormation outputs (infra/stack.ts). A queue given by URL or ARN alone is
 * completed by asking SQS. The SDK clients honour AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>,
 * so the commands work on the local emulators as on AWS.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetQueueAttributesCommand, GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { DEFAULT_STACK_NAME, REQUESTERS_OUTPUT, type RequesterOutput, STACK_OUTPUTS } from '#infra/names.ts';
import { CommandError, UsageError } from './cli.ts';

/**
 * Each resource: the stack output it comes from (infra/names.ts), the flag that names it instead,
 * and the environment variable that does when no flag does (`npm start -- --keep` exports them).
 */
export const RESOURCES = {
  requestQueueUrl: {
    output: STACK_OUTPUTS.requestQueueUrl,
    flag: 'queue-url',
    variable: 'REQUEST_QUEUE_URL',
  },
  requestQueueArn: {
    output: STACK_OUTPUTS.requestQueueArn,
    flag: 'queue-arn',
    variable: 'REQUEST_QUEUE_ARN',
  },
  dlqUrl: { output: STACK_OUTPUTS.dlqUrl, flag: 'dlq-url', variable: 'DLQ_URL' },
  dlqArn: { output: STACK_OUTPUTS.dlqArn, flag: 'dlq-arn', variable: 'DLQ_ARN' },
  rejectedQueueUrl: {
    output: STACK_OUTPUTS.rejectedQueueUrl,
    flag: 'rejected-queue-url',
    variable: 'REJECTED_QUEUE_URL',
  },
  tableName: { output: STACK_OUTPUTS.tableName, flag: 'table', variable: 'LEDGER_TABLE' },
  eventBusName: { output: STACK_OUTPUTS.eventBusName, flag: 'event-bus', variable: 'EVENT_BUS_NAME' },
  eventSource: { output: STACK_OUTPUTS.eventSource, flag: 'event-source', variable: 'EVENT_SOURCE' },
  continuationDlqUrl: {
    output: STACK_OUTPUTS.continuationDlqUrl,
    flag: 'continuation-dlq-url',
    variable: 'CONTINUATION_DLQ_URL',
  },
} as const satisfies Record<keyof typeof STACK_OUTPUTS, { output: string; flag: string; variable: string }>;

export type ResourceName = keyof typeof RESOURCES;
export type Resources = Record<ResourceName, string>;

/** The parseArgs options for the given resources' flags, plus --stack. */
export function resourceFlags<K extends ResourceName>(names: readonly K[]) {
  const flags: Record<string, { type: 'string' }> = { stack: { type: 'string' } };
  for (const name of names) flags[RESOURCES[name].flag] = { type: 'string' };
  return flags as Record<(typeof RESOURCES)[K]['flag'] | 'stack', { type: 'string' }>;
}

/** The resources named by flags (as parsed by parseArgs with resourceFlags). */
export function resourcesFromFlags(values: Record<string, unknown>): Partial<Resources> {
  const given: Partial<Resources> = {};
  for (const [name, { flag }] of Object.entries(RESOURCES) as [
    ResourceName,
    (typeof RESOURCES)[ResourceName],
  ][]) {
    const value = values[flag];
    if (typeof value === 'string' && value !== '') given[name] = value;
  }
  return given;
}

export interface ResolveOptions {
  given: Partial<Resources>;
  /** The stack named by --stack: its outputs come before the environment variables. */
  stack?: string;
  /**
   * The requester named by --requester: its queues (request queue, DLQ) come from the stack's
   * Requesters output, after the flags and before the environment variables.
   */
  requester?: string;
  /** @default process.env */
  environment?: Record<string, string | undefined>;
  sqs: SQSClient;
  cloudFormation?: CloudFormationClient;
}

/** A queue's URL and ARN determine each other; SQS answers whichever is missing. */
const QUEUE_PAIRS = [
  ['requestQueueUrl', 'requestQueueArn'],
  ['dlqUrl', 'dlqArn'],
] as const;

/** Each requester's queue and DLQ resource, from its entry in the Requesters output. */
const REQUESTER_RESOURCES = {
  requestQueueUrl: 'queueUrl',
  requestQueueArn: 'queueArn',
  dlqUrl: 'dlqUrl',
  dlqArn: 'dlqArn',
} as const satisfies Partial<Record<ResourceName, keyof RequesterOutput>>;

/** The requesters of a stack's Requesters output, by name; undefined when the stack has none. */
export function requestersOutput(
  outputs: ReadonlyMap<string, string>,
): Record<string, RequesterOutput> | undefined {
  const text = outputs.get(REQUESTERS_OUTPUT);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Record<string, RequesterOutput>;
  } catch {
    throw new CommandError(`the stack output ${REQUESTERS_OUTPUT} is not JSON (${text})`);
  }
}

const named = (requesters: Record<string, unknown>) =>
  Object.keys(requesters)
    .sort()
    .map((n) => `"${n}"`)
    .join(', ');

/** The resources the environment variables name (RESOURCES' `variable`). */
export function resourcesFromEnvironment(
  environment: Record<string, string | undefined>,
): Partial<Resources> {
  const named: Partial<Resources> = {};
  for (const [name, { variable }] of Object.entries(RESOURCES) as [ResourceName, { variable: string }][]) {
    const value = environment[variable];
    if (value) named[name] = value;
  }
  return named;
}

/**
 * The needed resources, from the flags; else, unless a stack is named, the environment
 * variables; else the stack's outputs. Throws UsageError naming the flag, the variable and the
 * output of anything still missing.
 */
export async function resolveResources<K extends ResourceName>(
  needed: readonly K[],
  options: ResolveOptions,
): Promise<Pick<Resources, K>> {
  const stack = options.stack ?? DEFAULT_STACK_NAME;
  const cloudFormation = () => options.cloudFormation ?? new CloudFormationClient({});
  let fromRequester: Partial<Resources> = {};
  if (options.requester !== undefined) {
    const requester = options.requester;
    let requesters: Record<string, RequesterOutput> | undefined;
    try {
      requesters = requestersOutput(await stackOutputs(cloudFormation(), stack));
    } catch (error) {
      if (error instanceof CommandError || error instanceof UsageError) throw error;
      throw new CommandError(
        `--requester ${requester}: the outputs of stack ${stack} could not be read (${error instanceof Error ? error.message : String(error)})`,
      );
    }
    if (requesters === undefined) {
      throw new UsageError(
        `--requester ${requester}: stack ${stack} has no requesters (no ${REQUESTERS_OUTPUT} output): leave --requester out`,
      );
    }
    const entry = requesters[requester];
    if (entry === undefined) {
      throw new UsageError(
        `--requester ${requester}: stack ${stack} has no such requester; its requesters are ${named(requesters)}`,
      );
    }
    fromRequester = Object.fromEntries(
      Object.entries(REQUESTER_RESOURCES).map(([resource, field]) => [resource, entry[field]]),
    );
  }
  const fromEnvironment =
    options.stack === undefined && options.requester === undefined
      ? resourcesFromEnvironment(options.environment ?? process.env)
      : {};
  const found: Partial<Resources> = { ...fromEnvironment, ...fromRequester, ...options.given };
  const derivable = (name: ResourceName) =>
    QUEUE_PAIRS.some(([url, arn]) => (name === url && found[arn]) || (name === arn && found[url]));
  const missing = needed.filter((name) => !found[name] && !derivable(name));
  let stackProblem: string | undefined;
  if (missing.length > 0) {
    try {
      const outputs = await stackOutputs(cloudFormation(), stack);
      for (const [name, { output }] of Object.entries(RESOURCES) as [ResourceName, { output: string }][]) {
        const value = outputs.get(output);
        if (!found[name] && value) found[name] = value;
      }
      const requesters = requestersOutput(outputs);
      const perRequester = missing.filter((name) => name in REQUESTER_RESOURCES && !found[name]);
      if (requesters !== undefined && perRequester.length > 0) {
        throw new UsageError(
          `stack ${stack} has requesters, each with its own queues: pass --requester <name>, one of ${named(requesters)}`,
        );
      }
    } catch (error) {
      if (error instanceof CommandError || error instanceof UsageError) throw error;
      stackProblem = `the outputs of stack ${stack} could not be read (${error instanceof Error ? error.message : String(error)})`;
    }
  }
  const wanted = new Set<ResourceName>(needed);
  for (const [url, arn] of QUEUE_PAIRS) {
    if (wanted.has(arn) && !found[arn] && found[url]) found[arn] = await queueArn(options.sqs, found[url]);
    if (wanted.has(url) && !found[url] && found[arn]) found[url] = await queueUrl(options.sqs, found[arn]);
  }
  const unresolved = needed.filter((name) => !found[name]);
  if (unresolved.length > 0) {
    const what = unresolved.map(
      (n) => `--${RESOURCES[n].flag} (or ${RESOURCES[n].variable}; stack output ${RESOURCES[n].output})`,
    );
    throw new UsageError(
      `missing ${what.join(', ')}: pass the flag${unresolved.length > 1 ? 's' : ''}, set the variable${unresolved.length > 1 ? 's' : ''}, or --stack <name> of the deployed stack` +
        (stackProblem ? `; ${stackProblem}` : ''),
    );
  }
  return Object.fromEntries(needed.map((name) => [name, found[name]])) as Pick<Resources, K>;
}

async function stackOutputs(client: CloudFormationClient, stack: string): Promise<Map<string, string>> {
  const out = await client.send(new DescribeStacksCommand({ StackName: stack }));
  const outputs = out.Stacks?.[0]?.Outputs ?? [];
  return new Map(
    outputs.flatMap((o) => (o.OutputKey && o.OutputValue ? [[o.OutputKey, o.OutputValue]] : [])),
  );
}

async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  const arn = out.Attributes?.QueueArn;
  if (!arn) throw new CommandError(`SQS gave no ARN for queue ${url}`);
  return arn;
}

async function queueUrl(sqs: SQSClient, arn: string): Promise<string> {
  const [, , service, , account, name] = arn.split(':');
  if (service !== 'sqs' || !account || !name) throw new UsageError(`"${arn}" is not an SQS queue ARN`);
  const out = await sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }));
  if (!out.QueueUrl) throw new CommandError(`SQS gave no URL for queue ${arn}`);
  return out.QueueUrl;
}
