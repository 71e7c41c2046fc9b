/**
 * The Lambda defaults both functions share, so the stack never repeats them: Node 24 on arm64,
 * ESM bundled by the local esbuild (minified, source maps), no X-Ray tracing (nothing in the
 * functions records segments, and active tracing needs an `xray:*` grant on "*"), Powertools
 * service and namespace, and a log group of its own with a retention, written through a role scoped to
 * that log group (no AWSLambdaBasicExecutionRole, whose log permissions cover every log group).
 */
import { join, resolve } from 'node:path';
import type { Duration } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, type CfnFunction, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import {
  type BundlingOptions,
  NodejsFunction,
  type NodejsFunctionProps,
  OutputFormat,
} from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '#runtime/metric-names.ts';

/** The repository root: entries are resolved from it and its package-lock.json pins the build. */
export const PROJECT_ROOT = resolve(import.meta.dirname, '../..');

/** esbuild options of every function; test/bench/bundle-size.ts builds with exactly these. */
export const BUNDLING: BundlingOptions = {
  format: OutputFormat.ESM,
  target: 'node24',
  minify: true,
  sourceMap: true,
  // Stack traces need the mappings, not a second copy of the sources.
  sourcesContent: false,
  mainFields: ['module', 'main'],
  // ESM output has no `require`; bundled CommonJS dependencies still call it for Node built-ins.
  banner: "import { createRequire } from 'node:module';const require = createRequire(import.meta.url);",
  // Deploy the SDK version the tests ran against, not whichever one the runtime carries today.
  bundleAwsSDK: true,
};

/** The variables every function gets on top of its own settings (the bench sets them too). */
export function runtimeEnvironment(serviceName: string): Record<string, string> {
  return {
    POWERTOOLS_SERVICE_NAME: serviceName,
    POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    NODE_OPTIONS: '--enable-source-maps',
  };
}

export interface AppFunctionProps
  extends Pick<
    NodejsFunctionProps,
    'description' | 'retryAttempts' | 'maxEventAge' | 'reservedConcurrentExecutions'
  > {
  /** Handler module relative to the repository root; it exports `handler`. */
  readonly entry: string;
  /** Powertools service name: the logger's `service` and the metrics' `service` dimension. */
  readonly serviceName: string;
  readonly timeout: Duration;
  readonly logRetention: RetentionDays;
  /** The function's own settings; the Powertools and Node variables are added here. */
  readonly environment: Record<string, string>;
  /** @default 256 (arm64 at 128 MB makes TLS handshakes to Atlas slow) */
  readonly memorySize?: number;
}

/** A `NodejsFunction` with the project's defaults and its own log group (`this.logGroup`). */
export class AppFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: AppFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}LogGroup`, { retention: props.logRetention });
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${id}`,
    });
    logGroup.grantWrite(role);
    super(scope, id, {
      entry: join(PROJECT_ROOT, props.entry),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout,
      description: props.description,
      retryAttempts: props.retryAttempts,
      maxEventAge: props.maxEventAge,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      tracing: Tracing.DISABLED,
      logGroup,
      role,
      bundling: BUNDLING,
      environment: { ...props.environment, ...runtimeEnvironment(props.serviceName) },
    });
    // CDK makes a function depend on its role and the role's policies; the policies are what
    // matter, the role half repeats the GetAtt, which cfn-lint reports as W3005.
    (this.node.defaultChild as CfnFunction).addMetadata('cfn-lint', { config: { ignore_checks: ['W3005'] } });
  }
}
