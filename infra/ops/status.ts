/**
 * `npm run status`: the ledger as a table, one row per natural key: status, endpoint id, how long
 * it has been in that status, and the last error. `--group` narrows it to one project.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, paginateScan } from '@aws-sdk/lib-dynamodb';
import { DEFAULT_STACK_NAME } from '#infra/names.ts';
import type { LedgerItem } from '#ledger/ledger.ts';
import { ProvisionRequestSchema } from '#messages/request.ts';
import { formatTable, isMain, parseCommand, runMain, UsageError } from './cli.ts';
import { resolveResources, resourceFlags, resourcesFromFlags } from './resources.ts';

/** The fields the table shows. */
export type LedgerRow = Pick<
  LedgerItem,
  'key' | 'action' | 'status' | 'statusSince' | 'endpointId' | 'atlasErrorMessage' | 'stuckAt' | 'lastError'
>;

/** Every ledger item (of one project when groupId is given), sorted by natural key. */
export async function readLedger(
  db: DynamoDBDocumentClient,
  tableName: string,
  options: { groupId?: string } = {},
): Promise<LedgerRow[]> {
  const rows: LedgerRow[] = [];
  const pages = paginateScan(
    { client: db },
    {
      TableName: tableName,
      ...(options.groupId !== undefined && {
        FilterExpression: 'groupId = :g',
        ExpressionAttributeValues: { ':g': options.groupId },
      }),
    },
  );
  for await (const page of pages) rows.push(...((page.Items ?? []) as LedgerRow[]));
  return rows.sort((a, b) => a.key.localeCompare(b.key));
}

/** "45s", "12m", "3h 5m", "2d 4h". */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

const MAX_ERROR_CHARS = 80;

const lastError = (row: LedgerRow): string => {
  const text = row.lastError
    ? `${row.lastError.code}${row.lastError.httpStatus ? ` (${row.lastError.httpStatus})` : ''}: ${row.lastError.detail}`
    : (row.atlasErrorMessage ?? '');
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS - 1)}…` : text;
};

/** The rows as a text table; `now` dates the AGE column. */
export function ledgerTable(rows: readonly LedgerRow[], now: Date = new Date()): string {
  return formatTable(
    ['NATURAL KEY', 'ACTION', 'STATUS', 'ENDPOINT', 'AGE', 'LAST ERROR'],
    rows.map((row) => [
      row.key,
      row.action ?? '',
      `${row.status}${row.stuckAt ? ' (stuck)' : ''}`,
      row.endpointId ?? '-',
      row.statusSince ? formatAge(now.getTime() - Date.parse(row.statusSince)) : '-',
      lastError(row),
    ]),
  );
}

const USAGE = `usage: npm run status -- [--group <projectId>] [--stack <name>] [--table <name>]

Prints the ledger: one row per natural key (project#provider#region#vpc region), its status
(and "(stuck)" past its deadline), endpoint id, time in that status, and last error. The table
comes from --table, else from LEDGER_TABLE (as \`npm start -- --keep\` exports it) unless --stack
is given, else from the outputs of the deployed stack (default ${DEFAULT_STACK_NAME}).
AWS_ENDPOINT_URL points it at an emulator.`;

/** The command: parses argv, prints to stdout (results) and stderr (progress), resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const flags = parseCommand({ ...resourceFlags(['tableName']), group: { type: 'string' } }, argv, USAGE);
  if (!flags) return 0;
  if (flags.group !== undefined && !ProvisionRequestSchema.shape.groupId.safeParse(flags.group).success) {
    throw new UsageError(
      `--group must be a 24-character lowercase hex Atlas project id (given "${flags.group}")`,
    );
  }
  const { tableName } = await resolveResources(['tableName'], {
    given: resourcesFromFlags(flags),
    stack: flags.stack,
    sqs: new SQSClient({}),
  });
  const db = DynamoDBDocumentClient.from(new DynamoDBClient({}));
  const rows = await readLedger(db, tableName, {
    ...(flags.group !== undefined && { groupId: flags.group }),
  });
  if (rows.length === 0) {
    console.log(`no ledger items${flags.group ? ` for project ${flags.group}` : ''} in ${tableName}`);
    return 0;
  }
  console.log(ledgerTable(rows));
  console.log(`\n${rows.length} item(s) in ${tableName}`);
  return 0;
}

if (isMain(import.meta)) await runMain(() => main(process.argv.slice(2)));
