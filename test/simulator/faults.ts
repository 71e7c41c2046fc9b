/**
 * The simulator's injected faults at run time: the rules in the order injected, which request
 * each one hits, the answer a status fault gives, and the lateCreate landings still pending.
 * The rules' shape is ./fault-schema.ts.
 */
import type { ServerResponse } from 'node:http';
import { type Answer, apiError, oauthError, reason } from '#test/simulator/answers.ts';
import {
  CREATE_ONLY_FAULTS,
  type Fault,
  type FaultRule,
  parseFaultRule,
  type SimOperation,
} from '#test/simulator/fault-schema.ts';

const FAULT_ERROR_CODES: Record<number, string> = {
  400: 'VALIDATION_ERROR',
  401: 'USER_UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'RESOURCE_NOT_FOUND',
  409: 'CONFLICT',
  429: 'RATE_LIMITED',
  500: 'UNEXPECTED_ERROR',
  502: 'BAD_GATEWAY',
  503: 'SERVICE_UNAVAILABLE',
  504: 'GATEWAY_TIMEOUT',
};
const OAUTH_ERRORS: Record<number, string> = {
  400: 'invalid_request',
  401: 'invalid_client',
  403: 'access_denied',
  429: 'slow_down',
  503: 'temporarily_unavailable',
};

/** The injected rules, each with the hits it has left. */
export class FaultRules {
  readonly #random: () => number;
  #rules: Array<FaultRule & { left: number }> = [];

  /** `random` draws the probabilities: the simulator's seeded random. */
  constructor(random: () => number) {
    this.#random = random;
  }

  /** Adds a rule after the others; a RangeError naming the field when it is not a valid FaultRule. */
  inject(rule: FaultRule): void {
    const checked = parseFaultRule(rule);
    this.#rules.push({ ...structuredClone(checked), left: checked.times ?? Number.POSITIVE_INFINITY });
  }

  clear(): void {
    this.#rules = [];
  }

  /** The first matching rule (in the order injected) whose probability draw hits, counted as a hit. */
  take(operation: SimOperation, groupId: string | undefined): Fault | undefined {
    const rule = this.#rules.find(
      (r) =>
        (!r.operations || r.operations.includes(operation)) &&
        (!r.groupId || r.groupId === groupId) &&
        (operation === 'create' || !CREATE_ONLY_FAULTS.has(r.fault.kind)) &&
        (r.probability === undefined || r.probability >= 1 || this.#random() < r.probability),
    );
    if (!rule) return undefined;
    rule.left -= 1;
    if (rule.left <= 0) this.#rules = this.#rules.filter((r) => r !== rule);
    return rule.fault;
  }
}

/** What a status fault answers: an ApiError, or the OAuth error shape on the token endpoints. */
export function faultAnswer(fault: Extract<Fault, { kind: 'status' }>, oauth: boolean): Answer {
  const retryAfter: Record<string, number> =
    fault.retryAfterSeconds !== undefined ? { 'retry-after': fault.retryAfterSeconds } : {};
  if (oauth) {
    const answer = oauthError(
      fault.status,
      fault.errorCode ?? OAUTH_ERRORS[fault.status] ?? 'server_error',
      'Injected fault.',
    );
    return { ...answer, headers: { ...answer.headers, ...retryAfter } };
  }
  const errorCode = fault.errorCode ?? FAULT_ERROR_CODES[fault.status] ?? `HTTP_${fault.status}`;
  const answer = apiError(fault.status, errorCode, `Injected fault: ${reason(fault.status)}.`);
  return { ...answer, headers: { ...answer.headers, ...retryAfter } };
}

/** lateCreate: creates held back until they land, each with the answer it never gives. */
export class LateCreates {
  readonly #pending = new Set<{ timer: NodeJS.Timeout; res: ServerResponse }>();

  /** At `landAt`, runs `land` (the create, with no conflict check) and drops the held answer. */
  hold(landAt: number, res: ServerResponse, land: () => void): void {
    const landing = {
      timer: setTimeout(
        () => {
          this.#pending.delete(landing);
          land();
          res.socket?.destroy();
        },
        Math.max(0, landAt - Date.now()),
      ).unref(),
      res,
    };
    this.#pending.add(landing);
  }

  /** Cancels every pending landing: it never lands, and its socket is destroyed. */
  cancelAll(): void {
    for (const landing of this.#pending) {
      clearTimeout(landing.timer);
      landing.res.socket?.destroy();
    }
    this.#pending.clear();
  }
}
