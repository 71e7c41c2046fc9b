/**
 * The configured requesters (settings `requesters`): each one's request queue and dead-letter
 * queue under `Requesters/<name>`, a queue policy that admits only its senders, its front door
 * rule (events of its frontDoorAccounts only) and the rule that forwards its status events to a
 * bus of its own. A record's requester is the queue it arrived on, so nothing a sender writes
 * names it (functions/lib/messages/requesters.ts).
 */
import { Names, Stack } from 'aws-cdk-lib';
import {
  CfnEventBusPolicy,
  type CfnRule,
  EventBus,
  type EventPattern,
  type IEventBus,
  Rule,
  RuleTargetInput,
} from 'aws-cdk-lib/aws-events';
import { EventBus as EventBusTarget, SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { AccountPrincipal, ArnPrincipal, type IPrincipal, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IQueue, Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { Requester } from '#infra/settings.ts';
import {
  REQUEST_EVENT_INPUT_PATH,
  REQUESTED_DETAIL_TYPE,
  requestEventPattern,
} from '#messages/front-door.ts';
import type { RequesterEntry } from '#messages/requesters.ts';
import { type RequesterQueuePair, type RequestQueuesProps, requesterQueuePair } from './queues.ts';

/** A 12-digit account id: every principal of that account; anything else is a role or user ARN. */
export const senderPrincipal = (sender: string): IPrincipal =>
  /^\d{12}$/.test(sender) ? new AccountPrincipal(sender) : new ArnPrincipal(sender);

/** One configured requester's resources. */
export class RequesterResources extends Construct {
  readonly requester: Requester;
  /** Its request queue: a record from it is this requester's. */
  readonly queue: Queue;
  /** Where its requests are parked for an operator; replayed into its own queue. */
  readonly deadLetterQueue: Queue;
  readonly #pair: RequesterQueuePair;
  /** The front door rule for its frontDoorAccounts' request events, when it has any. */
  frontDoor?: Rule;
  /** The rule that forwards its status events to statusEventBusArn, when it has one. */
  statusForwarding?: Rule;

  constructor(scope: Construct, requester: Requester, props: RequestQueuesProps) {
    super(scope, requester.name);
    this.requester = requester;
    this.#pair = requesterQueuePair(this, {
      ...props,
      ids: { queue: 'Queue', deadLetterQueue: 'DeadLetterQueue' },
      named: true,
    });
    ({ queue: this.queue, deadLetterQueue: this.deadLetterQueue } = this.#pair);
    if (requester.senders.length > 0) {
      // SendMessage, and GetQueueUrl to find the queue by name. TLS is enforced for them too, by
      // the queue's enforceSSL deny statement.
      this.queue.addToResourcePolicy(
        new PolicyStatement({
          sid: 'SendersSend',
          principals: requester.senders.map(senderPrincipal),
          actions: ['sqs:SendMessage', 'sqs:GetQueueUrl'],
          resources: [this.queue.queueArn],
        }),
      );
    }
  }

  /** Its entry in the provisioner's REQUESTERS: its grant and its queues. */
  get entry(): RequesterEntry {
    const { name, projects, profiles, actions, operator } = this.requester;
    return {
      name,
      queueArn: this.#pair.queueArn,
      queueUrl: this.#pair.queueUrl,
      dlqUrl: this.#pair.dlqUrl,
      projects,
      profiles,
      actions,
      ...(operator !== undefined && { operator }),
    };
  }
}

export interface RequestersProps extends RequestQueuesProps {
  readonly requesters: readonly Requester[];
}

export class Requesters extends Construct {
  readonly all: readonly RequesterResources[];

  constructor(scope: Construct, id: string, props: RequestersProps) {
    super(scope, id);
    const { requesters, ...queueProps } = props;
    this.all = requesters.map((r) => new RequesterResources(this, r, queueProps));
  }

  /** The named requester; throws naming the configured ones when there is none of that name. */
  get(name: string): RequesterResources {
    const found = this.all.find((r) => r.requester.name === name);
    if (found === undefined) {
      throw new Error(
        `no requester "${name}": the requesters are ${this.all.map((r) => `"${r.requester.name}"`).join(', ')}`,
      );
    }
    return found;
  }

  /**
   * The front door: on the named bus, one rule per requester with frontDoorAccounts sends the
   * detail of each request event from those accounts (EventBridge sets `account`; the sender
   * cannot) to that requester's queue. The bus admits request events from those accounts only.
   */
  addFrontDoor(busName: string, sources: readonly string[], deadLetterQueue: IQueue): void {
    const bus = EventBus.fromEventBusName(this, 'RequestEventBus', busName);
    const accounts: string[] = [];
    for (const r of this.all) {
      if (r.requester.frontDoorAccounts.length === 0) continue;
      accounts.push(...r.requester.frontDoorAccounts);
      r.frontDoor = frontDoorRule(r, 'FrontDoor', {
        bus,
        description: `Turns "${REQUESTED_DETAIL_TYPE}" events of requester ${r.requester.name}'s accounts into its requests`,
        pattern: { ...requestEventPattern(sources), account: [...r.requester.frontDoorAccounts] },
        queue: r.queue,
        deadLetterQueue,
      });
    }
    new CfnEventBusPolicy(this, 'FrontDoorAccounts', {
      eventBusName: busName,
      // Unique per construct, so two deployments can share a bus.
      statementId: Names.uniqueResourceName(this, { maxLength: 64, separator: '-' }),
      statement: {
        Effect: 'Allow',
        Principal: {
          AWS: [...new Set(accounts)]
            .sort()
            .map((account) =>
              Stack.of(this).formatArn({ service: 'iam', region: '', account, resource: 'root' }),
            ),
        },
        Action: 'events:PutEvents',
        Resource: bus.eventBusArn,
        // Request events only, from the accepted sources (`*` ends a prefix in both places).
        Condition: {
          StringEquals: { 'events:detail-type': REQUESTED_DETAIL_TYPE },
          StringLike: { 'events:source': [...sources] },
        },
      },
    });
  }

  /** For each requester with statusEventBusArn, a rule on the status bus that forwards its status events there. */
  forwardStatusEvents(statusBus: IEventBus, pattern: (requester: string) => EventPattern): void {
    for (const r of this.all) {
      const arn = r.requester.statusEventBusArn;
      if (arn === undefined) continue;
      r.statusForwarding = new Rule(r, 'StatusEvents', {
        eventBus: statusBus,
        description: `Forwards requester ${r.requester.name}'s status events to its own bus`,
        eventPattern: pattern(r.requester.name),
        targets: [new EventBusTarget(EventBus.fromEventBusArn(r, 'StatusEventBus', arn))],
      });
    }
  }
}

export interface FrontDoorRuleProps {
  readonly bus: IEventBus;
  readonly description: string;
  /** The pattern as front-door.ts defines it, with the accounts that may use this rule. */
  readonly pattern: Record<string, unknown>;
  readonly queue: IQueue;
  readonly deadLetterQueue: IQueue;
}

/**
 * A front door rule: the detail of each matching request event goes to `queue` (the target adds
 * the queue policy statement for this rule only), what EventBridge cannot deliver to the DLQ.
 */
export function frontDoorRule(scope: Construct, id: string, props: FrontDoorRuleProps): Rule {
  const rule = new Rule(scope, id, {
    eventBus: props.bus,
    description: props.description,
    eventPattern: { detailType: [REQUESTED_DETAIL_TYPE] },
    targets: [
      new SqsQueue(props.queue, {
        message: RuleTargetInput.fromEventPath(REQUEST_EVENT_INPUT_PATH),
        deadLetterQueue: props.deadLetterQueue,
      }),
    ],
  });
  // The pattern as front-door.ts defines it, so the local run and the stack share one definition.
  (rule.node.defaultChild as CfnRule).addPropertyOverride('EventPattern', props.pattern);
  return rule;
}
