/**
 * The Ledger against real DynamoDB semantics (moto in server mode, started here), through the
 * contract the in-memory stand-in is held to as well. Contention is tested one request after
 * another: moto does not make two racing conditional writes atomic.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe } from 'vitest';
import { Ledger } from '#ledger/ledger.ts';
import { type Moto, startMoto } from '#test/local/emulators.ts';
import { ledgerContract } from '#test/support/ledger-contract.ts';
import { createLedgerTable } from '#test/support/ledger-table.ts';

let moto: Moto;
let db: DynamoDBDocumentClient;
let tables = 0;

beforeAll(async () => {
  moto = await startMoto();
  const client = new DynamoDBClient({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  db = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
});

afterAll(async () => {
  await moto?.stop();
});

describe('Ledger on DynamoDB', () => {
  ledgerContract(async (now) => {
    tables += 1;
    const tableName = `ledger-${tables}`;
    await createLedgerTable(db as unknown as DynamoDBClient, tableName);
    return new Ledger({ tableName, client: db, now });
  });
});
