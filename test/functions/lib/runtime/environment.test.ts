import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import * as z from 'zod/mini';
import {
  checkStatusEnvironment,
  leaseSeconds,
  maxReceiveCount,
  provisionEnvironment,
  resolveSettings,
  type Settings,
  SettingsError,
  type SettingsInput,
  SettingsSchema,
  safetyMarginMs,
  visibilityTimeoutSeconds,
} from '#infra/settings.ts';
import {
  AT_LEAST,
  EnvironmentError,
  FUNCTION_VARIABLES,
  type FunctionName,
  readEnvironment,
  VARIABLES,
  type VariableName,
} from '#runtime/environment.ts';
import { localSettings } from '#test/local/environment.ts';
import { provisionResources } from '#test/support/resources.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');

const resources = provisionResources();

/** What the stack gives each function for these settings. */
const environments = (s: Settings): Record<FunctionName, Record<string, string>> => ({
  provision: provisionEnvironment(s, resources),
  checkStatus: checkStatusEnvironment(s, resources),
});
const FUNCTIONS = Object.keys(FUNCTION_VARIABLES) as FunctionName[];
const names = (fn: FunctionName) => FUNCTION_VARIABLES[fn].map((o) => VARIABLES[o].name);

describe('readEnvironment', () => {
  const defaults = environments(resolveSettings());

  it('fails the cold start naming each missing or bad variable', () => {
    const load = () => readEnvironment('provision', { LEDGER_TABLE_NAME: 't', MAX_ATTEMPTS: 'many' });
    expect(load).toThrow(EnvironmentError);
    expect(load).toThrow(/REQUESTERS/);
    expect(load).toThrow(/CONTINUATION_QUEUE_URL/);
    expect(load).toThrow(/MAX_ATTEMPTS/);
  });

  it('names every problem in one EnvironmentError, separated by "; "', () => {
    const bad = () =>
      readEnvironment('provision', {
        ...defaults.provision,
        MAX_ATTEMPTS: 'many',
        CONTINUATION_QUEUE_URL: 'not a url',
      });
    const broken = () =>
      readEnvironment('provision', {
        ...defaults.provision,
        BACKOFF_BASE_SECONDS: '60',
        BACKOFF_CAP_SECONDS: '30',
        FOLLOW_UP_FIRST_SECONDS: '60',
        FOLLOW_UP_MAX_SECONDS: '30',
      });

    expect(bad).toThrow(expect.objectContaining({ name: 'EnvironmentError' }));
    expect(bad).toThrow(/^invalid configuration: CONTINUATION_QUEUE_URL: [^;]+; MAX_ATTEMPTS: [^;]+$/);
    expect(broken).toThrow(
      'invalid configuration: BACKOFF_CAP_SECONDS: must be at least BACKOFF_BASE_SECONDS; ' +
        'FOLLOW_UP_MAX_SECONDS: must be at least FOLLOW_UP_FIRST_SECONDS',
    );
  });

  it.each([
    ['an ARN', 'arn:aws:events:us-east-1:123456789012:event-bus/requests'],
    ['a name with a space', 'requests bus'],
    ['a name past 256 characters', 'b'.repeat(257)],
  ])('fails the cold start on an EVENT_BUS_NAME that is %s', (_, value) => {
    expect(() => readEnvironment('checkStatus', { ...defaults.checkStatus, EVENT_BUS_NAME: value })).toThrow(
      'EVENT_BUS_NAME: must be an event bus name',
    );
  });

  it('fails the cold start on an ATLAS_BASE_URL credentials may not go to, and accepts https or loopback http', () => {
    const load = (url: string) => () =>
      readEnvironment('checkStatus', { ...defaults.checkStatus, ATLAS_BASE_URL: url });

    expect(load('http://cloud.mongodb.com')).toThrow(/ATLAS_BASE_URL: is not https/);
    expect(load('ftp://cloud.mongodb.com')).toThrow(/ATLAS_BASE_URL: is not https/);
    expect(load('https://user:pw@cloud.mongodb.com')).toThrow(/ATLAS_BASE_URL: has a user name or password/);
    expect(load('not a url')).toThrow(/ATLAS_BASE_URL: is not a URL/);
    expect(load('https://cloud.mongodbgov.com')()).toMatchObject({
      atlasBaseUrl: 'https://cloud.mongodbgov.com',
    });
    expect(load('http://127.0.0.1:4010')()).toMatchObject({ atlasBaseUrl: 'http://127.0.0.1:4010' });
  });

  it.each(FUNCTIONS)(
    'fails the cold start of %s naming any one variable it reads that is unset or empty',
    (fn) => {
      for (const name of names(fn)) {
        const { [name]: _, ...without } = defaults[fn];
        expect(() => readEnvironment(fn, without), name).toThrow(new RegExp(`configuration: ${name}: `));
        expect(() => readEnvironment(fn, { ...defaults[fn], [name]: '' }), name).toThrow(
          new RegExp(`configuration: ${name}: `),
        );
      }
    },
  );

  it('reads each variable into the option of its setting, and nothing it does not read', () => {
    const options = readEnvironment('checkStatus', {
      ...defaults.checkStatus,
      MAX_ATTEMPTS: 'many',
      PATH: '/bin',
    });
    expect(Object.keys(options)).toEqual(FUNCTION_VARIABLES.checkStatus);
    expect(options).toMatchObject({
      atlasApiVersion: '2024-11-13',
      allowedProfiles: ['default'],
      pendingAcceptanceDeadlineMinutes: 1440,
      projectConcurrency: 4,
      ledgerTableName: 'ledger',
    });
  });

  it('splits ALLOWED_PROFILES on commas, and fails it when it names no profile', () => {
    const load = (profiles: string) => () =>
      readEnvironment('provision', { ...defaults.provision, ALLOWED_PROFILES: profiles });
    expect(load(' default, team-b ,')()).toMatchObject({ allowedProfiles: ['default', 'team-b'] });
    expect(load(' , ')).toThrow(/ALLOWED_PROFILES: must name at least one profile/);
    expect(load('default,team b')).toThrow(/ALLOWED_PROFILES\.1: each profile must be 1-64/);
  });

  it('fails the cold start when the follow-up cap is below the first follow-up', () => {
    expect(() =>
      readEnvironment('provision', {
        ...defaults.provision,
        FOLLOW_UP_FIRST_SECONDS: '60',
        FOLLOW_UP_MAX_SECONDS: '30',
      }),
    ).toThrow(/FOLLOW_UP_MAX_SECONDS: must be at least FOLLOW_UP_FIRST_SECONDS/);
  });

  // One list of rules across variables, checked by the settings and by every function reading both.
  it.each(AT_LEAST)(
    '$option below $floor fails the settings and the cold start alike',
    ({ option, floor }) => {
      expect(() => resolveSettings({ [floor]: 60, [option]: 30 })).toThrow(
        `${option} (30) must be at least ${floor} (60)`,
      );
      const readers = FUNCTIONS.filter((fn) => FUNCTION_VARIABLES[fn].some((o) => o === option));
      expect(readers.length).toBeGreaterThan(0);
      for (const fn of readers) {
        const env = { ...defaults[fn], [VARIABLES[floor].name]: '60', [VARIABLES[option].name]: '30' };
        expect(() => readEnvironment(fn, env)).toThrow(
          `${VARIABLES[option].name}: must be at least ${VARIABLES[floor].name}`,
        );
        expect(() => readEnvironment(fn, { ...env, [VARIABLES[option].name]: '60' })).not.toThrow();
      }
    },
  );
});

/** Whatever makes room for a setting at one of its bounds, under the rules across settings. */
const TIGHT: SettingsInput = {
  atlasTimeoutMs: 100,
  createSettleSeconds: 1,
  followUpFirstSeconds: 1,
  backoffBaseSeconds: 1,
};
const ROOMY: SettingsInput = {
  provisionTimeoutSeconds: 900,
  checkTimeoutSeconds: 900,
  followUpMaxSeconds: 900,
  backoffCapSeconds: 43_200,
};

/** The first valid settings with `setting` at `value`, alone or with room made around it. */
function settingsWith(setting: string, value: unknown): Settings {
  const attempts = [{}, TIGHT, ROOMY, { ...ROOMY, ...TIGHT }].map(
    (room) => () => resolveSettings({ ...room, [setting]: value }),
  );
  for (const attempt of attempts.slice(0, -1)) {
    try {
      return attempt();
    } catch (error) {
      if (!(error instanceof SettingsError)) throw error;
    }
  }
  return (attempts.at(-1) as () => Settings)();
}

/** Every numeric setting at its minimum and at its maximum, as the settings schema states them. */
const BOUNDS = Object.entries(SettingsSchema.shape).flatMap(([setting, schema]) => {
  const json = z.toJSONSchema(schema.def.innerType, { io: 'input', unrepresentable: 'any' });
  if (json.type !== 'integer') return [];
  return [
    [`${setting} at its minimum ${json.minimum}`, setting, json.minimum],
    [`${setting} at its maximum ${json.maximum}`, setting, json.maximum],
  ] as const;
});

const CASES: [string, () => Settings][] = [
  ['every default', () => resolveSettings()],
  ...BOUNDS.map(
    ([label, setting, value]) => [label, () => settingsWith(setting, value)] as [string, () => Settings],
  ),
  [
    'the longest names and most profiles',
    () =>
      resolveSettings({
        secretPrefix: `${'p'.repeat(399)}/`,
        allowedProfiles: ['a'.repeat(64), 'b', 'c_d-E9'],
        eventBusName: 'e'.repeat(256),
        eventSource: 's'.repeat(256),
        atlasApiVersion: '2025-03-12',
        atlasBaseUrl: 'http://127.0.0.1:4010',
      }),
  ],
  [
    'the shortest names',
    () =>
      resolveSettings({
        secretPrefix: 'p',
        allowedProfiles: ['x'],
        eventBusName: 'b',
        eventSource: 's',
        atlasBaseUrl: 'https://cloud.mongodbgov.com',
      }),
  ],
  [
    'every optional setting set',
    () =>
      resolveSettings({
        createSettleSeconds: 45,
        alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:alarms',
        requesters: [
          {
            name: 'team-a',
            senders: ['111111111111'],
            frontDoorAccounts: ['111111111111'],
            projects: 'ALL',
            profiles: ['default'],
            actions: ['create'],
          },
        ],
        requestEventBusName: 'requests',
        requestEventSources: ['orders', 'com.acme.*'],
      }),
  ],
  [
    'values given as text, as -c passes them',
    () => resolveSettings({ maxAttempts: '7', projectConcurrency: '8' }),
  ],
];

describe('the environment the stack writes from settings', () => {
  it('covers every numeric setting at both of its bounds', () => {
    const numeric = Object.entries(SettingsSchema.shape).filter(
      ([, schema]) => schema.def.innerType.def.type === 'number',
    );
    expect(BOUNDS).toHaveLength(2 * numeric.length);
    expect(BOUNDS.map(([, setting]) => setting)).toContain('projectConcurrency');
  });

  it.each(CASES)('is accepted by each function and read back unchanged: %s', (_, settings) => {
    const s = settings();
    const written = environments(s);
    const derived = {
      ...s,
      ...resources,
      requesterRegistry: resources.requesters,
      leaseSeconds: leaseSeconds(s),
      safetyMarginMs: safetyMarginMs(s),
    };
    for (const fn of FUNCTIONS) {
      // The stack sets exactly the variables the function reads.
      expect(Object.keys(written[fn]), fn).toEqual(names(fn));
      const expected = Object.fromEntries(FUNCTION_VARIABLES[fn].map((o) => [o, derived[o]]));
      expect(readEnvironment(fn, written[fn]), fn).toEqual(expected);
    }
  });

  it('derives the lease from the provisioner timeout and the margin from the checker timeout, once', () => {
    const s = resolveSettings({ provisionTimeoutSeconds: 30, checkTimeoutSeconds: 20 });
    const written = environments(s);
    expect(written.provision.LEASE_SECONDS).toBe('60');
    expect(written.checkStatus.SAFETY_MARGIN_MS).toBe('5000');
    expect(written.checkStatus.PROJECT_CONCURRENCY).toBe('4');
    expect(written.checkStatus).not.toHaveProperty('CREATE_SETTLE_SECONDS');
  });

  it('checks a setting the functions read with the variable’s own schema, so the bounds cannot drift', () => {
    const fromSettings = Object.keys(VARIABLES).filter((o) => o in SettingsSchema.shape) as VariableName[];
    for (const option of fromSettings) {
      const schema = SettingsSchema.shape[option as keyof typeof SettingsSchema.shape];
      expect(schema.def.innerType, option).toBe(VARIABLES[option].schema);
    }
    // The rest are the resources the stack creates and the values it derives from settings.
    expect(Object.keys(VARIABLES).filter((o) => !fromSettings.includes(o as VariableName))).toEqual([
      'ledgerTableName',
      'requesterRegistry',
      'continuationQueueUrl',
      'continuationQueueArn',
      'rejectedQueueUrl',
      'leaseSeconds',
      'safetyMarginMs',
    ]);
  });

  it('is read only through the contract: no other code under functions/ reads process.env', () => {
    const files = readdirSync(join(ROOT, 'functions'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(ROOT, 'functions', f));
    // Not `g.process.env`: the line Stryker's sandbox adds to every mutated file (`npm run mutate`).
    const reads = /(?<![\w$.])process\.env|globalThis\.process\.env/;
    const readers = files.filter((f) => reads.test(readFileSync(f, 'utf8')));
    expect(readers.map((f) => relative(ROOT, f))).toEqual(['functions/lib/runtime/environment.ts']);
  });

  it('loads for `cdk synth` with zod/mini alone, tree-shaken: no AWS SDK, no Powertools, no classic zod', async () => {
    const { metafile } = await build({
      entryPoints: [join(ROOT, 'infra/settings.ts')],
      absWorkingDir: ROOT,
      bundle: true,
      platform: 'node',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(metafile.inputs);
    const packages = new Set(inputs.flatMap((i) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(i)?.[1] ?? []));
    expect([...packages]).toEqual(['zod']);
    expect(inputs.filter((i) => i.includes('zod/v4/classic'))).toEqual([]);
    // `import { z } from 'zod/mini'` would keep all of zod (its locales too); `import * as z` lets
    // esbuild drop them. The English messages are the one locale kept (#lib/zod.ts registers them).
    const [output] = Object.values(metafile.outputs);
    const kept = Object.entries(output?.inputs ?? {}).filter(([, i]) => i.bytesInOutput > 0);
    expect(
      kept.filter(([path]) => /zod\/v4\/(locales\/(?!en\.)|core\/to-json-schema)/.test(path)).map(([p]) => p),
    ).toEqual([]);
    expect(kept.some(([path]) => /zod\/v4\/locales\/en\./.test(path))).toBe(true);
    expect(inputs.filter((i) => !i.includes('node_modules')).sort()).toEqual([
      'functions/lib/atlas/base-url.ts',
      'functions/lib/atlas/types.ts',
      'functions/lib/messages/requesters.ts',
      'functions/lib/runtime/environment.ts',
      'functions/lib/runtime/timing.ts',
      'functions/lib/zod.ts',
      'infra/settings.ts',
    ]);
  });
});

describe('settings', () => {
  it('documents defaults that the functions read back unchanged', () => {
    const s = resolveSettings();
    const provision = readEnvironment('provision', provisionEnvironment(s, resources));
    expect(provision).toMatchObject({
      atlasBaseUrl: 'https://cloud.mongodb.com',
      atlasApiVersion: '2024-11-13',
      secretPrefix: 'cfn/atlas/profile/',
      allowedProfiles: ['default'],
      maxAttempts: 5,
      recordConcurrency: 10,
      leaseSeconds: 120,
      createSettleSeconds: 30,
      requesterRegistry: resources.requesters,
      continuationQueueArn: resources.continuationQueueArn,
    });
    const check = readEnvironment('checkStatus', checkStatusEnvironment(s, resources));
    expect(check.pendingAcceptanceDeadlineMinutes).toBe(1440);
    expect(check.inProgressDeadlineMinutes).toBe(60);
    expect(check.projectConcurrency).toBe(4);
    expect(check.safetyMarginMs).toBe(10_000);
    expect(check.continuationQueueUrl).toBe(resources.continuationQueueUrl);
  });

  it('puts the redrive safety net above the attempt budget and visibility at 6x the timeout', () => {
    const s = resolveSettings({ maxAttempts: 7, provisionTimeoutSeconds: 30 });
    expect(maxReceiveCount(s)).toBeGreaterThan(7);
    expect(visibilityTimeoutSeconds(s)).toBe(180);
  });

  it('fails if a batch cannot start within the function timeout, naming the settings and their values', () => {
    // 100 records 10 at a time: 10 rounds of (2 x 10 s + 3 s), 231 s against the default 60.
    expect(() => resolveSettings({ batchSize: 100 })).toThrow(
      'provisionTimeoutSeconds (60) cannot fit a batch: batchSize (100) at recordConcurrency (10) is 10 round(s) of records, each needing 2 x atlasTimeoutMs (10000) + 3000 ms to start, so at least 231 s',
    );
    // One record at a time: 10 rounds.
    expect(() => resolveSettings({ recordConcurrency: 1 })).toThrow(/10 round\(s\).* at least 231 s/);
    // A single round: what starting one record needs, as before.
    expect(() => resolveSettings({ atlasTimeoutMs: 30_000, createSettleSeconds: 90 })).toThrow(
      /provisionTimeoutSeconds \(60\) cannot fit a batch: .* 1 round\(s\).* at least 64 s/,
    );
    // Exactly fits: 2 rounds of 23 s and the second of start-up.
    expect(resolveSettings({ recordConcurrency: 5, provisionTimeoutSeconds: 47 }).batchSize).toBe(10);
    expect(() => resolveSettings({ recordConcurrency: 5, provisionTimeoutSeconds: 46 })).toThrow(
      /at least 47 s/,
    );
    expect(() => resolveSettings()).not.toThrow();
    expect(() => localSettings()).not.toThrow();
  });

  it('fails if a setting is out of range, naming it and the value given', () => {
    expect(() => resolveSettings({ maxAttempts: 0 })).toThrow(SettingsError);
    expect(() => resolveSettings({ maxAttempts: 0 })).toThrow(/maxAttempts: .* \(given 0\)/);
    expect(() => resolveSettings({ maxAttempts: 51 })).toThrow(/maxAttempts: .* \(given 51\)/);
    expect(() => resolveSettings({ projectConcurrency: 101 })).toThrow(
      /projectConcurrency: .* \(given 101\)/,
    );
  });

  it('fails if the Atlas base URL is one credentials may not go to, as the functions would at cold start', () => {
    expect(() => resolveSettings({ atlasBaseUrl: 'http://cloud.mongodb.com' })).toThrow(
      /atlasBaseUrl: is not https .*\(given "http:\/\/cloud.mongodb.com"\)/,
    );
  });

  it('fails if an unknown setting is given', () => {
    expect(() => resolveSettings({ maxAtempts: 3 } as never)).toThrow(/maxAtempts/);
  });

  it('validates the follow-up spacing: in range, the cap at least the first', () => {
    expect(() => resolveSettings({ followUpFirstSeconds: 0 })).toThrow(
      /followUpFirstSeconds: .* \(given 0\)/,
    );
    expect(() => resolveSettings({ followUpMaxSeconds: 901 })).toThrow(
      /followUpMaxSeconds: .* \(given 901\)/,
    );
    expect(() => resolveSettings({ followUpFirstSeconds: 60, followUpMaxSeconds: 30 })).toThrow(
      /followUpMaxSeconds \(30\) must be at least followUpFirstSeconds \(60\)/,
    );
  });

  it('fails if the backoff cap is below its base', () => {
    expect(() => resolveSettings({ backoffBaseSeconds: 60, backoffCapSeconds: 10 })).toThrow(
      /backoffCapSeconds/,
    );
  });

  it('fails if the front door has a bus but no accepted source, or sources but no bus', () => {
    expect(() => resolveSettings({ requestEventBusName: 'requests' })).toThrow(
      /requestEventSources: name at least one source when requestEventBusName is set/,
    );
    expect(() => resolveSettings({ requestEventSources: ['orders'] })).toThrow(
      /requestEventSources: needs requestEventBusName/,
    );
  });

  it('refuses the settings that admitted every principal to every project, saying what to write instead', () => {
    expect(() => resolveSettings({ requesterAccounts: ['111111111111'] })).toThrow(
      /requesterAccounts: no longer accepted: .*requesters: \[\{ name, senders/,
    );
    expect(() => resolveSettings({ requesterOrganizationId: 'o-a1b2c3d4e5' })).toThrow(
      /requesterOrganizationId: no longer accepted: .*requesters:/,
    );
  });
});
