/**
 * A project Atlas says does not exist (its listing answered 404 GROUP_NOT_FOUND): its keys are
 * retired once a later listing, at least `projectGoneConfirmMinutes` after the first, says so
 * too. One answer is not enough: a project's deletion is final, but a listing may meet a profile
 * pointed at another Atlas for a while, and retiring forgets the key's endpoint.
 */
import { retirement } from '#events/status-change.ts';
import { isRetirable, type LedgerItem } from '#ledger/ledger.ts';
import { type CheckerDeps, type Decision, logKeys, type ProjectGone } from './run.ts';

/** Minutes between the first answer that a project is gone and the one that retires its keys. */
export const DEFAULT_PROJECT_GONE_CONFIRM_MINUTES = 10;

/**
 * What Atlas saying the item's project is gone means for the item: nothing for a key with no
 * endpoint to retire or written since the listing (undefined; its outbox is still delivered), the time of
 * the first such answer to remember, nothing yet while too little time has passed since (undefined),
 * or its retirement.
 */
export function goneDecision(
  deps: Pick<CheckerDeps, 'logger' | 'projectGoneConfirmMinutes'>,
  item: LedgerItem,
  gone: ProjectGone,
): Decision | undefined {
  // The sweep follows endpoints: a create in doubt is the provisioner's (its request is parked).
  if (item.endpointId === undefined || !isRetirable(item) || item.updatedAt > gone.listedAt) return undefined;
  const since = Date.parse(item.projectGoneSince ?? '');
  if (!Number.isFinite(since)) {
    return {
      item,
      result: {
        status: item.status,
        ...(item.atlasErrorMessage !== undefined && { atlasErrorMessage: item.atlasErrorMessage }),
        fields: { projectGoneSince: gone.listedAt },
      },
      kind: 'unchanged',
      events: [],
    };
  }
  const confirmMs = (deps.projectGoneConfirmMinutes ?? DEFAULT_PROJECT_GONE_CONFIRM_MINUTES) * 60_000;
  if (Date.parse(gone.listedAt) - since < confirmMs) return undefined;
  deps.logger.warn('the project does not exist: the key is retired', {
    ...logKeys(item),
    projectGoneSince: item.projectGoneSince,
    error: gone.error,
  });
  const retired = retirement(item, gone.error, new Date(gone.listedAt));
  return { item, result: retired.result, kind: 'changed', events: retired.events };
}
