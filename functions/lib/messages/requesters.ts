/**
 * Who may ask for what. A requester is named in the settings with the channel it sends on and its
 * grant; the stack gives each one a request queue of its own (and a dead-letter queue of its own)
 * whose policy admits only its principals, and writes this registry into the provisioner's
 * environment. A record's requester is the queue it arrived on (`eventSourceARN`, set by SQS), or,
 * on the provisioner's private continuation queue, the `Requester` attribute that only the
 * functions can write there. Nothing a sender writes (body, attribute, session name) names it.
 *
 * Dependency-free apart from zod/mini: `cdk synth` imports it to validate the settings.
 */
import * as z from '#lib/zod.ts';

/** The requester of a deployment with no requesters configured: its own queue, every project and profile. */
export const DEFAULT_REQUESTER = 'default';

export const ACTIONS = ['create', 'delete'] as const;
export type Action = (typeof ACTIONS)[number];

/** Every project the requester's profiles reach: said explicitly, never implied by an empty list. */
export const ALL_PROJECTS = 'ALL';

export const REQUESTER_NAME = /^[a-z][a-z0-9-]{0,31}$/;

export const requesterName = z
  .string()
  .check(z.regex(REQUESTER_NAME, 'must be 1-32 of a-z 0-9 -, starting with a letter'));

const groupId = z
  .string()
  .check(z.regex(/^[a-f0-9]{24}$/, 'must be a 24-character lowercase hex Atlas project id'));

/** What a requester may ask for. */
export const RequesterGrantSchema = z.object({
  /** Atlas project ids (groupIds), or ALL_PROJECTS: every project its profiles reach. */
  projects: z.union([
    z.literal(ALL_PROJECTS),
    z.array(groupId).check(z.minLength(1, `must name at least one project, or be "${ALL_PROJECTS}"`)),
  ]),
  /** Credentials profiles it may name (each one of the deployment's allowedProfiles). */
  profiles: z.array(z.string().check(z.minLength(1))).check(z.minLength(1, 'must name at least one profile')),
  /** Actions it may ask for. */
  actions: z.array(z.enum(ACTIONS)).check(z.minLength(1, 'must name at least one action')),
  /** An operator's delete removes the endpoint whatever other requesters hold it (a forced delete). */
  operator: z.optional(z.boolean()),
});
/** What a requester may ask for (the schema above is held to it). */
export interface RequesterGrant {
  projects: string[] | typeof ALL_PROJECTS;
  profiles: string[];
  actions: Action[];
  operator?: boolean | undefined;
}

/** A requester as the provisioner's environment gives it: its grant and its queues. */
export const RequesterEntrySchema = z.extend(RequesterGrantSchema, {
  name: requesterName,
  /** The requester's own request queue: a record from it is this requester's. */
  queueArn: z.string().check(z.minLength(1)),
  queueUrl: z.string().check(z.minLength(1)),
  /** Where this requester's requests are parked for an operator; replayed into its own queue. */
  dlqUrl: z.string().check(z.minLength(1)),
});
/** A requester as the provisioner's environment gives it (the schema above is held to it). */
export interface RequesterEntry extends RequesterGrant {
  name: string;
  queueArn: string;
  queueUrl: string;
  dlqUrl: string;
}
/** True when A and B are the same type: a schema held to the interface it documents. */
export type Exactly<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const entryMatches: Exactly<z.output<typeof RequesterEntrySchema>, RequesterEntry> = true;
void entryMatches;

export const RequesterRegistrySchema = z
  .array(RequesterEntrySchema)
  .check(z.minLength(1, 'must name at least one requester'));

/** What a request asks for, as far as a grant decides. */
export interface Ask {
  readonly action: Action;
  readonly groupId: string;
  readonly profile: string;
}

/**
 * What the requester's grant lacks for this request, as a reason naming the requester; undefined
 * when the grant allows it.
 */
export function grantProblem(
  requester: Pick<RequesterEntry, 'name'> & RequesterGrant,
  ask: Ask,
): string | undefined {
  const lacks: string[] = [];
  if (!requester.actions.includes(ask.action)) lacks.push(`action "${ask.action}"`);
  if (requester.projects !== ALL_PROJECTS && !requester.projects.includes(ask.groupId))
    lacks.push(`project ${ask.groupId}`);
  if (!requester.profiles.includes(ask.profile)) lacks.push(`profile "${ask.profile}"`);
  if (lacks.length === 0) return undefined;
  return `requester "${requester.name}" is not granted ${lacks.join(', ')}`;
}

/** The registry: a record's requester from the queue it came from, or by name for continuations. */
export class Requesters {
  readonly #byQueue: ReadonlyMap<string, RequesterEntry>;
  readonly #byName: ReadonlyMap<string, RequesterEntry>;

  constructor(entries: readonly RequesterEntry[]) {
    this.#byQueue = new Map(entries.map((e) => [e.queueArn, e]));
    this.#byName = new Map(entries.map((e) => [e.name, e]));
  }

  /** The requester whose queue this is; undefined for any other queue. */
  byQueue(queueArn: string | undefined): RequesterEntry | undefined {
    return queueArn === undefined ? undefined : this.#byQueue.get(queueArn);
  }

  byName(name: string | undefined): RequesterEntry | undefined {
    return name === undefined ? undefined : this.#byName.get(name);
  }

  get all(): RequesterEntry[] {
    return [...this.#byName.values()];
  }
}
