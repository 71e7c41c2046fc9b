import { describe, expect, it } from 'vitest';
import {
  checkStatusEnvironment,
  maxReceiveCount,
  provisionEnvironment,
  resolveSettings,
  SettingsError,
  visibilityTimeoutSeconds,
} from '#infra/settings.ts';
import { CheckStatusConfigSchema, ConfigError, loadConfig, ProvisionConfigSchema } from '#lib/config.ts';

const resources = {
  requestQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/requests',
  dlqUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/dlq',
  rejectedQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/rejected',
  tableName: 'ledger',
};

describe('loadConfig', () => {
  it('fails the cold start naming each missing or bad variable', () => {
    const load = () => loadConfig(ProvisionConfigSchema, { LEDGER_TABLE_NAME: 't', MAX_ATTEMPTS: 'many' });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/REQUEST_QUEUE_URL/);
    expect(load).toThrow(/DLQ_URL/);
    expect(load).toThrow(/MAX_ATTEMPTS/);
  });

  it('fails the cold start on an ATLAS_BASE_URL credentials may not go to, and accepts https or loopback http', () => {
    const load = (url: string) => () =>
      loadConfig(CheckStatusConfigSchema, {
        LEDGER_TABLE_NAME: 't',
        REQUEST_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/requests',
        ATLAS_BASE_URL: url,
      });

    expect(load('http://cloud.mongodb.com')).toThrow(/ATLAS_BASE_URL: is not https/);
    expect(load('ftp://cloud.mongodb.com')).toThrow(/ATLAS_BASE_URL: is not https/);
    expect(load('https://user:pw@cloud.mongodb.com')).toThrow(/ATLAS_BASE_URL: has a user name or password/);
    expect(load('not a url')).toThrow(/ATLAS_BASE_URL: is not a URL/);
    expect(load('https://cloud.mongodbgov.com')()).toMatchObject({
      ATLAS_BASE_URL: 'https://cloud.mongodbgov.com',
    });
    expect(load('http://127.0.0.1:4010')()).toMatchObject({ ATLAS_BASE_URL: 'http://127.0.0.1:4010' });
  });

  it('treats an empty variable as unset, so its default applies', () => {
    const config = loadConfig(CheckStatusConfigSchema, {
      LEDGER_TABLE_NAME: 't',
      REQUEST_QUEUE_URL: resources.requestQueueUrl,
      ATLAS_API_VERSION: '',
    });
    expect(config.ATLAS_API_VERSION).toBe('2024-11-13');
    expect(config.ALLOWED_PROFILES).toEqual(['default']);
  });
});

describe('settings', () => {
  it('documents defaults that the functions read back unchanged', () => {
    const s = resolveSettings();
    const provision = loadConfig(ProvisionConfigSchema, provisionEnvironment(s, resources));
    expect(provision).toMatchObject({
      ATLAS_BASE_URL: 'https://cloud.mongodb.com',
      ATLAS_API_VERSION: '2024-11-13',
      SECRET_PREFIX: 'cfn/atlas/profile/',
      ALLOWED_PROFILES: ['default'],
      MAX_ATTEMPTS: 5,
      RECORD_CONCURRENCY: 10,
      DLQ_URL: resources.dlqUrl,
    });
    const check = loadConfig(CheckStatusConfigSchema, checkStatusEnvironment(s, resources));
    expect(check.PENDING_ACCEPTANCE_DEADLINE_MINUTES).toBe(1440);
    expect(check.IN_PROGRESS_DEADLINE_MINUTES).toBe(60);
    expect(check.REQUEST_QUEUE_URL).toBe(resources.requestQueueUrl);
  });

  it('puts the redrive safety net above the attempt budget and visibility at 6x the timeout', () => {
    const s = resolveSettings({ maxAttempts: 7, provisionTimeoutSeconds: 30 });
    expect(maxReceiveCount(s)).toBeGreaterThan(7);
    expect(visibilityTimeoutSeconds(s)).toBe(180);
  });

  it('fails if a setting is out of range, naming it and the value given', () => {
    expect(() => resolveSettings({ maxAttempts: 0 })).toThrow(SettingsError);
    expect(() => resolveSettings({ maxAttempts: 0 })).toThrow(/maxAttempts: .* \(given 0\)/);
  });

  it('fails if an unknown setting is given', () => {
    expect(() => resolveSettings({ maxAtempts: 3 } as never)).toThrow(/maxAtempts/);
  });

  it('validates the follow-up spacing: in range, the cap at least the first, read back by the provisioner', () => {
    const s = resolveSettings();
    expect(loadConfig(ProvisionConfigSchema, provisionEnvironment(s, resources))).toMatchObject({
      FOLLOW_UP_FIRST_SECONDS: 10,
      FOLLOW_UP_MAX_SECONDS: 30,
    });
    expect(() => resolveSettings({ followUpFirstSeconds: 0 })).toThrow(
      /followUpFirstSeconds: .* \(given 0\)/,
    );
    expect(() => resolveSettings({ followUpMaxSeconds: 901 })).toThrow(
      /followUpMaxSeconds: .* \(given 901\)/,
    );
    expect(() => resolveSettings({ followUpFirstSeconds: 60, followUpMaxSeconds: 30 })).toThrow(
      /followUpMaxSeconds \(30\) must be at least followUpFirstSeconds \(60\)/,
    );
    expect(() =>
      loadConfig(ProvisionConfigSchema, {
        ...provisionEnvironment(s, resources),
        FOLLOW_UP_FIRST_SECONDS: '60',
        FOLLOW_UP_MAX_SECONDS: '30',
      }),
    ).toThrow(/FOLLOW_UP_MAX_SECONDS: must be at least FOLLOW_UP_FIRST_SECONDS/);
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

  it('fails if a requester account or organization id is malformed, naming the value', () => {
    expect(() => resolveSettings({ requesterAccounts: ['12345'] })).toThrow(
      /requesterAccounts\.0: .*\(given "12345"\)/,
    );
    expect(() => resolveSettings({ requesterOrganizationId: 'r-abc' })).toThrow(
      /requesterOrganizationId: .*\(given "r-abc"\)/,
    );
  });
});
