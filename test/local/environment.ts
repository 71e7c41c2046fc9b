/**
 * The stack's AWS resources, created on the local AWS API implementations from the same
 * settings the stack uses: the request queue (redrive to the DLQ at maxReceiveCount), the DLQ
 * and the rejected queue on ElasticMQ (it implements message move tasks); the ledger table,
 * the profile secrets and an EventBridge rule delivering status events to a watched queue on
 * moto. Returns the functions' environments, pointing the SDK at these servers.
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
import { ALL_PROJECTS, DEFAULT_REQUESTER } from '#messages/requesters.ts';
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

/** The EventBridge front door on moto, when the settings name its bus. */
export interface LocalFrontDoor {
  readonly busName: string;
  readonly ruleName: string;
  /**
   * The moto queue the rule delivers to when the request queue is on another server (ElasticMQ):
   * moto's EventBridge reaches only moto's queues, so its messages must be relayed.
   */
  readonly relayQueue?: QueueRef;
}

export interface LocalEnvironment {
  readonly settings: Settings;
  readonly region: string;
  readonly requestQueue: QueueRef;
  readonly dlq: QueueRef;
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

  // The queues on ElasticMQ and the rest on moto are created side by side.
  const sqsSide = async () => {
    const [dlq, rejectedQueue, continuationDlq] = await Promise.all([
      step('the DLQ', () => createQueue(clients.sqs, `${name}-dlq`, {})),
      step('the rejected queue', () => createQueue(clients.sqs, `${name}-rejected`, {})),
      step('the continuation DLQ', () => createQueue(clients.sqs, `${name}-continuations-dlq`, {})),
    ]);
    const redrive = (to: QueueRef) => ({
      VisibilityTimeout: String(visibility),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: to.arn, maxReceiveCount: receives }),
    });
    const [requestQueue, continuationQueue] = await Promise.all([
      step('the request queue', () => createQueue(clients.sqs, `${name}-requests`, redrive(dlq))),
      step('the continuation queue', () =>
        createQueue(clients.sqs, `${name}-continuations`, redrive(continuationDlq)),
      ),
    ]);
    return { dlq, rejectedQueue, requestQueue, continuationQueue };
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
  const [{ dlq, rejectedQueue, requestQueue, continuationQueue }, statusEventQueue] = await Promise.all([
    sqsSide(),
    awsSide(),
  ]);
  const frontDoor = settings.requestEventBusName
    ? await step('the front door', () =>
        createFrontDoor(clients, settings, name, {
          requestQueue,
          requestQueueOnMoto: options.sqsEndpoint === options.awsEndpoint,
        }),
      )
    : undefined;

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
    requestQueue,
    dlq,
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
        requesters: [
          {
            name: DEFAULT_REQUESTER,
            queueArn: requestQueue.arn,
            queueUrl: requestQueue.url,
            dlqUrl: dlq.url,
            projects: ALL_PROJECTS,
            profiles: settings.allowedProfiles,
            actions: ['create', 'delete'],
          },
        ],
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
    putSecret: (profile, value) => putSecret(clients.secrets, secretName(profile), value),
    close() {
      clients.sqs.destroy();
      clients.eventsSqs.destroy();
      clients.dynamo.destroy();
      clients.secrets.destroy();
      clients.eventBridge.destroy();
    },
  };
}

/**
 * The stack's front door rule on moto: the same pattern (front-door.ts), delivering the event's
 * detail to the request queue, or to a relay queue when the request queue is not on moto. The
 * stack's target says InputPath $.detail, which moto ignores; the input transformer below is
 * the same selection in the form moto applies.
 */
async function createFrontDoor(
  clients: LocalClients,
  settings: Settings,
  name: string,
  target: { requestQueue: QueueRef; requestQueueOnMoto: boolean },
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
      EventPattern: JSON.stringify(requestEventPattern(settings.requestEventSources)),
    }),
  );
  await clients.eventBridge.send(
    new PutTargetsCommand({
      Rule: ruleName,
      EventBusName: busName,
      Targets: [
        {
          Id: 'request-queue',
          Arn: (relayQueue ?? target.requestQueue).arn,
          InputTransformer: {
            InputPathsMap: { detail: REQUEST_EVENT_INPUT_PATH },
            InputTemplate: '<detail>',
          },
        },
      ],
    }),
  );
  return { busName, ruleName, ...(relayQueue && { relayQueue }) };
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
