/**
 * The floor plus the SDK clients the functions add to it, made as they make them: the ledger's
 * DynamoDB document client (ledger.ts) and the status events' EventBridge client (events.ts).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { handler as floor } from '../floor-handler.ts';

const ledger = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});
const events = new EventBridgeClient({});

export const handler = async () => [
  await floor(),
  ledger.config.serviceId,
  events.config.serviceId,
  [GetCommand, QueryCommand, UpdateCommand, PutEventsCommand].map((c) => c.name),
];
