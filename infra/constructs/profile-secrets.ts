/**
 * The Atlas profile secrets (`prefix + profile`), created and rotated outside this stack: the
 * stack only references them and grants reading exactly these, nothing under the prefix beyond.
 */
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

export interface ProfileSecretsProps {
  /** Secret name prefix, e.g. `cfn/atlas/profile/`. */
  readonly prefix: string;
  /** Profiles requests may name; one secret each. */
  readonly profiles: readonly string[];
}

export class ProfileSecrets extends Construct {
  readonly secrets: readonly ISecret[];

  constructor(scope: Construct, id: string, props: ProfileSecretsProps) {
    super(scope, id);
    this.secrets = props.profiles.map((profile) =>
      Secret.fromSecretNameV2(this, `Profile-${profile}`, `${props.prefix}${profile}`),
    );
  }

  /**
   * Grants GetSecretValue only (all the Powertools secrets provider calls). Secrets Manager appends
   * six random characters to a secret's ARN, which `-??????` matches and nothing longer does.
   */
  grantRead(grantee: IGrantable): Grant {
    return Grant.addToPrincipal({
      grantee,
      actions: ['secretsmanager:GetSecretValue'],
      resourceArns: this.secrets.map((secret) => `${secret.secretArn}-??????`),
    });
  }
}
