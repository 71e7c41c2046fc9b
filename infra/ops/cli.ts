/**
 * The command-line kit every command of the project uses (the operator commands here, `npm
 * start`, the soak, the simulator's main, and the CDK app's exit code): flag parsing with usage
 * errors, one error printer (a line naming what is wrong, never a stack trace for a user error),
 * one set of exit codes, a progress bar and a text table. Node built-ins only, so `cdk synth`
 * can import it without loading an SDK.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** Exit codes: 0 done, 1 failed (the work could not be done), 2 called wrongly (see UsageError). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/**
 * The command was called wrongly: an unknown flag, a bad or missing value, flags that do not go
 * together, or an input it names that does not exist. Exit code 2. `usage` is printed after the
 * message.
 */
export class UsageError extends Error {
  readonly usage: string | undefined;

  constructor(message: string, options?: ErrorOptions & { usage?: string }) {
    super(message, options);
    this.name = 'UsageError';
    this.usage = options?.usage;
  }
}

/**
 * The command was called rightly but cannot do its work for a reason the user can fix (a task
 * already running, a service refusing): printed as its message alone, exit code 1.
 */
export class CommandError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CommandError';
  }
}

/** Whether the module is the script node (or tsx) was started with, rather than imported. */
export function isMain(meta: ImportMeta): boolean {
  const script = process.argv[1];
  return script !== undefined && resolve(script) === fileURLToPath(meta.url);
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs, with its errors (unknown flag, missing value) as UsageError carrying the usage text. */
export function parseFlags<O extends Options>(options: O, argv: string[], usage: string) {
  try {
    return parseArgs({ options, args: argv, strict: true, allowPositionals: false }).values;
  } catch (error) {
    if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
      throw new UsageError(error.message, { cause: error, usage });
    }
    throw error;
  }
}

const HELP = { help: { type: 'boolean', short: 'h' } } as const;

/**
 * A command's flags, with --help (-h) added: on --help it prints the usage and answers undefined,
 * and the command ends there with exit code 0.
 */
export function parseCommand<O extends Options>(options: O, argv: string[], usage: string) {
  const flags = parseFlags({ ...options, ...HELP }, argv, usage);
  if ('help' in flags && flags.help === true) {
    console.log(usage);
    return undefined;
  }
  return flags;
}

const range = (min: number, max: number) =>
  max !== Number.POSITIVE_INFINITY
    ? ` from ${min} to ${max}`
    : min !== Number.NEGATIVE_INFINITY
      ? ` of ${min} or more`
      : '';

/** An integer flag within bounds (`max` unbounded by default), or a UsageError naming the flag. */
export function integerFlag(
  name: string,
  value: string | undefined,
  min: number,
  max = Number.POSITIVE_INFINITY,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number${range(min, max)} (given "${value}")`);
  }
  return n;
}

/** A number flag within bounds (inclusive), or a UsageError naming the flag. */
export function numberFlag(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !(n >= min && n <= max)) {
    throw new UsageError(`--${name} must be a number${range(min, max)} (given "${value}")`);
  }
  return n;
}

/** AWS and SDK failures the user fixes by configuration: shown as one line each, with a hint. */
const HINTS: Record<string, string> = {
  CredentialsProviderError: 'set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
  ExpiredToken: 'refresh your AWS credentials',
  ExpiredTokenException: 'refresh your AWS credentials',
  AccessDenied: 'your AWS identity lacks a permission this command needs',
  AccessDeniedException: 'your AWS identity lacks a permission this command needs',
  'AWS.SimpleQueueService.NonExistentQueue': 'check the queue URL or ARN, and AWS_REGION',
  QueueDoesNotExist: 'check the queue URL or ARN, and AWS_REGION',
  ResourceNotFoundException: 'check the name, and AWS_REGION',
};

/** The message printed for a failure; stack traces only for errors that are not the user's to fix. */
export function describeCliError(error: unknown): { message: string; expected: boolean } {
  if (error instanceof UsageError || error instanceof CommandError) {
    return { message: error.message, expected: true };
  }
  if (error instanceof Error) {
    const isAws = '$metadata' in error || error.name === 'CredentialsProviderError';
    if (isAws) {
      const hint = HINTS[error.name];
      return { message: `${error.name}: ${error.message}${hint ? ` (${hint})` : ''}`, expected: true };
    }
    if (/Region is missing/i.test(error.message)) {
      return { message: 'no AWS region: set AWS_REGION (or a profile with a region)', expected: true };
    }
    return { message: error.stack ?? `${error.name}: ${error.message}`, expected: false };
  }
  return { message: String(error), expected: false };
}

/**
 * Runs a command's main and sets the exit code: what main resolves with (0 when nothing), or
 * EXIT_USAGE for a UsageError and EXIT_FAILURE for any other failure, printed as `error: ...` on
 * stderr; a UsageError is followed by its usage text, else by `usage` when given.
 */
export async function runMain(
  main: () => Promise<number | undefined>,
  options: { usage?: string } = {},
): Promise<void> {
  try {
    process.exitCode = (await main()) ?? EXIT_OK;
  } catch (error) {
    const { message } = describeCliError(error);
    const usage = error instanceof UsageError ? (error.usage ?? options.usage) : undefined;
    process.stderr.write(`error: ${message}\n${usage ? `\n${usage}\n` : ''}`);
    process.exitCode = error instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
  }
}

/** A progress bar on a terminal; elsewhere (a pipe, CI logs) one line per tenth of the way. */
export class ProgressBar {
  readonly #stream: NodeJS.WriteStream;
  readonly #label: string;
  #lastTenth = -1;

  constructor(label: string, stream: NodeJS.WriteStream = process.stderr) {
    this.#label = label;
    this.#stream = stream;
  }

  update(done: number, total: number): void {
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const text = `${this.#label} ${done}/${total} (${Math.floor(fraction * 100)}%)`;
    if (this.#stream.isTTY) {
      const width = 30;
      const filled = Math.round(fraction * width);
      this.#stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}`);
      if (fraction === 1) this.#stream.write('\n');
      return;
    }
    const tenth = Math.floor(fraction * 10);
    if (tenth > this.#lastTenth) {
      this.#lastTenth = tenth;
      this.#stream.write(`${text}\n`);
    }
  }
}

/** Left-aligned columns separated by two spaces, with a header row. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}
