/**
 * Deployment settings: one typed, validated set shared by the CDK stack and the local runner,
 * so a laptop run behaves like the deployment. Each field's default is documented here and in
 * the README ("Configuration"). Set them as stack props or as CDK context (`cdk.json` or `-c`).
 * A setting the functions read takes its checks from their environment contract
 * (functions/lib/runtime/environment.ts), which also writes their environment from these settings.
 */

import { DEFAULT_API_VERSION, DEFAULT_BASE_URL } from '#atlas/types.ts';
import * as z from '#lib/zod.ts';
import {
  type Action,
  type ALL_PROJECTS,
  type Exactly,
  type RequesterEntry,
  RequesterGrantSchema,
  requesterName,
} from '#messages/requesters.ts';
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
  /**
   * Who may ask for what: each requester gets a request queue and a dead-letter queue of its own,
   * whose policy admits only its `senders`, and its grant is written into the provisioner's
   * environment. Without requesters, the construct's own request queue is the queue of one
   * requester named `default` that may ask for anything (every project, allowedProfiles,
   * create and delete), sent by principals of this account only.
   * @default - none: the one `default` requester
   */
  readonly requesters?: RequesterInput[];
  /**
   * Refused: synth fails and says to name requesters instead. It let every principal of those
   * accounts ask for any project.
   * @deprecated use `requesters` with `senders: ['<account id>']`
   */
  readonly requesterAccounts?: string[];
  /**
   * Refused: synth fails and says to name requesters instead. It let every principal of an
   * organization ask for any project.
   * @deprecated use `requesters`, one per sending account or role
   */
  readonly requesterOrganizationId?: string;
  /** Bus of the EventBridge front door: a rule there turns request events into queued requests. @default - none: no front door */
  readonly requestEventBusName?: string;
  /** Sources the front door accepts: exact, or a prefix ending in `*`. Required with requestEventBusName. @default [] */
  readonly requestEventSources?: string[];
  /** Log retention of both functions, days (a value CloudWatch Logs accepts). @default 30 */
  readonly logRetentionDays?: number;
}

/** One requester (`requesters` setting): who sends as it, and what it may ask for. */
export interface RequesterInput {
  /** Its name: 1-32 of a-z 0-9 -, starting with a letter; unique among the requesters. */
  readonly name: string;
  /**
   * Who may send to its request queue: 12-digit account ids (every principal of that account the
   * account's own IAM lets) or IAM role/user ARNs (`arn:aws:iam::<account>:role/...`).
   * @default [] - at least one of senders and frontDoorAccounts is needed
   */
  readonly senders?: string[];
  /**
   * Accounts whose request events on the front door bus (requestEventBusName) act as this
   * requester: EventBridge sets an event's `account`, the sender cannot. An account belongs to
   * one requester's front door at most.
   * @default [] - none
   */
  readonly frontDoorAccounts?: string[];
  /** Atlas project ids (groupIds) it may ask for, or 'ALL': every project its profiles reach. */
  readonly projects: typeof ALL_PROJECTS | string[];
  /** Credentials profiles it may name, each one of allowedProfiles. */
  readonly profiles: string[];
  /** What it may ask for: 'create', 'delete'. */
  readonly actions: Action[];
  /** Its delete removes an endpoint whatever other requesters hold it (needs action 'delete'). @default false */
  readonly operator?: boolean;
  /**
   * The requester's own event bus (an ARN, usually in its own account) that receives its status
   * events; that bus's policy must let this deployment's account put events.
   * @default - none: it reads them from the status bus with a rule of this deployment's account
   */
  readonly statusEventBusArn?: string;
}

const accountId = z.string().check(z.regex(/^\d{12}$/, 'each account must be a 12-digit AWS account id'));

/** An account id, or the ARN of an IAM role or user (a path allowed). */
const sender = z
  .string()
  .check(
    z.regex(
      /^(\d{12}|arn:aws[a-z-]*:iam::\d{12}:(role|user)\/[\w+=,.@/-]{1,512})$/,
      'each sender must be a 12-digit AWS account id or an IAM role or user ARN',
    ),
  );

const RequesterSchema = z.strictObject({
  name: requesterName,
  senders: z._default(z.array(sender), []),
  frontDoorAccounts: z._default(z.array(accountId), []),
  ...RequesterGrantSchema.shape,
  statusEventBusArn: z.optional(
    z
      .string()
      .check(
        z.regex(
          /^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/[A-Za-z0-9._/-]{1,256}$/,
          'must be an event bus ARN (arn:aws:events:<region>:<account>:event-bus/<name>)',
        ),
      ),
  ),
});
/**
 * One requester as resolved: RequesterInput with its defaults applied. A plain interface, so the
 * published declarations carry no zod types; the schema is held to it below.
 */
export interface Requester extends Omit<RequesterInput, 'senders' | 'frontDoorAccounts'> {
  readonly senders: string[];
  readonly frontDoorAccounts: string[];
}
/** The schema's output is exactly Requester (a compile error otherwise). */
const requesterMatches: Exactly<z.output<typeof RequesterSchema>, Requester> = true;
void requesterMatches;

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
  requesters: z.optional(
    z.array(RequesterSchema).check(z.minLength(1, 'name at least one requester, or leave requesters out')),
  ),
  // Refused with a message saying what to write instead (checkRefused); any value is refused.
  requesterAccounts: z.optional(z.unknown()),
  requesterOrganizationId: z.optional(z.unknown()),
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
type Unset = 'alarmTopicArn' | 'requestEventBusName';
/** Settings only refused now: never in force. */
type Refused = 'requesterAccounts' | 'requesterOrganizationId';
/**
 * The settings in force: every default applied (createSettleSeconds derived when not given);
 * `requesters` undefined means the one default requester.
 */
export type Settings = Required<Omit<SettingsInput, Unset | Refused | 'requesters'>> &
  Pick<SettingsInput, Unset> & { readonly requesters?: Requester[] };

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
  checkRefused(input);
  const result = SettingsSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((i) => {
      const given = i.path.reduce<unknown>((v, k) => (v as Record<PropertyKey, unknown>)?.[k], input);
      return `${settingName(input, i.path)}: ${i.message} (given ${JSON.stringify(given)})`;
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
  // A record starts only with time for its clean path (list, create) and the writes after it, and a
  // batch's records start recordConcurrency at a time: the last round starts only after the rounds
  // before it, each of which may take a whole clean path. A batch that cannot all start in one
  // invocation sends records back to wait every time, so its settings are refused here.
  const recordMs = CALLS_TO_START * s.atlasTimeoutMs + CALL_MARGIN_MS;
  const rounds = Math.ceil(s.batchSize / s.recordConcurrency);
  const neededMs = rounds * recordMs + 1000;
  if (s.provisionTimeoutSeconds * 1000 < neededMs) {
    problems.push(
      `provisionTimeoutSeconds (${s.provisionTimeoutSeconds}) cannot fit a batch: batchSize (${s.batchSize}) at recordConcurrency (${s.recordConcurrency}) is ${rounds} round(s) of records, each needing ${CALLS_TO_START} x atlasTimeoutMs (${s.atlasTimeoutMs}) + ${CALL_MARGIN_MS} ms to start, so at least ${Math.ceil(neededMs / 1000)} s (or a smaller batchSize, a larger recordConcurrency, a shorter atlasTimeoutMs)`,
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
  checkRequesters(s);
  return s;
}

/**
 * A setting's name as the reader wrote it: `requesters[1] "team-b": profiles.0` for a requester's
 * field, its name and index both, else the path dotted.
 */
function settingName(input: unknown, path: readonly PropertyKey[]): string {
  if (path[0] === 'requesters' && typeof path[1] === 'number') {
    const name = (input as { requesters?: { name?: unknown }[] }).requesters?.[path[1]]?.name;
    const rest = path.slice(2).map(String).join('.');
    return `${requesterLabel(path[1], name)}${rest ? `: ${rest}` : ''}`;
  }
  return path.map(String).join('.') || '(settings)';
}

const requesterLabel = (index: number, name: unknown) =>
  `requesters[${index}]${typeof name === 'string' ? ` ${JSON.stringify(name)}` : ''}`;

/** The settings that admitted every principal of an account or organization: refused, with what to write instead. */
function checkRefused(input: Record<string, unknown>): void {
  const problems: string[] = [];
  if (input.requesterAccounts !== undefined) {
    problems.push(
      `requesterAccounts: no longer accepted: it let every principal of those accounts ask for any project; name each requester instead: requesters: [{ name, senders: ['111111111111'], projects, profiles, actions }] (given ${JSON.stringify(input.requesterAccounts)})`,
    );
  }
  if (input.requesterOrganizationId !== undefined) {
    problems.push(
      `requesterOrganizationId: no longer accepted: it let every principal of the organization ask for any project; name each requester instead, with the accounts or roles that send as it: requesters: [{ name, senders: ['111111111111' or 'arn:aws:iam::111111111111:role/name'], projects, profiles, actions }] (given ${JSON.stringify(input.requesterOrganizationId)})`,
    );
  }
  if (problems.length > 0) throw new SettingsError(`invalid settings: ${problems.join('; ')}`);
}

/** Each requester: a unique name, a channel, a grant within the deployment's profiles. */
function checkRequesters(s: Settings): void {
  if (s.requesters === undefined) return;
  const problems: string[] = [];
  const frontDoorOwner = new Map<string, string>();
  const seen = new Set<string>();
  s.requesters.forEach((r, index) => {
    const at = requesterLabel(index, r.name);
    if (seen.has(r.name)) problems.push(`${at}: name: another requester has this name`);
    seen.add(r.name);
    if (r.senders.length === 0 && r.frontDoorAccounts.length === 0) {
      problems.push(`${at}: senders: name at least one sender, or frontDoorAccounts: it has no way to send`);
    }
    if (r.frontDoorAccounts.length > 0 && s.requestEventBusName === undefined) {
      problems.push(`${at}: frontDoorAccounts: needs requestEventBusName, the bus of the front door`);
    }
    for (const account of r.frontDoorAccounts) {
      const owner = frontDoorOwner.get(account);
      if (owner !== undefined && owner !== r.name) {
        problems.push(
          `${at}: frontDoorAccounts: ${account} is also requester "${owner}"'s: a request event from it could not tell which requester it is`,
        );
      }
      frontDoorOwner.set(account, r.name);
    }
    for (const profile of r.profiles) {
      if (!s.allowedProfiles.includes(profile))
        problems.push(`${at}: profiles: "${profile}" is not in allowedProfiles`);
    }
    if (r.operator === true && !r.actions.includes('delete')) {
      problems.push(`${at}: operator: needs action "delete": an operator's grant is its forced delete`);
    }
  });
  if (s.requestEventBusName !== undefined && frontDoorOwner.size === 0) {
    problems.push(
      `requestEventBusName: with requesters, the front door takes request events only from a requester's frontDoorAccounts, and no requester names any (given ${JSON.stringify(s.requestEventBusName)})`,
    );
  }
  if (problems.length > 0) throw new SettingsError(`invalid settings: ${problems.join('; ')}`);
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
  const { requesters, ...rest } = resources;
  return writeEnvironment('provision', {
    ...s,
    ...rest,
    requesterRegistry: requesters,
    leaseSeconds: leaseSeconds(s),
  });
}

/** Environment of the status checker, written by the contract. */
export function checkStatusEnvironment(s: Settings, resources: FunctionResources): Record<string, string> {
  return writeEnvironment('checkStatus', { ...s, ...resources, safetyMarginMs: safetyMarginMs(s) });
}
