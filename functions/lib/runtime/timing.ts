/**
 * Time budgets shared by the provisioner (which keeps them) and the settings (which check that a
 * deployment's values can keep them). Dependency-free, so `cdk synth` can import it.
 */

/** Kept free after an Atlas call for the ledger write and the events that record its answer, ms. */
export const CALL_MARGIN_MS = 3_000;
/** Atlas calls of a record on the clean path (list, create): a record starts only with time for them. */
export const CALLS_TO_START = 2;

/**
 * The settle period of a create in doubt when none is set: three times the client's timeout, at
 * least 10 s. A create the server was still working on when the client gave up after one timeout
 * has had three by the time the key is listed again; one that lands even later is found as an
 * extra endpoint (by the provisioner's next listing or the status checker) and deleted.
 */
export const defaultCreateSettleSeconds = (atlasTimeoutMs: number) =>
  Math.max(10, Math.ceil((3 * atlasTimeoutMs) / 1000));
