/** Creates the ledger table in a DynamoDB emulator from the schema the stack declares. */
import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CHECK_INDEX, CHECK_INDEX_PARTITION, CHECK_INDEX_SORT, LEDGER_KEY } from '#ledger/schema.ts';

export async function createLedgerTable(client: DynamoDBClient, tableName: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [LEDGER_KEY, CHECK_INDEX_PARTITION, CHECK_INDEX_SORT].map((name) => ({
        AttributeName: name,
        AttributeType: 'S',
      })),
      KeySchema: [{ AttributeName: LEDGER_KEY, KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [
        {
          IndexName: CHECK_INDEX,
          KeySchema: [
            { AttributeName: CHECK_INDEX_PARTITION, KeyType: 'HASH' },
            { AttributeName: CHECK_INDEX_SORT, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    }),
  );
}
