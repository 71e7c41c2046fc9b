/**
 * The Lambda defaults both functions share, so the stack never repeats them: Node 24 on arm64,
 * the pre-built bundle of each function (`npm run build` writes it, infra/package/functions.ts;
 * the package ships it), no X-Ray tracing (nothing in the functions records segments, and active
 * tracing needs an `xray:*` grant on "*"), Powertools service and namespace, source maps, and a
 * log group of its own with a retention, written through a role scoped to that log group (no
 * AWSLambdaBasicExecutionRole, whose log permissions cover every log group).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type Duration, Stack } from 'aws-cdk-lib';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import { ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  Architecture,
  type CfnFunction,
  Code,
  type FunctionProps,
  Function as LambdaFunction,
  Runtime,
  Tracing,
} from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { SettingsError } from '#infra/settings.ts';
import { METRICS_NAMESPACE } from '#runtime/metric-names.ts';

/** The package's name: its root is the folder whose package.json names it. */
export const PACKAGE_NAME = 'atlas-backup-private-endpoints';

/** The package root above `from`: this repository, or the installed package in an app's node_modules. */
export function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === PACKAGE_NAME) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json of ${PACKAGE_NAME} above ${from}`);
  }
}

/** The repository root (or, in an installed package, the package's). */
export const PROJECT_ROOT = packageRoot(import.meta.dirname);

/** Each function: its handler module (relative to the root) and its bundle's folder under dist/functions. */
export const FUNCTIONS = {
  provisioner: { entry: 'functions/provision/handler.ts', bundle: 'provision' },
  statusChecker: { entry: 'functions/check-status/handler.ts', bundle: 'check-status' },
} as const;
export type FunctionName = keyof typeof FUNCTIONS;

/** The folder of a function's pre-built bundle (`index.mjs` and its map). */
export function bundleDir(name: FunctionName): string {
  const dir = join(PROJECT_ROOT, 'dist/functions', FUNCTIONS[name].bundle);
  if (!existsSync(join(dir, 'index.mjs'))) {
    throw new Error(
      `the bundle of the ${name} function is missing (${dir}/index.mjs): run \`npm run build\``,
    );
  }
  return dir;
}

/** The variables every function gets on top of its own settings (the bench sets them too). */
export function runtimeEnvironment(serviceName: string): Record<string, string> {
  return {
    POWERTOOLS_SERVICE_NAME: serviceName,
    POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    NODE_OPTIONS: '--enable-source-maps',
  };
}

/** Lambda's limit on a function's environment: the keys and values together, in bytes. */
export const ENVIRONMENT_MAX_BYTES = 4 * 1024;

/**
 * Bytes a resource attribute (Ref, Fn::GetAtt: a queue URL or ARN, a table name) is counted as
 * before it is known: more than any of them resolves to (an SQS queue name has at most 80
 * characters, its URL and ARN at most about 140 with the longest region and partition).
 */
export const UNRESOLVED_ATTRIBUTE_BYTES = 200;
/** The most bytes each pseudo parameter resolves to. */
const PSEUDO_BYTES: Record<string, number> = {
  'AWS::AccountId': 12,
  'AWS::Partition': 10, // aws-us-gov
  'AWS::Region': 16, // e.g. ap-southeast-3 and longer ones to come
  'AWS::URLSuffix': 16, // amazonaws.com.cn
};

/**
 * The most bytes the environment can take once deployed, measured on its CloudFormation form:
 * literal text as it is, JSON escapes included; each pseudo parameter at its longest; any other
 * reference at UNRESOLVED_ATTRIBUTE_BYTES.
 */
export function environmentBytes(scope: Construct, environment: Record<string, string>): number {
  const bytes = (value: unknown): number => {
    if (typeof value === 'string') return Buffer.byteLength(value);
    if (typeof value === 'number') return String(value).length;
    const o = value as Record<string, unknown>;
    if (typeof o.Ref === 'string') return PSEUDO_BYTES[o.Ref] ?? UNRESOLVED_ATTRIBUTE_BYTES;
    if (Array.isArray(o['Fn::Join'])) {
      const [separator, parts] = o['Fn::Join'] as [string, unknown[]];
      return (
        parts.reduce<number>((sum, part) => sum + bytes(part), 0) + separator.length * (parts.length - 1)
      );
    }
    return UNRESOLVED_ATTRIBUTE_BYTES;
  };
  const resolved = Stack.of(scope).resolve(environment) as Record<string, unknown>;
  return Object.entries(resolved).reduce(
    (sum, [key, value]) => sum + Buffer.byteLength(key) + bytes(value),
    0,
  );
}

/** Where the functions run: a VPC of the app's, when its platform requires one. */
export interface FunctionNetwork {
  /**
   * Runs the function in this VPC. Its subnets need a way to Atlas and to the AWS APIs it calls
   * (SQS, DynamoDB, EventBridge, Secrets Manager): a NAT gateway, or VPC endpoints and a NAT for Atlas.
   * @default - no VPC
   */
  readonly vpc?: IVpc;
  /** @default - the VPC's private subnets */
  readonly vpcSubnets?: SubnetSelection;
  /** @default - a security group of its own with all outbound traffic allowed */
  readonly securityGroups?: ISecurityGroup[];
}

export interface AppFunctionProps
  extends Pick<
      FunctionProps,
      'description' | 'retryAttempts' | 'maxEventAge' | 'reservedConcurrentExecutions'
    >,
    FunctionNetwork {
  /** Which function: its bundle is dist/functions/<folder>/index.mjs. */
  readonly function: FunctionName;
  /** Powertools service name: the logger's `service` and the metrics' `service` dimension. */
  readonly serviceName: string;
  readonly timeout: Duration;
  readonly logRetention: RetentionDays;
  /** The function's own settings; the Powertools and Node variables are added here. */
  readonly environment: Record<string, string>;
  /** @default 256 (arm64 at 128 MB makes TLS handshakes to Atlas slow) */
  readonly memorySize?: number;
}

/** A Lambda function of a pre-built bundle, with the project's defaults and its own log group (`this.logGroup`). */
export class AppFunction extends LambdaFunction {
  /** The most bytes its environment can take once deployed (environmentBytes), at most ENVIRONMENT_MAX_BYTES. */
  readonly environmentBytes: number;

  constructor(scope: Construct, id: string, props: AppFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}LogGroup`, { retention: props.logRetention });
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${id}`,
    });
    logGroup.grantWrite(role);
    // A function in a VPC manages its network interfaces (a role given to a function gets no
    // such policy from CDK); AWSLambdaENIManagementAccess is exactly that, without logs:* on "*".
    if (props.vpc) {
      role.addManagedPolicy(
        ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaENIManagementAccess'),
      );
    }
    const environment = { ...props.environment, ...runtimeEnvironment(props.serviceName) };
    const size = environmentBytes(scope, environment);
    if (size > ENVIRONMENT_MAX_BYTES) {
      const largest = Object.entries(environment)
        .map(([key, value]) => [key, environmentBytes(scope, { [key]: value })] as const)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 2)
        .map(([key, n]) => `${key} ${n}`)
        .join(', ');
      throw new SettingsError(
        `invalid settings: the environment of ${id} could take up to ${size} bytes, over Lambda's ${ENVIRONMENT_MAX_BYTES} (each queue URL or ARN counted as ${UNRESOLVED_ATTRIBUTE_BYTES}); largest: ${largest}. Fewer requesters, or fewer projects or profiles in their grants, make it fit`,
      );
    }
    super(scope, id, {
      code: Code.fromAsset(bundleDir(props.function)),
      handler: 'index.handler',
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
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
      environment,
    });
    this.environmentBytes = size;
    // CDK makes a function depend on its role and the role's policies; the policies are what
    // matter, the role half repeats the GetAtt, which cfn-lint reports as W3005.
    (this.node.defaultChild as CfnFunction).addMetadata('cfn-lint', { config: { ignore_checks: ['W3005'] } });
  }
}
