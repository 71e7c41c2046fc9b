/**
 * The CDK app (`npx cdk synth`, `npx cdk deploy`): one stack, checked by cdk-nag's AwsSolutions
 * pack on every synth, so an unacknowledged finding fails it. Each synth builds the functions'
 * bundles (dist/functions) first. An existing CDK app adds the
 * `AtlasBackupPrivateEndpoints` construct (infra/index.ts) to a stack of its own instead.
 *
 * Settings (infra/settings.ts documents each one and its default) come from CDK context:
 *   - a `settings` object in cdk.json:
 *       "context": { "settings": { "maxConcurrency": 3, "allowedProfiles": ["default", "ops"] } }
 *   - one `-c name=value` per setting, which wins over cdk.json (lists are comma-separated):
 *       npx cdk deploy -c maxConcurrency=3 -c allowedProfiles=default,ops
 *   - `-c stackName=...` names the stack (default AtlasBackupPrivateEndpoints), e.g. for a second copy.
 * Invalid settings fail synth with a message naming the setting and the value given. Code that
 * builds the stack itself passes `settings` as a stack prop instead.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, type AppProps, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { EXIT_USAGE } from '#infra/ops/cli.ts';
import { SettingsError, type SettingsInput, SettingsSchema } from '#infra/settings.ts';
import { DEFAULT_STACK_NAME } from './names.ts';
import { AtlasBackupPrivateEndpointsStack } from './stack.ts';

/** Builds the app and its stack from the context in `props` (or cdk.json and `-c` under the CLI). */
export function createApp(props?: AppProps): App {
  const app = new App(props);
  const stackName = app.node.tryGetContext('stackName') ?? DEFAULT_STACK_NAME;
  new AtlasBackupPrivateEndpointsStack(app, stackName, { settings: settingsFromContext(app) });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return app;
}

function settingsFromContext(app: App): SettingsInput {
  let base: unknown = app.node.tryGetContext('settings') ?? {};
  if (typeof base === 'string') {
    try {
      base = JSON.parse(base);
    } catch {
      throw new SettingsError(
        `invalid settings: the "settings" context is not a JSON object (given ${base})`,
      );
    }
  }
  const overrides = Object.entries(SettingsSchema.shape).flatMap(([name, schema]) => {
    const value: unknown = app.node.tryGetContext(name);
    if (value === undefined) return [];
    const isList = schema.def.innerType.def.type === 'array';
    return [[name, isList && typeof value === 'string' ? value.split(',').map((v) => v.trim()) : value]];
  });
  // resolveSettings validates the shape and every value, naming any that is wrong.
  return { ...(base as object), ...Object.fromEntries(overrides) } as SettingsInput;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // The stack deploys the bundles in dist/functions: built here from the sources, as `npm run build` builds them.
  await (await import('./package/functions.ts')).buildFunctions();
  try {
    createApp().synth();
  } catch (error) {
    // A settings mistake is the operator's to fix: the message, not a stack trace; exit 2 as any
    // command called with a bad value (infra/ops/cli.ts).
    if (!(error instanceof SettingsError)) throw error;
    console.error(error.message);
    process.exitCode = EXIT_USAGE;
  }
}
