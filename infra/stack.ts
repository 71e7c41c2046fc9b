/**
 * The provisioner's stack: the `AtlasBackupPrivateEndpoints` construct and the outputs the
 * operator CLIs in infra/ops read. An existing CDK app adds the construct to a stack of its own.
 */
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import type { Settings, SettingsInput } from '#infra/settings.ts';
import { AtlasBackupPrivateEndpoints } from './atlas-backup-private-endpoints.ts';
import type { AppFunction } from './constructs/function.ts';
import type { LedgerTable } from './constructs/ledger.ts';
import type { Monitoring } from './constructs/monitoring.ts';
import type { RequestQueues } from './constructs/queues.ts';
import { REQUESTERS_OUTPUT, type RequesterOutput, STACK_OUTPUTS, type StackResource } from './names.ts';

export interface AtlasBackupPrivateEndpointsStackProps extends StackProps {
  /**
   * Deployment settings (infra/settings.ts documents each one and its default). Validated when
   * the stack is built: an invalid value fails synth with a message naming it.
   * @default - every setting at its default
   */
  readonly settings?: SettingsInput;
}

export class AtlasBackupPrivateEndpointsStack extends Stack {
  readonly provisioning: AtlasBackupPrivateEndpoints;
  readonly settings: Settings;
  readonly queues: RequestQueues;
  readonly ledger: LedgerTable;
  readonly provisioner: AppFunction;
  readonly statusChecker: AppFunction;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: AtlasBackupPrivateEndpointsStackProps = {}) {
    super(scope, id, {
      description: 'Provisions MongoDB Atlas backup private endpoints from SQS requests',
      ...props,
    });
    // The id "Default" keeps the construct out of logical ids: resources keep those they had
    // when they belonged to the stack itself, so an update does not replace the ledger table.
    this.provisioning = new AtlasBackupPrivateEndpoints(this, 'Default', props.settings);
    const p = this.provisioning;
    ({
      settings: this.settings,
      queues: this.queues,
      ledger: this.ledger,
      provisioner: this.provisioner,
      statusChecker: this.statusChecker,
      monitoring: this.monitoring,
    } = p);
    const s = this.settings;

    const defaultRequester = (queue: () => IQueue, value: (q: IQueue) => string, description: string) =>
      p.requesters === undefined ? ([value(queue()), description] as [string, string]) : undefined;
    const outputs: Record<StackResource, [string, string] | undefined> = {
      // The default requester's queues; with requesters, the Requesters output names each one's.
      requestQueueUrl: defaultRequester(
        () => p.requestQueue,
        (q) => q.queueUrl,
        'Send provisioning requests here',
      ),
      requestQueueArn: defaultRequester(
        () => p.requestQueue,
        (q) => q.queueArn,
        'Destination of DLQ replays',
      ),
      dlqUrl: defaultRequester(
        () => p.deadLetterQueue,
        (q) => q.queueUrl,
        'Requests that need an operator',
      ),
      dlqArn: defaultRequester(
        () => p.deadLetterQueue,
        (q) => q.queueArn,
        'Source of DLQ replays',
      ),
      rejectedQueueUrl: [p.rejectedQueue.queueUrl, 'Requests rejected as never retryable'],
      tableName: [p.ledgerTable.tableName, 'One item per endpoint key'],
      eventBusName: [p.eventBus.eventBusName, 'Bus of the status events'],
      eventSource: [s.eventSource, 'Source of the status events'],
      continuationDlqUrl: [
        p.queues.continuationDeadLetterQueue.queueUrl,
        'Continuations that crashed the provisioner: inspected, not replayed',
      ],
    };
    if (p.requesters !== undefined) {
      const requesters: Record<string, RequesterOutput> = Object.fromEntries(
        p.requesters.all.map((r) => [
          r.requester.name,
          {
            queueUrl: r.queue.queueUrl,
            queueArn: r.queue.queueArn,
            dlqUrl: r.deadLetterQueue.queueUrl,
            dlqArn: r.deadLetterQueue.queueArn,
          },
        ]),
      );
      new CfnOutput(this, REQUESTERS_OUTPUT, {
        value: this.toJsonString(requesters),
        description: "Each requester's request queue and DLQ (npm run send/replay -- --requester <name>)",
      });
    }
    for (const [name, output] of Object.entries(outputs)) {
      if (output === undefined) continue;
      const [value, description] = output;
      new CfnOutput(this, STACK_OUTPUTS[name as StackResource], { value, description });
    }
  }
}
