import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '#infra/app.ts';
import { ensureInstalled } from '#test/local/emulators.ts';
import { SAMPLE_REQUESTERS } from '#test/support/sample-requesters.ts';

const CFN_LINT = resolve(import.meta.dirname, '../../.local/venv/bin/cfn-lint');
// The feature flags `cdk synth` applies (cdk.json), with bundling skipped.
const CONTEXT = {
  ...JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context,
  'aws:cdk:bundling-stacks': [],
};

describe('cfn-lint (runs the real cfn-lint on synthesized templates)', () => {
  const outdirs: string[] = [];
  const synth = (context: Record<string, unknown>) => {
    const outdir = mkdtempSync(join(tmpdir(), 'cfn-lint-'));
    outdirs.push(outdir);
    const assembly = createApp({ outdir, context: { ...CONTEXT, ...context } }).synth();
    return assembly.stacks.map((s) => join(outdir, s.templateFile));
  };

  beforeAll(() => ensureInstalled());

  afterAll(() => {
    for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
    CloudAssembly.cleanupTemporaryDirectories();
  });

  it('finds nothing in the templates with default settings and with every option set', async () => {
    // GIVEN the default app, one with the default requester's front door, and one with an alarm
    // topic, a named bus, large batches, two profiles, and a registry of requesters: in other
    // accounts by account id and by role, on the front door, an operator, one with its own bus
    const templates = [
      ...synth({}),
      ...synth({
        stackName: 'AtlasBackupPrivateEndpointsAllOptions',
        alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:atlas-alarms',
        eventBusName: 'atlas-events',
        batchSize: '50',
        // Five rounds of ten records, each with time for its list and create: 116 s at least.
        provisionTimeoutSeconds: '120',
        allowedProfiles: 'default,team-b',
        scheduleRateMinutes: '1',
        requestEventBusName: 'platform-requests',
        requestEventSources: 'orders,com.acme.*',
        settings: {
          requesters: SAMPLE_REQUESTERS,
        },
      }),
      ...synth({
        stackName: 'AtlasBackupPrivateEndpointsFrontDoor',
        requestEventBusName: 'requests',
        requestEventSources: 'orders',
      }),
    ];
    // WHEN cfn-lint checks them
    const result = await promisify(execFile)(CFN_LINT, ['--', ...templates]).then(
      ({ stdout }) => ({ code: 0, stdout }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({
        code: error.code ?? -1,
        stdout: `${error.stdout ?? ''}${error.stderr ?? ''}`,
      }),
    );
    // THEN it exits 0; on failure the message shows every finding
    expect(result.stdout, result.stdout).toBe('');
    expect(result.code).toBe(0);
  });
});
