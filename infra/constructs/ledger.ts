/**
 * The ledger table (schema in functions/lib/ledger/schema.ts): on demand, point-in-time recovery,
 * encrypted, kept and protected from deletion with the stack, since it is the record of which
 * endpoints exist. Grants name the exact items API calls the Ledger class makes.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import {
  AttributeType,
  BillingMode,
  ProjectionType,
  Table,
  TableEncryption,
  TableGrants,
} from 'aws-cdk-lib/aws-dynamodb';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { CHECK_INDEX, CHECK_INDEX_PARTITION, CHECK_INDEX_SORT, LEDGER_KEY } from '#ledger/schema.ts';

export class LedgerTable extends Construct {
  readonly table: Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = new Table(this, 'Table', {
      partitionKey: { name: LEDGER_KEY, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: CHECK_INDEX,
      partitionKey: { name: CHECK_INDEX_PARTITION, type: AttributeType.STRING },
      sortKey: { name: CHECK_INDEX_SORT, type: AttributeType.STRING },
      projectionType: ProjectionType.ALL,
    });
  }

  /**
   * Conditionally updates items (Ledger claim, settle, recordFailure, recordCheck); each reads
   * what it needs back through ReturnValues. The one plain read is a follow-up's (grantItemReads).
   */
  grantItemUpdates(grantee: IGrantable): Grant {
    // hasIndex false: the table ARN alone, not the `index/*` wildcard the table's own grants add.
    return TableGrants.fromTable(this.table, undefined, false).actions(grantee, 'dynamodb:UpdateItem');
  }

  /** Reads one item (Ledger get: a follow-up reads its key before it calls Atlas). */
  grantItemReads(grantee: IGrantable): Grant {
    return TableGrants.fromTable(this.table, undefined, false).actions(grantee, 'dynamodb:GetItem');
  }

  /** Queries the status checker's index (Ledger listTracked). */
  grantQueryCheckIndex(grantee: IGrantable): Grant {
    return Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:Query'],
      resourceArns: [`${this.table.tableArn}/index/${CHECK_INDEX}`],
    });
  }
}
