/**
 * `npm run retire`: retires the keys of a project that no longer exists. Each key the sweep or the
 * provisioner would go on with (an endpoint, a create in doubt, a recreation) is marked MISSING
 * with the operator's reason, and its MISSING event is recorded in the key's outbox, which the
 * next sweep sends to its requesters; the key is then no longer followed and stops alarming. The
 * same write as the sweep's own retirement (events/status-change.ts retirement), applied only
 * while no request holds the key and nothing wrote it since it was read. Never calls Atlas.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, paginateScan } from '@aws-sdk/lib-dynamodb';
import { type RetireReason, retirement } from '#events/status-change.ts';
import { DEFAULT_STACK_NAME } from '#infra/names.ts';
import { ENDED, isRetirable, Ledger, type LedgerItem } from '#ledger/ledger.ts';
import { fromRaw } from '#ledger/table.ts';
import { ProvisionRequestSchema } from '#messages/request.ts';
import { EXIT_FAILURE, EXIT_OK, formatTable, isMain, parseCommand, runMain, UsageError } from './cli.ts';
import { resolveResources, resourceFlags, resourcesFromFlags } from './resources.ts';

/** The error code a key retired by an operator carries (its lastError, its event's `error`). */
export const RETIRED_BY_OPERATOR = 'RETIRED_BY_OPERATOR';

/** What the command does with one key. */
export type Plan = 'retire' | 'already gone' | 'nothing to retire' | 'held by a request';

/** What becomes of a key: retired, left alone (and why), or refused while a request holds it. */
export function planFor(item: LedgerItem, now: Date): Plan {
  if (ENDED.has(item.status)) return 'already gone';
  if (!isRetirable(item)) return 'nothing to retire';
  if (item.lease && item.lease.expiresAt >= now.getTime()) return 'held by a request';
  return 'retire';
}

/** Every ledger item of the project, read consistently, sorted by natural key. */
export async function projectItems(
  db: DynamoDBDocumentClient,
  tableName: string,
  groupId: string,
): Promise<LedgerItem[]> {
  const items: LedgerItem[] = [];
  const pages = paginateScan(
    { client: db },
    {
      TableName: tableName,
      FilterExpression: 'groupId = :g',
      ExpressionAttributeValues: { ':g': groupId },
      ConsistentRead: true,
    },
  );
  for await (const page of pages) items.push(...(page.Items ?? []).map(fromRaw));
  return items.sort((a, b) => a.key.localeCompare(b.key));
}

export interface RetiredKey {
  item: LedgerItem;
  plan: Plan;
  /** What happened: retired, would retire (dry run), left, refused, or moved on while retiring. */
  outcome: 'retired' | 'would retire' | 'left' | 'refused' | 'moved on';
}

/**
 * Retires the retirable keys of `items` (unless `dryRun`), each with `reason` and an event per
 * requester in its outbox. A key a request holds is refused; one written since it was read is
 * left for another run ("moved on").
 */
export async function retireKeys(
  ledger: Pick<Ledger, 'recordCheck'>,
  items: readonly LedgerItem[],
  options: { reason: RetireReason; dryRun: boolean; now: Date },
): Promise<RetiredKey[]> {
  const results: RetiredKey[] = [];
  for (const item of items) {
    const plan = planFor(item, options.now);
    if (plan === 'already gone' || plan === 'nothing to retire') {
      results.push({ item, plan, outcome: 'left' });
    } else if (plan === 'held by a request') {
      results.push({ item, plan, outcome: 'refused' });
    } else if (options.dryRun) {
      results.push({ item, plan, outcome: 'would retire' });
    } else {
      const { result, events } = retirement(item, options.reason, options.now);
      const written = await ledger.recordCheck(
        item.key,
        item.status,
        { ...result, events },
        item.outbox,
        item.updatedAt,
      );
      results.push({ item, plan, outcome: written ? 'retired' : 'moved on' });
    }
  }
  return results;
}

const NOTE: Record<RetiredKey['outcome'], string> = {
  retired: 'retired: MISSING, its event waits for the next sweep',
  'would retire': 'would retire',
  left: '',
  refused: 'refused: a request holds the key; run again once it is done',
  'moved on': 'not retired: written since it was read; run again',
};

/** The keys as a text table. */
export function retireTable(rows: readonly RetiredKey[]): string {
  return formatTable(
    ['NATURAL KEY', 'STATUS', 'ENDPOINT', 'WHAT'],
    rows.map(({ item, plan, outcome }) => [
      item.key,
      item.status,
      item.endpointId ?? '-',
      outcome === 'left' ? plan : NOTE[outcome],
    ]),
  );
}

const USAGE = `usage: npm run retire -- --project <projectId> [--dry-run] [--reason <text>] [--stack <name>] [--table <name>]

Retires the keys of an Atlas project that no longer exists: each key with an endpoint, a create
in doubt or a recreation becomes MISSING (reason in its last error, error code
${RETIRED_BY_OPERATOR}), stops being followed, and gets a MISSING event for each of its
requesters, recorded in its outbox and sent by the next status-checker run. Keys already gone,
or with nothing to retire, are listed and left alone. A key a request holds is refused (exit code
1): run again once the request is done. It never calls Atlas: an endpoint of a project that still
exists stays there, no longer followed. --dry-run lists what it would do and writes nothing.

The table comes from --table, else from LEDGER_TABLE (as \`npm start -- --keep\` exports it) unless
--stack is given, else from the outputs of the deployed stack (default ${DEFAULT_STACK_NAME}).
AWS_ENDPOINT_URL points it at an emulator.`;

const MAX_REASON_CHARS = 500;

/** The command: parses argv, prints to stdout (results) and stderr (progress), resolves with the exit code. */
export async function main(argv: string[], now: () => Date = () => new Date()): Promise<number> {
  const flags = parseCommand(
    {
      ...resourceFlags(['tableName']),
      project: { type: 'string' },
      reason: { type: 'string' },
      'dry-run': { type: 'boolean' },
    },
    argv,
    USAGE,
  );
  if (!flags) return EXIT_OK;
  if (flags.project === undefined) throw new UsageError('--project is required', { usage: USAGE });
  if (!ProvisionRequestSchema.shape.groupId.safeParse(flags.project).success) {
    throw new UsageError(
      `--project must be a 24-character lowercase hex Atlas project id (given "${flags.project}")`,
    );
  }
  if (flags.reason !== undefined && (flags.reason.trim() === '' || flags.reason.length > MAX_REASON_CHARS)) {
    throw new UsageError(`--reason must be 1 to ${MAX_REASON_CHARS} characters`);
  }
  const { tableName } = await resolveResources(['tableName'], {
    given: resourcesFromFlags(flags),
    stack: flags.stack,
    sqs: new SQSClient({}),
  });
  const db = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true },
  });
  const items = await projectItems(db, tableName, flags.project);
  if (items.length === 0) {
    console.log(`no ledger items for project ${flags.project} in ${tableName}`);
    return EXIT_OK;
  }
  const dryRun = flags['dry-run'] === true;
  const rows = await retireKeys(new Ledger({ tableName, client: db, now }), items, {
    reason: {
      code: RETIRED_BY_OPERATOR,
      detail: flags.reason ?? `project ${flags.project} retired by an operator (npm run retire)`,
    },
    dryRun,
    now: now(),
  });
  console.log(retireTable(rows));
  const count = (outcome: RetiredKey['outcome']) => rows.filter((r) => r.outcome === outcome).length;
  const failed = count('refused') + count('moved on');
  console.log(
    dryRun
      ? `\ndry run: would retire ${count('would retire')} of ${rows.length} key(s) of project ${flags.project}; ${count('refused')} held by a request; nothing written`
      : `\nretired ${count('retired')} of ${rows.length} key(s) of project ${flags.project} in ${tableName}` +
          (failed > 0 ? `; ${failed} not retired (see above): run again` : '') +
          (count('retired') > 0 ? '; their MISSING events are sent by the next status-checker run' : ''),
  );
  return failed > 0 && !dryRun ? EXIT_FAILURE : EXIT_OK;
}

if (isMain(import.meta)) await runMain(() => main(process.argv.slice(2)));
