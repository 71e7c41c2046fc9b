/**
 * Starts the Atlas simulator on its own and prints its URL:
 *   npx tsx test/simulator/main.ts --port 8090 --service-account id:secret --api-key pub:priv
 */
import { integerFlag, isMain, numberFlag, parseCommand, runMain, UsageError } from '#infra/ops/cli.ts';
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
                                probability P, 0 to 1 (default 0)
  -h, --help                    this text`;

function pair(value: string, option: string): [string, string] {
  const colon = value.indexOf(':');
  if (colon <= 0 || colon === value.length - 1)
    throw new UsageError(`${option} must be A:B (given "${value}")`);
  return [value.slice(0, colon), value.slice(colon + 1)];
}

/** The simulator's options from the command line; undefined for --help (the usage is printed). */
export function parseOptions(argv: string[]): SimulatorOptions | undefined {
  const values = parseCommand(
    {
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
    },
    argv,
    USAGE,
  );
  if (!values) return undefined;
  const numbers = {
    port: integerFlag('port', values.port, 0),
    activationDelayMs: integerFlag('activation-delay-ms', values['activation-delay-ms'], 0),
    deletionDelayMs: integerFlag('deletion-delay-ms', values['deletion-delay-ms'], 0),
    tokenTtlSeconds: integerFlag('token-ttl-seconds', values['token-ttl-seconds'], 0),
    latencyMs: integerFlag('latency-ms', values['latency-ms'], 0),
    seed: integerFlag('seed', values.seed, 0),
    failProbability: numberFlag('fail-probability', values['fail-probability'], 0, 1),
  };
  const rate = values['rate-limit'] ? pair(values['rate-limit'], '--rate-limit') : undefined;
  const rateLimit = values['no-rate-limit']
    ? false
    : rate && {
        capacity: integerFlag('rate-limit', rate[0], 0) ?? 0,
        refillPerMinute: integerFlag('rate-limit', rate[1], 0) ?? 0,
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

/** Starts the simulator and leaves it running until SIGINT or SIGTERM. */
export async function main(argv: string[]): Promise<number | undefined> {
  const options = parseOptions(argv);
  if (!options) return 0;
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
  return undefined;
}

if (isMain(import.meta)) await runMain(() => main(process.argv.slice(2)), { usage: USAGE });
