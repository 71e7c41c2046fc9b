/**
 * The stack's AWS resources, created on the local AWS API implementations from the same
 * settings the stack uses: each requester's request queue (redrive to its DLQ at
 * maxReceiveCount) and DLQ (the default requester's when the settings name none), the
 * continuation queue and the rejected queue on ElasticMQ (it implements message move tasks);
 * the ledger table, the profile secrets and an EventBridge rule delivering status events to a
 * watched queue on moto. Returns the functions' environments, pointing the SDK at these servers.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateEventBusCommand,
  EventBridgeClient,
  PutRuleCommand,
  PutTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { STATUS_CHANGED_DETAIL_TYPE } from '#events/status-event.ts';
import {
  checkStatusEnvironment,
  maxReceiveCount,
  provisionEnvironment,
  resolveSettings,
  type Settings,
  type SettingsInput,
  visibilityTimeoutSeconds,
} from '#infra/settings.ts';
import { REQUEST_EVENT_INPUT_PATH, requestEventPattern } from '#messages/front-door.ts';
import { ALL_PROJECTS, DEFAULT_REQUESTER, type RequesterEntry } from '#messages/requesters.ts';
import { createLedgerTable } from '#test/support/ledger-table.ts';

/** ElasticMQ is configured for this region (see emulators.ts); moto accepts any. */
export const LOCAL_REGION = 'us-east-1';
export const LOCAL_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;

/** A profile secret's JSON, in the format the provisioner reads (ClientId/ClientSecret or PublicKey/PrivateKey, BaseUrl?). */
export type ProfileSecret = Record<string, string>;

/**
 * Settings for local runs, through the same validation as the stack's: the shortest provisioner
 * timeout (so the derived lease and visibility are short), backoff base 1 s and a short Atlas
 * timeout and settle period. The checker keeps a timeout well past its 10 s safety margin, or a run would stop
 * before it starts. `overrides` win.
 */
export function localSettings(overrides: SettingsInput = {}): Settings {
  return resolveSettings({
    provisionTimeoutSeconds: 10,
    checkTimeoutSeconds: 30,
    backoffBaseSeconds: 1,
    backoffCapSeconds: 4,
    atlasTimeoutMs: 3_000,
    // The simulator lands a create at once or never (unless told to land it late): a create in
    // doubt is listed again soon, so local runs see the whole wait without sitting through it.
    createSettleSeconds: 4,
    // Endpoints in progress are looked at again after 1 s, then every 2 s: local runs see a
    // status as soon as the simulator reaches it, whatever the checker's period.
    followUpFirstSeconds: 1,
    followUpMaxSeconds: 2,
    maxConcurrency: 2,
    ...overrides,
  });
}

export interface QueueRef {
  readonly url: string;
  readonly arn: string;
}

export interface LocalEnvironmentOptions {
  settings: Settings;
  /** SQS server for the stack's queues (ElasticMQ). */
  sqsEndpoint: string;
  /** Server for everything else, and for the watched status-event queue (moto). */
  awsEndpoint: string;
  /** The secret of each profile, created as secretPrefix + profile. */
  secrets: Record<string, ProfileSecret>;
  /** Prefix of every resource name; lets several environments share servers. Default "local". */
  name?: string;
  /**
   * Replaces the stack's derived visibility timeout (6 x the function timeout, at least 60 s)
   * where a test must wait for visibility to expire, e.g. after a simulated crash.
   */
  visibilityTimeoutSeconds?: number;
}

export interface LocalClients {
  /** The stack's queues (ElasticMQ). */
  readonly sqs: SQSClient;
  /** The watched status-event queue (moto). */
  readonly eventsSqs: SQSClient;
  readonly dynamo: DynamoDBDocumentClient;
  readonly secrets: SecretsManagerClient;
  readonly eventBridge: EventBridgeClient;
}

/** A requester's queues: its request queue, and the DLQ its requests are parked in and replayed from. */
export interface RequesterQueues {
  readonly queue: QueueRef;
  readonly dlq: QueueRef;
}

/** A moto queue a front door rule delivers to, whose messages go on to a requester's queue. */
export interface FrontDoorRelayRoute {
  /** The account whose copy of the bus holds the rule (see createFrontDoor). */
  readonly account: string;
  readonly requester: string;
  /** The moto queue, and a client of its account. */
  readonly from: { readonly sqs: SQSClient; readonly queue: QueueRef };
  /** The requester's request queue. */
  readonly to: QueueRef;
}

/** The EventBridge front door on moto, when the settings name its bus. */
export interface LocalFrontDoor {
  readonly busName: string;
  /** The default requester's rule, or with requesters the first front-door requester's. */
  readonly ruleName: string;
  /** Each front-door requester's rule, by requester name (the same name in every account). */
  readonly ruleNames: Readonly<Record<string, string>>;
  /**
   * The moto queue the rule delivers to when the request queue is on another server (ElasticMQ):
   * moto's EventBridge reaches only moto's queues, so its messages must be relayed.
   */
  readonly relayQueue?: QueueRef;
  /** Every relay the run keeps going: moto queue to requester queue. */
  readonly relays: readonly FrontDoorRelayRoute[];
}

/** Clients acting with another account's credentials (STS AssumeRole on moto). */
export interface AccountClients {
  readonly account: string;
  readonly eventBridge: EventBridgeClient;
  /** moto's SQS in that account. */
  readonly sqs: SQSClient;
}

export interface LocalEnvironment {
  readonly settings: Settings;
  readonly region: string;
  /** The account moto gives the run's own credentials: the deployment's account. */
  readonly accountId: string;
  /** The default requester's request queue; with requesters configured, the first requester's. */
  readonly requestQueue: QueueRef;
  /** The default requester's DLQ; with requesters configured, the first requester's. */
  readonly dlq: QueueRef;
  /** Each requester's queues by name: `default` alone when the settings name no requesters. */
  readonly requesters: Readonly<Record<string, RequesterQueues>>;
  /** The registry written into the provisioner's REQUESTERS, as the stack writes it. */
  readonly requesterEntries: readonly RequesterEntry[];
  readonly rejectedQueue: QueueRef;
  /** The provisioner's private queue of waits, follow-ups and hand-backs. */
  readonly continuationQueue: QueueRef;
  /** Receives every status event through the EventBridge rule. */
  readonly statusEventQueue: QueueRef;
  readonly tableName: string;
  readonly ruleName: string;
  readonly frontDoor?: LocalFrontDoor;
  readonly maxReceiveCount: number;
  readonly visibilityTimeoutSeconds: number;
  /** Endpoints, region and static test credentials: what any SDK client (or `npm run ...`) needs. */
  readonly awsEnvironment: Record<string, string>;
  /** The full environment of each function. */
  readonly provisionEnvironment: Record<string, string>;
  readonly checkStatusEnvironment: Record<string, string>;
  readonly clients: LocalClients;
  secretName(profile: string): string;
  /**
   * Clients with the credentials of another account (STS AssumeRole on moto): moto fills a put
   * event's `account` from them, as EventBridge does.
   */
  asAccount(account: string): Promise<AccountClients>;
  /** Writes a new version of a profile's secret (rotation). */
  putSecret(profile: string, value: ProfileSecret): Promise<void>;
  close(): void;
}

/** Creates the resources and returns where they are; fails naming the resource that could not be created. */
export async function createLocalEnvironment(options: LocalEnvironmentOptions): Promise<LocalEnvironment> {
  const { settings } = options;
  const name = options.name ?? 'local';
  const config = { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS };
  const dynamo = new DynamoDBClient({ ...config, endpoint: options.awsEndpoint });
  const clients: LocalClients = {
    sqs: new SQSClient({ ...config, endpoint: options.sqsEndpoint }),
    eventsSqs: new SQSClient({ ...config, endpoint: options.awsEndpoint }),
    dynamo: DynamoDBDocumentClient.from(dynamo, {
      marshallOptions: { removeUndefinedValues: true },
    }),
    secrets: new SecretsManagerClient({ ...config, endpoint: options.awsEndpoint }),
    eventBridge: new EventBridgeClient({ ...config, endpoint: options.awsEndpoint }),
  };
  const receives = maxReceiveCount(settings);
  const visibility = options.visibilityTimeoutSeconds ?? visibilityTimeoutSeconds(settings);
  const tableName = `${name}-ledger`;
  const ruleName = `${name}-status-events`;
  const secretName = (profile: string) => `${settings.secretPrefix}${profile}`;

  const step = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (cause) {
      throw new Error(`local environment: could not create ${what}: ${(cause as Error).message}`, { cause });
    }
  };

  const redrive = (to: QueueRef) => ({
    VisibilityTimeout: String(visibility),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: to.arn, maxReceiveCount: receives }),
  });
  // A requester's queue and DLQ, with the redrive the stack gives them (constructs/queues.ts).
  const requesterQueues = async (requester: string, prefix: string): Promise<RequesterQueues> => {
    const what = requester === DEFAULT_REQUESTER ? '' : ` of requester ${requester}`;
    const dlq = await step(`the DLQ${what}`, () => createQueue(clients.sqs, `${prefix}-dlq`, {}));
    const queue = await step(`the request queue${what}`, () =>
      createQueue(clients.sqs, `${prefix}-requests`, redrive(dlq)),
    );
    return { queue, dlq };
  };
  // The queues on ElasticMQ and the rest on moto are created side by side.
  const sqsSide = async () => {
    const [rejectedQueue, continuationDlq] = await Promise.all([
      step('the rejected queue', () => createQueue(clients.sqs, `${name}-rejected`, {})),
      step('the continuation DLQ', () => createQueue(clients.sqs, `${name}-continuations-dlq`, {})),
    ]);
    const [continuationQueue, ...pairs] = await Promise.all([
      step('the continuation queue', () =>
        createQueue(clients.sqs, `${name}-continuations`, redrive(continuationDlq)),
      ),
      ...(settings.requesters === undefined
        ? [requesterQueues(DEFAULT_REQUESTER, name)]
        : settings.requesters.map((r) => requesterQueues(r.name, `${name}-${r.name}`))),
    ]);
    const names = settings.requesters?.map((r) => r.name) ?? [DEFAULT_REQUESTER];
    const requesters = Object.fromEntries(names.map((n, i) => [n, pairs[i] as RequesterQueues]));
    return { rejectedQueue, continuationQueue, requesters };
  };
  const awsSide = async () => {
    const [statusEventQueue] = await Promise.all([
      step('the status-event queue', () => createQueue(clients.eventsSqs, `${name}-status-events`, {})),
      step(`the ledger table ${tableName}`, () => createLedgerTable(dynamo, tableName)),
      ...Object.entries(options.secrets).map(([profile, value]) =>
        step(`the secret ${secretName(profile)}`, () =>
          putSecret(clients.secrets, secretName(profile), value),
        ),
      ),
    ]);
    await step(`the event rule ${ruleName}`, async () => {
      if (settings.eventBusName !== 'default') {
        await clients.eventBridge.send(new CreateEventBusCommand({ Name: settings.eventBusName }));
      }
      await clients.eventBridge.send(
        new PutRuleCommand({
          Name: ruleName,
          EventBusName: settings.eventBusName,
          EventPattern: JSON.stringify({
            source: [settings.eventSource],
            'detail-type': [STATUS_CHANGED_DETAIL_TYPE],
          }),
        }),
      );
      await clients.eventBridge.send(
        new PutTargetsCommand({
          Rule: ruleName,
          EventBusName: settings.eventBusName,
          Targets: [{ Id: 'watched-queue', Arn: statusEventQueue.arn }],
        }),
      );
    });
    return statusEventQueue;
  };
  const [{ rejectedQueue, continuationQueue, requesters }, statusEventQueue] = await Promise.all([
    sqsSide(),
    awsSide(),
  ]);
  const first = Object.values(requesters)[0];
  if (!first) throw new Error('local environment: no requester queues');
  const { queue: requestQueue, dlq } = first;
  // moto's account for the run's own credentials, as its queue ARN says.
  const accountId = statusEventQueue.arn.split(':')[4] ?? '';
  const accounts = new Map<string, Promise<AccountClients>>();
  const asAccount = (account: string) => {
    let clientsOf = accounts.get(account);
    if (!clientsOf) {
      clientsOf = accountClients(options.awsEndpoint, account);
      accounts.set(account, clientsOf);
    }
    return clientsOf;
  };
  const frontDoor = settings.requestEventBusName
    ? await step('the front door', () =>
        settings.requesters === undefined
          ? createFrontDoor(clients, settings, name, {
              accountId,
              requestQueue,
              requestQueueOnMoto: options.sqsEndpoint === options.awsEndpoint,
            })
          : createRequesterFrontDoors(clients, settings, name, { accountId, requesters, asAccount }),
      )
    : undefined;
  const requesterEntries: RequesterEntry[] =
    settings.requesters === undefined
      ? [
          {
            name: DEFAULT_REQUESTER,
            queueArn: requestQueue.arn,
            queueUrl: requestQueue.url,
            dlqUrl: dlq.url,
            projects: ALL_PROJECTS,
            profiles: settings.allowedProfiles,
            actions: ['create', 'delete'],
          },
        ]
      : // As RequesterResources.entry (infra/constructs/requesters.ts) writes each one.
        settings.requesters.map(({ name: requester, projects, profiles, actions, operator }) => {
          const own = requesters[requester] as RequesterQueues;
          return {
            name: requester,
            queueArn: own.queue.arn,
            queueUrl: own.queue.url,
            dlqUrl: own.dlq.url,
            projects,
            profiles,
            actions,
            ...(operator !== undefined && { operator }),
          };
        });

  const awsEnvironment = {
    AWS_REGION: LOCAL_REGION,
    AWS_DEFAULT_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL: options.awsEndpoint,
    AWS_ENDPOINT_URL_SQS: options.sqsEndpoint,
  };

  return {
    settings,
    region: LOCAL_REGION,
    accountId,
    requestQueue,
    dlq,
    requesters,
    requesterEntries,
    rejectedQueue,
    continuationQueue,
    statusEventQueue,
    tableName,
    ruleName,
    ...(frontDoor && { frontDoor }),
    maxReceiveCount: receives,
    visibilityTimeoutSeconds: visibility,
    awsEnvironment,
    provisionEnvironment: {
      ...awsEnvironment,
      ...provisionEnvironment(settings, {
        requesters: requesterEntries,
        continuationQueueUrl: continuationQueue.url,
        continuationQueueArn: continuationQueue.arn,
        rejectedQueueUrl: rejectedQueue.url,
        ledgerTableName: tableName,
      }),
    },
    checkStatusEnvironment: {
      ...awsEnvironment,
      ...checkStatusEnvironment(settings, {
        ledgerTableName: tableName,
        continuationQueueUrl: continuationQueue.url,
      }),
    },
    clients,
    secretName,
    asAccount,
    putSecret: (profile, value) => putSecret(clients.secrets, secretName(profile), value),
    close() {
      for (const other of accounts.values()) {
        other.then(
          (c) => {
            c.eventBridge.destroy();
            c.sqs.destroy();
          },
          () => undefined,
        );
      }
      clients.sqs.destroy();
      clients.eventsSqs.destroy();
      clients.dynamo.destroy();
      clients.secrets.destroy();
      clients.eventBridge.destroy();
    },
  };
}

/**
 * The stack's front door rule of the default requester on moto: the same pattern (front-door.ts,
 * events of this account only), delivering the event's detail to the request queue, or to a relay
 * queue when the request queue is not on moto. The stack's target says InputPath $.detail, which
 * moto ignores; the input transformer below is the same selection in the form moto applies.
 */
async function createFrontDoor(
  clients: LocalClients,
  settings: Settings,
  name: string,
  target: { accountId: string; requestQueue: QueueRef; requestQueueOnMoto: boolean },
): Promise<LocalFrontDoor> {
  const busName = settings.requestEventBusName ?? 'default';
  const ruleName = `${name}-front-door`;
  if (busName !== 'default' && busName !== settings.eventBusName) {
    await clients.eventBridge.send(new CreateEventBusCommand({ Name: busName }));
  }
  const relayQueue = target.requestQueueOnMoto
    ? undefined
    : await createQueue(clients.eventsSqs, `${name}-front-door-relay`, {});
  await clients.eventBridge.send(
    new PutRuleCommand({
      Name: ruleName,
      EventBusName: busName,
      EventPattern: JSON.stringify({
        ...requestEventPattern(settings.requestEventSources),
        account: [target.accountId],
      }),
    }),
  );
  await putDetailTarget(clients.eventBridge, busName, ruleName, relayQueue ?? target.requestQueue);
  return {
    busName,
    ruleName,
    ruleNames: { [DEFAULT_REQUESTER]: ruleName },
    ...(relayQueue && { relayQueue }),
    relays: relayQueue
      ? [
          {
            account: target.accountId,
            requester: DEFAULT_REQUESTER,
            from: { sqs: clients.eventsSqs, queue: relayQueue },
            to: target.requestQueue,
          },
        ]
      : [],
  };
}

/** The rule's target: the event's detail, as the message body (the stack's InputPath $.detail, as moto applies it). */
async function putDetailTarget(
  eventBridge: EventBridgeClient,
  busName: string,
  ruleName: string,
  queue: QueueRef,
): Promise<void> {
  await eventBridge.send(
    new PutTargetsCommand({
      Rule: ruleName,
      EventBusName: busName,
      Targets: [
        {
          Id: 'request-queue',
          Arn: queue.arn,
          InputTransformer: {
            InputPathsMap: { detail: REQUEST_EVENT_INPUT_PATH },
            InputTemplate: '<detail>',
          },
        },
      ],
    }),
  );
}

/**
 * The front door with requesters, as Requesters.addFrontDoor builds it: one rule per requester
 * with frontDoorAccounts, its pattern front-door.ts's plus `account: [its accounts]`, the event's
 * detail delivered to that requester's queue (through a relay queue on moto).
 *
 * moto fills an event's `account` from the caller's credentials, as EventBridge does, but keeps a
 * bus per account and delivers a PutEvents to the caller's own account's bus of that name (the
 * account of a bus ARN given as EventBusName is ignored), and a rule only to queues of its own
 * account. So the bus and the same rules are made in the run's account and in every front-door
 * account: whichever account puts an event, the same rules judge it by its `account`.
 */
async function createRequesterFrontDoors(
  clients: LocalClients,
  settings: Settings,
  name: string,
  context: {
    accountId: string;
    requesters: Readonly<Record<string, RequesterQueues>>;
    asAccount: (account: string) => Promise<AccountClients>;
  },
): Promise<LocalFrontDoor> {
  const busName = settings.requestEventBusName ?? 'default';
  const doors = (settings.requesters ?? []).filter((r) => r.frontDoorAccounts.length > 0);
  const ruleNames = Object.fromEntries(doors.map((r) => [r.name, `${name}-front-door-${r.name}`]));
  const accounts = [
    context.accountId,
    ...new Set(doors.flatMap((r) => r.frontDoorAccounts).filter((a) => a !== context.accountId)),
  ];
  const relays = await Promise.all(
    accounts.map(async (account) => {
      const own = account === context.accountId;
      const { eventBridge, sqs } = own
        ? { eventBridge: clients.eventBridge, sqs: clients.eventsSqs }
        : await context.asAccount(account);
      if (busName !== 'default' && !(own && busName === settings.eventBusName)) {
        await eventBridge.send(new CreateEventBusCommand({ Name: busName }));
      }
      return Promise.all(
        doors.map(async (r): Promise<FrontDoorRelayRoute> => {
          const ruleName = ruleNames[r.name] as string;
          const relay = await createQueue(sqs, `${name}-front-door-${r.name}`, {});
          await eventBridge.send(
            new PutRuleCommand({
              Name: ruleName,
              EventBusName: busName,
              EventPattern: JSON.stringify({
                ...requestEventPattern(settings.requestEventSources),
                account: [...r.frontDoorAccounts],
              }),
            }),
          );
          await putDetailTarget(eventBridge, busName, ruleName, relay);
          const to = context.requesters[r.name]?.queue;
          if (!to) throw new Error(`no queue of requester ${r.name}`);
          return { account, requester: r.name, from: { sqs, queue: relay }, to };
        }),
      );
    }),
  );
  return { busName, ruleName: Object.values(ruleNames)[0] ?? '', ruleNames, relays: relays.flat() };
}

/**
 * Clients of another account: moto's STS AssumeRole into a role of that account (the role need
 * not exist) gives credentials moto takes for that account. The SDK's STS client is not a
 * dependency of the project: the query API is called directly (moto checks no signature; the
 * Authorization header only routes the call to STS).
 */
async function accountClients(endpoint: string, account: string): Promise<AccountClients> {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `AWS4-HMAC-SHA256 Credential=${LOCAL_CREDENTIALS.accessKeyId}/20240101/${LOCAL_REGION}/sts/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: new URLSearchParams({
      Action: 'AssumeRole',
      Version: '2011-06-15',
      RoleArn: `arn:aws:iam::${account}:role/local-sender`,
      RoleSessionName: 'local-run',
    }),
  });
  const xml = await response.text();
  const field = (tag: string) => xml.match(new RegExp(`<${tag}>([^<]+)</${tag}>`))?.[1];
  const accessKeyId = field('AccessKeyId');
  const secretAccessKey = field('SecretAccessKey');
  const sessionToken = field('SessionToken');
  if (!response.ok || !accessKeyId || !secretAccessKey) {
    throw new Error(`AssumeRole into account ${account} answered ${response.status}: ${xml.slice(0, 300)}`);
  }
  const config = {
    region: LOCAL_REGION,
    endpoint,
    credentials: { accessKeyId, secretAccessKey, ...(sessionToken && { sessionToken }) },
  };
  return { account, eventBridge: new EventBridgeClient(config), sqs: new SQSClient(config) };
}

async function createQueue(
  sqs: SQSClient,
  name: string,
  attributes: Record<string, string>,
): Promise<QueueRef> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  if (!QueueUrl) throw new Error(`CreateQueue ${name} returned no URL`);
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  if (!Attributes?.QueueArn) throw new Error(`queue ${name} has no ARN`);
  return { url: QueueUrl, arn: Attributes.QueueArn };
}

async function putSecret(client: SecretsManagerClient, name: string, value: ProfileSecret): Promise<void> {
  const SecretString = JSON.stringify(value);
  try {
    await client.send(new CreateSecretCommand({ Name: name, SecretString }));
  } catch (error) {
    if (!(error instanceof ResourceExistsException)) throw error;
    await client.send(new PutSecretValueCommand({ SecretId: name, SecretString }));
  }
}
