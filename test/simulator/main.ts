/**
 * Starts the Atlas simulator on its own and prints its URL:
 *   npx tsx test/simulator/main.ts --port 8090 --service-account id:secret --api-key pub:priv
 */
import { parseArgs } from 'node:util';
import { startAtlasSimulator } from '#test/simulator/index.ts';
import type { SimulatorOptions } from '#test/simulator/types.ts';

const USAGE = `usage: tsx test/simulator/main.ts [options]
  --port N                      port on 127.0.0.1 (default: a free one)
  --service-account ID:SECRET   a service account (repeatable)
  --api-key PUBLIC:PRIVATE      a programmatic API key (repeatable)
  --project GROUP_ID            a project that exists (repeatable; default: every valid id)
  --activation-delay-ms N       INITIATING -> ACTIVE after N ms (default 1000)
  --deletion-delay-ms N         DELETING -> gone after N ms (default 1000)
  --token-ttl-seconds N         bearer token lifetime (default 3600)
  --latency-ms N                latency added to every answer (default 0)
  --rate-limit CAPACITY:REFILL  per-project token bucket, refill per minute (default 1200:500)
  --no-rate-limit               no rate limit
  --seed N                      seed of the simulator's random (default: unseeded)
  --fail-probability P          new INITIATING endpoints turn FAILED instead of ACTIVE with
                                probability P, 0 to 1 (default 0)`;

class UsageError extends Error {
  override readonly name = 'UsageError';
}

function pair(value: string, option: string): [string, string] {
  const colon = value.indexOf(':');
  if (colon <= 0 || colon === value.length - 1) throw new UsageError(`${option} takes A:B, got "${value}"`);
  return [value.slice(0, colon), value.slice(colon + 1)];
}

function count(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${option} takes a whole number, got "${value}"`);
  return n;
}

function probability(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  const p = Number(value);
  if (value.trim() === '' || !(p >= 0 && p <= 1)) {
    throw new UsageError(`${option} takes a number from 0 to 1, got "${value}"`);
  }
  return p;
}

function parseOptions(argv: string[]): SimulatorOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      'service-account': { type: 'string', multiple: true },
      'api-key': { type: 'string', multiple: true },
      project: { type: 'string', multiple: true },
      'activation-delay-ms': { type: 'string' },
      'deletion-delay-ms': { type: 'string' },
      'token-ttl-seconds': { type: 'string' },
      'latency-ms': { type: 'string' },
      'rate-limit': { type: 'string' },
      'no-rate-limit': { type: 'boolean' },
      seed: { type: 'string' },
      'fail-probability': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const numbers = {
    port: count(values.port, '--port'),
    activationDelayMs: count(values['activation-delay-ms'], '--activation-delay-ms'),
    deletionDelayMs: count(values['deletion-delay-ms'], '--deletion-delay-ms'),
    tokenTtlSeconds: count(values['token-ttl-seconds'], '--token-ttl-seconds'),
    latencyMs: count(values['latency-ms'], '--latency-ms'),
    seed: count(values.seed, '--seed'),
    failProbability: probability(values['fail-probability'], '--fail-probability'),
  };
  const rate = values['rate-limit'] ? pair(values['rate-limit'], '--rate-limit') : undefined;
  const rateLimit = values['no-rate-limit']
    ? false
    : rate && {
        capacity: count(rate[0], '--rate-limit') ?? 0,
        refillPerMinute: count(rate[1], '--rate-limit') ?? 0,
      };
  return {
    ...Object.fromEntries(Object.entries(numbers).filter(([, v]) => v !== undefined)),
    serviceAccounts: (values['service-account'] ?? []).map((v) => {
      const [clientId, clientSecret] = pair(v, '--service-account');
      return { clientId, clientSecret };
    }),
    apiKeys: (values['api-key'] ?? []).map((v) => {
      const [publicKey, privateKey] = pair(v, '--api-key');
      return { publicKey, privateKey };
    }),
    ...(values.project && { projects: values.project }),
    ...(rateLimit !== undefined && { rateLimit }),
  };
}

try {
  const options = parseOptions(process.argv.slice(2));
  const simulator = await startAtlasSimulator(options);
  // The URL only: the credentials were given on the command line and are not echoed.
  console.log(`Atlas simulator listening on ${simulator.url}`);
  const stop = () => {
    simulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (error) {
  const usage =
    error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  console.error(`${(error as Error).message}${usage ? `\n${USAGE}` : ''}`);
  process.exit(2);
}
