/** Creates the ledger table as infra/constructs/ledger.ts declares it, in a DynamoDB emulator. */
import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CHECK_INDEX } from '#lib/ledger.ts';

export async function createLedgerTable(client: DynamoDBClient, tableName: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'key', AttributeType: 'S' },
        { AttributeName: 'tracked', AttributeType: 'S' },
        { AttributeName: 'checkedAt', AttributeType: 'S' },
      ],
      KeySchema: [{ AttributeName: 'key', KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [
        {
          IndexName: CHECK_INDEX,
          KeySchema: [
            { AttributeName: 'tracked', KeyType: 'HASH' },
            { AttributeName: 'checkedAt', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    }),
  );
}
