/**
 * Deployment settings: one typed, validated set shared by the CDK stack and the local runner,
 * so a laptop run behaves like the deployment. Each field's default is documented here and in
 * the README ("Configuration"). Set them as stack props or as CDK context (`cdk.json` or `-c`).
 * A setting the functions read takes its checks from their environment contract
 * (functions/lib/runtime/environment.ts), which also writes their environment from these settings.
 */

import { DEFAULT_API_VERSION, DEFAULT_BASE_URL } from '#atlas/types.ts';
import * as z from '#lib/zod.ts';
import type { RequesterEntry } from '#messages/requesters.ts';
import { AT_LEAST, eventBusName, int, VARIABLES as V, writeEnvironment } from '#runtime/environment.ts';
import { CALL_MARGIN_MS, CALLS_TO_START, defaultCreateSettleSeconds } from '#runtime/timing.ts';

/**
 * The deployment settings, each optional with its default. Stack props or CDK context (cdk.json
 * or `-c`) set them; `resolveSettings` checks them against SettingsSchema.
 */
export interface SettingsInput {
  /** Atlas base URL when the profile secret has no BaseUrl: https, or http to a loopback host. @default 'https://cloud.mongodb.com' */
  readonly atlasBaseUrl?: string;
  /** Atlas resource version sent in the media type. @default '2024-11-13' */
  readonly atlasApiVersion?: string;
  /** Timeout of one Atlas HTTP request, ms. @default 10000 */
  readonly atlasTimeoutMs?: number;
  /** Secret name prefix; a profile's secret is prefix + profile. @default 'cfn/atlas/profile/' */
  readonly secretPrefix?: string;
  /** Profiles requests may name; the function may read exactly these secrets. @default ['default'] */
  readonly allowedProfiles?: string[];
  /** How long a read secret is trusted before it is read again, s. @default 300 */
  readonly secretMaxAgeSeconds?: number;
  /** Attempts of the provisioner before a retryable failure goes to the DLQ. @default 5 */
  readonly maxAttempts?: number;
  /** Exponential backoff with full jitter: its base, s. @default 2 */
  readonly backoffBaseSeconds?: number;
  /** Exponential backoff with full jitter: its cap, s. @default 900 */
  readonly backoffCapSeconds?: number;
  /** SQS batch size of the provisioner's event source. @default 10 */
  readonly batchSize?: number;
  /** Most concurrent provisioner invocations (event source maxConcurrency, 2-1000). @default 5 */
  readonly maxConcurrency?: number;
  /** Records of one batch processed at once. @default 10 */
  readonly recordConcurrency?: number;
  /**
   * Seconds after a create whose outcome is unknown (timeout, reset, 5xx) before a listing decides
   * whether it was done; no create is sent for the key before then.
   * @default 3 x atlasTimeoutMs, at least 10
   */
  readonly createSettleSeconds?: number;
  /** FAILED endpoints of one key deleted and created anew; the next one sends the request to the DLQ. @default 3 */
  readonly maxEndpointFailures?: number;
  /**
   * Seconds after a create, an adoption of an endpoint in progress or a delete before its key is
   * first looked at again (one GET); each next follow-up comes twice as late. @default 10
   */
  readonly followUpFirstSeconds?: number;
  /**
   * Longest spacing of follow-ups, s (at most SQS's 900 s message delay): how late at worst a
   * requester hears a status Atlas reached, and the GETs an endpoint in progress costs (one per
   * this many seconds). @default 30
   */
  readonly followUpMaxSeconds?: number;
  /** Provisioner timeout, s. @default 60 */
  readonly provisionTimeoutSeconds?: number;
  /** Status checker period, minutes. @default 5 */
  readonly scheduleRateMinutes?: number;
  /** Status checker timeout, s. @default 120 */
  readonly checkTimeoutSeconds?: number;
  /** Projects the status checker checks at once (one Atlas listing each). @default 4 */
  readonly projectConcurrency?: number;
  /** Minutes in PENDING_ACCEPTANCE before an endpoint is reported stuck. @default 1440 */
  readonly pendingAcceptanceDeadlineMinutes?: number;
  /** Minutes in an in-progress status before an endpoint is reported stuck. @default 60 */
  readonly inProgressDeadlineMinutes?: number;
  /** Alarm when the oldest request waits longer than this, s. @default 900 */
  readonly oldestRequestAgeAlarmSeconds?: number;
  /** SNS topic ARN that alarms notify. @default - none: alarms notify nobody */
  readonly alarmTopicArn?: string;
  /** Event bus status events go to. @default 'default' (the account's default bus) */
  readonly eventBusName?: string;
  /** Source of the status events. @default 'atlas.backup-private-endpoints' */
  readonly eventSource?: string;
  /** AWS accounts whose principals may send requests to the request queue (and put them on the front door bus). @default [] */
  readonly requesterAccounts?: string[];
  /** An AWS Organizations id whose principals may send requests, like requesterAccounts. @default - none */
  readonly requesterOrganizationId?: string;
  /** Bus of the EventBridge front door: a rule there turns request events into queued requests. @default - none: no front door */
  readonly requestEventBusName?: string;
  /** Sources the front door accepts: exact, or a prefix ending in `*`. Required with requestEventBusName. @default [] */
  readonly requestEventSources?: string[];
  /** Log retention of both functions, days (a value CloudWatch Logs accepts). @default 30 */
  readonly logRetentionDays?: number;
}

/** The settings' checks and defaults; each setting is documented on SettingsInput. */
export const SettingsSchema = z.strictObject({
  atlasBaseUrl: z._default(V.atlasBaseUrl.schema, DEFAULT_BASE_URL),
  atlasApiVersion: z._default(V.atlasApiVersion.schema, DEFAULT_API_VERSION),
  atlasTimeoutMs: z._default(V.atlasTimeoutMs.schema, 10_000),
  secretPrefix: z._default(V.secretPrefix.schema, 'cfn/atlas/profile/'),
  allowedProfiles: z._default(V.allowedProfiles.schema, ['default']),
  secretMaxAgeSeconds: z._default(V.secretMaxAgeSeconds.schema, 300),
  maxAttempts: z._default(V.maxAttempts.schema, 5),
  backoffBaseSeconds: z._default(V.backoffBaseSeconds.schema, 2),
  backoffCapSeconds: z._default(V.backoffCapSeconds.schema, 900),
  batchSize: z._default(int(1, 100), 10),
  maxConcurrency: z._default(int(2, 1000), 5),
  recordConcurrency: z._default(V.recordConcurrency.schema, 10),
  createSettleSeconds: z.optional(V.createSettleSeconds.schema),
  maxEndpointFailures: z._default(V.maxEndpointFailures.schema, 3),
  followUpFirstSeconds: z._default(V.followUpFirstSeconds.schema, 10),
  followUpMaxSeconds: z._default(V.followUpMaxSeconds.schema, 30),
  provisionTimeoutSeconds: z._default(int(10, 900), 60),
  scheduleRateMinutes: z._default(int(1, 1440), 5),
  checkTimeoutSeconds: z._default(int(10, 900), 120),
  projectConcurrency: z._default(V.projectConcurrency.schema, 4),
  pendingAcceptanceDeadlineMinutes: z._default(V.pendingAcceptanceDeadlineMinutes.schema, 1_440),
  inProgressDeadlineMinutes: z._default(V.inProgressDeadlineMinutes.schema, 60),
  oldestRequestAgeAlarmSeconds: z._default(int(60, 1_209_600), 900),
  alarmTopicArn: z.optional(
    z
      .string()
      .check(
        z.regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/, 'must be an SNS topic ARN'),
      ),
  ),
  eventBusName: z._default(V.eventBusName.schema, 'default'),
  eventSource: z._default(V.eventSource.schema, 'atlas.backup-private-endpoints'),
  requesterAccounts: z._default(
    z.array(z.string().check(z.regex(/^\d{12}$/, 'each account must be a 12-digit AWS account id'))),
    [],
  ),
  requesterOrganizationId: z.optional(
    z.string().check(z.regex(/^o-[a-z0-9]{10,32}$/, 'must be an AWS Organizations id such as o-a1b2c3d4e5')),
  ),
  requestEventBusName: z.optional(eventBusName),
  requestEventSources: z._default(
    z.array(
      z.string().check(z.regex(/^[^*]{1,256}\*?$/, 'each source must be a name, or a prefix ending in *')),
    ),
    [],
  ),
  logRetentionDays: z._default(int(1, 3653), 30),
});

/** Settings with no default: unset, each leaves its feature out. */
type Unset = 'alarmTopicArn' | 'requesterOrganizationId' | 'requestEventBusName';
/** The settings in force: every default applied (createSettleSeconds derived when not given). */
export type Settings = Required<Omit<SettingsInput, Unset>> & Pick<SettingsInput, Unset>;

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

/**
 * Validates settings and derived rules; the error names each setting and the value given. Numbers
 * may come as text, as CDK context (`-c name=value`) passes them.
 */
export function resolveSettings(input: z.input<typeof SettingsSchema> = {}): Settings {
  const result = SettingsSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((i) => {
      const name = i.path.join('.') || '(settings)';
      const given = i.path.reduce<unknown>((v, k) => (v as Record<PropertyKey, unknown>)?.[k], input);
      return `${name}: ${i.message} (given ${JSON.stringify(given)})`;
    });
    throw new SettingsError(`invalid settings: ${problems.join('; ')}`);
  }
  const s = {
    ...result.data,
    createSettleSeconds:
      result.data.createSettleSeconds ?? defaultCreateSettleSeconds(result.data.atlasTimeoutMs),
  };
  const problems: string[] = [];
  for (const { option, floor } of AT_LEAST) {
    if (s[option] < s[floor])
      problems.push(`${option} (${s[option]}) must be at least ${floor} (${s[floor]})`);
  }
  // A record starts only with time for its clean path (list, create) and the writes after it.
  const neededMs = CALLS_TO_START * s.atlasTimeoutMs + CALL_MARGIN_MS;
  if (s.provisionTimeoutSeconds * 1000 < neededMs + 1000) {
    problems.push(
      `provisionTimeoutSeconds (${s.provisionTimeoutSeconds}) leaves no time to start a record: it needs more than ${CALLS_TO_START} x atlasTimeoutMs (${s.atlasTimeoutMs}) + ${CALL_MARGIN_MS} ms, so at least ${Math.ceil((neededMs + 1000) / 1000)} s`,
    );
  }
  if (s.createSettleSeconds * 1000 < s.atlasTimeoutMs) {
    problems.push(
      `createSettleSeconds (${s.createSettleSeconds}) must be at least atlasTimeoutMs (${s.atlasTimeoutMs}) in seconds: a shorter settle period lists before a create still in flight could land`,
    );
  }
  if (s.checkTimeoutSeconds * 1000 < 2 * s.atlasTimeoutMs) {
    problems.push(
      `checkTimeoutSeconds (${s.checkTimeoutSeconds}) must be at least 2 x atlasTimeoutMs (${s.atlasTimeoutMs}): the checker could not finish one listing`,
    );
  }
  if (problems.length > 0) throw new SettingsError(`invalid settings: ${problems.join('; ')}`);
  checkFrontDoor(s);
  return s;
}

/** A front door accepts requests from named sources only. */
function checkFrontDoor(s: Settings): void {
  if (s.requestEventBusName !== undefined && s.requestEventSources.length === 0) {
    throw new SettingsError(
      `invalid settings: requestEventSources: name at least one source when requestEventBusName is set (given ${JSON.stringify(s.requestEventBusName)})`,
    );
  }
  if (s.requestEventBusName === undefined && s.requestEventSources.length > 0) {
    throw new SettingsError(
      `invalid settings: requestEventSources: needs requestEventBusName, the bus of the front door (given ${JSON.stringify(s.requestEventSources)})`,
    );
  }
}

/** The redrive safety net sits above the function's own attempt budget. */
export const maxReceiveCount = (s: Settings) => s.maxAttempts + 3;
/** AWS asks for a queue visibility timeout of at least 6 times the function timeout. */
export const visibilityTimeoutSeconds = (s: Settings) => s.provisionTimeoutSeconds * 6;
/** A worker's lease on a key outlives any invocation that could hold it. */
export const leaseSeconds = (s: Settings) => s.provisionTimeoutSeconds * 2;

/** The checker stops starting projects when this much of its run is left: a quarter of it, at most 10 s. */
export const safetyMarginMs = (s: Settings) => Math.min(10_000, s.checkTimeoutSeconds * 250);

/** The resources both functions are pointed at, by their option names (CDK tokens in the stack). */
export interface FunctionResources {
  ledgerTableName: string;
  /** The private queue of waits, follow-ups and hand-backs: only the two functions may send to it. */
  continuationQueueUrl: string;
}

/** What the provisioner is pointed at besides: the requesters with their queues, the continuation queue's ARN. */
export interface ProvisionResources extends FunctionResources {
  continuationQueueArn: string;
  rejectedQueueUrl: string;
  requesters: RequesterEntry[];
}

/** Environment of the provisioning function, written by the contract (functions/lib/runtime/environment.ts). */
export function provisionEnvironment(s: Settings, resources: ProvisionResources): Record<string, string> {
  return writeEnvironment('provision', { ...s, ...resources, leaseSeconds: leaseSeconds(s) });
}

/** Environment of the status checker, written by the contract. */
export function checkStatusEnvironment(s: Settings, resources: FunctionResources): Record<string, string> {
  return writeEnvironment('checkStatus', { ...s, ...resources, safetyMarginMs: safetyMarginMs(s) });
}
