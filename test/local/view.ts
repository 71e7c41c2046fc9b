/**
 * The terminal view of a local run: a table redrawn in place on a TTY, or one plain line per
 * change otherwise (CI logs, pipes), and the closing summary.
 */
import { styleText } from 'node:util';
import { DEFAULT_REQUESTER } from '#messages/requesters.ts';
import { printable } from './printable.ts';
import type { FinalPlace, RequestTracker, TrackedRequest } from './tracker.ts';

type Color = 'green' | 'red' | 'yellow' | 'cyan' | 'gray' | 'magenta';

const PLACE_COLOR: Record<FinalPlace, Color> = {
  provisioned: 'green',
  deleted: 'green',
  released: 'green',
  missing: 'red',
  superseded: 'cyan',
  dlq: 'magenta',
  rejected: 'yellow',
};

export interface LiveViewOptions {
  write: (text: string) => void;
  /** Redraw a table in place (TTY) or print one line per change. */
  tty: boolean;
  /** Terminal size, to keep a redrawn table on screen without wrapping. */
  rows?: number;
  columns?: number;
  startedAt: number;
  /** Plain mode only: print changes from now on, not the current state. */
  fromNow?: boolean;
}

const field = (body: string, name: string): string => {
  try {
    const value = (JSON.parse(body) as Record<string, unknown>)[name];
    return typeof value === 'string' ? printable(value) : '';
  } catch {
    return '';
  }
};

const labelOf = (r: TrackedRequest) => printable(r.label);

/** The table's REQUEST column: a long requestId would push every other column off the screen. */
const MAX_LABEL = 40;
const shortLabelOf = (r: TrackedRequest) => {
  const label = labelOf(r);
  return label.length > MAX_LABEL ? `${label.slice(0, MAX_LABEL - 1)}…` : label;
};

/** "…f601 US_EAST_1" or "…f601 AP_SOUTHEAST_2/AP_SOUTHEAST_1": the natural key, short. */
const keyOf = (r: TrackedRequest) => {
  // JSON.parse would show the last of two values, which the function never used.
  if (r.final === 'rejected' && r.error?.detail.includes('duplicate key')) return '(duplicate keys)';
  const group = field(r.body, 'groupId');
  const region = field(r.body, 'regionName');
  const vpc = field(r.body, 'vpcRegionName');
  if (!group && !region) return '(unreadable)';
  return `…${group.slice(-4)} ${region || '?'}${vpc ? `/${vpc}` : ''}`;
};

const note = (r: TrackedRequest) => {
  if (r.error)
    return printable(
      `${r.error.code}${r.error.httpStatus ? ` (${r.error.httpStatus})` : ''}: ${r.error.detail}`,
    );
  if (r.crashes > 0) return `${r.crashes} lost deliveries`;
  return r.endpointId ? `endpoint ${printable(r.endpointId)}` : '';
};

/** A request settled by one delivery while another copy of its message was parked. */
const parkedBesides = (r: TrackedRequest) =>
  r.parked
    .filter((place) => place !== r.final)
    .map((place) => (place === 'dlq' ? 'the DLQ' : 'the rejected queue'));

const placeOf = (r: TrackedRequest) => printable(r.place);

const requesterOf = (r: TrackedRequest) => printable(r.requester ?? '?');
/** "orders: " before a plain line's state when the request has a named requester. */
const named = (r: TrackedRequest) =>
  r.requester !== undefined && r.requester !== DEFAULT_REQUESTER ? `${requesterOf(r)}: ` : '';

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export class LiveView {
  readonly #tracker: RequestTracker;
  readonly #options: LiveViewOptions;
  readonly #printed = new Map<TrackedRequest, string>();
  #drawnLines = 0;
  #pending: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #stopped = false;

  constructor(tracker: RequestTracker, options: LiveViewOptions) {
    this.#tracker = tracker;
    this.#options = options;
  }

  start(): this {
    this.#unsubscribe = this.#tracker.subscribe(() => this.#schedule());
    if (this.#options.fromNow && !this.#options.tty) {
      for (const r of this.#tracker.requests) this.#printed.set(r, this.#shown(r));
    } else {
      this.#render();
    }
    return this;
  }

  /** Stops following changes: a TTY table is erased (the summary follows), plain lines print the last changes. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#unsubscribe?.();
    clearTimeout(this.#pending);
    if (!this.#options.tty) {
      this.#printChanges();
    } else if (this.#drawnLines > 0) {
      this.#options.write(`\x1b[${this.#drawnLines}F\x1b[J`);
      this.#drawnLines = 0;
    }
  }

  /** Counts per final place and per delivery result, any parked copy of a settled request, then one line per request. */
  summary(extra: string[] = []): string {
    const requests = this.#tracker.requests;
    const count = (places: string[]) => {
      const counts = new Map<string, number>();
      for (const place of places) counts.set(place, (counts.get(place) ?? 0) + 1);
      return [...counts].map(([place, n]) => `${n} ${place}`).join(', ');
    };
    const deliveries = requests.flatMap((r) => r.deliveries);
    const alsoParked = requests.flatMap((r) =>
      parkedBesides(r).map(
        (where) => `${labelOf(r)}: ${r.final ?? 'unfinished'}, but a delivery of it went to ${where}`,
      ),
    );
    return [
      '',
      this.#paint(
        'cyan',
        `Summary after ${seconds(Date.now() - this.#options.startedAt)}: ${requests.length} requests: ${count(
          requests.map((r) => r.final ?? 'unfinished'),
        )}`,
      ),
      `  ${deliveries.length} deliveries: ${count(deliveries.map((d) => d.result ?? 'in flight')) || 'none'}`,
      ...alsoParked.map((line) => `  ${this.#paint('magenta', line)}`),
      ...extra.map((line) => `  ${printable(line)}`),
      // The summary is printed once: its notes whole (a refusal's reason names what the grant lacks).
      ...this.#table(requests, { wholeNotes: true }),
      '',
    ].join('\n');
  }

  #schedule() {
    if (!this.#options.tty) return this.#render();
    // A burst of changes redraws once.
    this.#pending ??= setTimeout(() => {
      this.#pending = undefined;
      this.#render();
    }, 100);
  }

  #render() {
    if (!this.#options.tty) return this.#printChanges();
    const requests = this.#tracker.requests;
    const open = requests.filter((r) => r.final === undefined).length;
    const header = `${seconds(Date.now() - this.#options.startedAt)}  ${requests.length - open}/${requests.length} requests in a final place`;
    let lines = [this.#paint('cyan', header), ...this.#table(requests)];
    const room = (this.#options.rows ?? 40) - 2;
    if (lines.length > room) lines = [...lines.slice(0, room - 1), `  … ${lines.length - room + 1} more`];
    const up = this.#drawnLines > 0 ? `\x1b[${this.#drawnLines}F\x1b[J` : '';
    this.#options.write(`${up}${lines.join('\n')}\n`);
    this.#drawnLines = lines.length;
  }

  #printChanges() {
    for (const r of this.#tracker.requests) {
      const shown = this.#shown(r);
      if (this.#printed.get(r) === shown) continue;
      this.#printed.set(r, shown);
      const extra = r.final === 'dlq' || r.final === 'rejected' ? ` ${note(r)}` : '';
      this.#options.write(
        `+${seconds(Date.now() - this.#options.startedAt).padStart(7)}  ${labelOf(r).padEnd(28)} ${named(r)}${shown}${extra}\n`,
      );
    }
  }

  #shown(r: TrackedRequest) {
    return `${placeOf(r)}${r.final ? ` (${r.final})` : ''}`;
  }

  #table(requests: readonly TrackedRequest[], options: { wholeNotes?: boolean } = {}): string[] {
    const width = Math.max(7, ...requests.map((r) => shortLabelOf(r).length));
    const keyWidth = Math.max(3, ...requests.map((r) => keyOf(r).length));
    // The REQUESTER column only when requesters are named: the default one alone says nothing.
    const named = requests.some((r) => r.requester !== undefined && r.requester !== DEFAULT_REQUESTER);
    const requesterWidth = Math.max(9, ...requests.map((r) => requesterOf(r).length));
    const requesterCell = (text: string) => (named ? `${text.padEnd(requesterWidth)}  ` : '');
    const head = `  ${'REQUEST'.padEnd(width)}  ${requesterCell('REQUESTER')}ACTION  ${'KEY'.padEnd(keyWidth)}  ${'STATE'.padEnd(14)}  TRIES  NOTE`;
    const noteWidth = options.wholeNotes
      ? Number.POSITIVE_INFINITY
      : Math.max(20, (this.#options.columns ?? 160) - head.length + 4);
    return [
      this.#paint('gray', head),
      ...requests.map((r) => {
        const state = placeOf(r).padEnd(14);
        const color = r.final ? PLACE_COLOR[r.final] : r.place === 'retried' ? 'yellow' : undefined;
        return `  ${shortLabelOf(r).padEnd(width)}  ${requesterCell(requesterOf(r))}${r.action.padEnd(6)}  ${keyOf(r).padEnd(keyWidth)}  ${
          color ? this.#paint(color, state) : state
        }  ${String(r.deliveries.length).padStart(5)}  ${note(r).slice(0, noteWidth)}`;
      }),
    ];
  }

  #paint(color: Color, text: string) {
    return this.#options.tty ? styleText(color, text) : text;
  }
}
