/** The OAuth 2.0 token and revoke endpoints: client credentials in HTTP Basic, a form body. */
import { oauthError } from '#test/simulator/answers.ts';
import { DIGEST_REALM } from '#test/simulator/auth.ts';
import { deliver, drop, type Exchange, type SimulatorParts } from '#test/simulator/exchange.ts';
import { faultAnswer } from '#test/simulator/faults.ts';

const OAUTH_FORM = 'application/x-www-form-urlencoded';

/** Answers a request to /api/oauth/token or /api/oauth/revoke, after any fault that hits it. */
export async function handleOAuth(
  parts: SimulatorParts,
  exchange: Exchange,
  operation: 'token' | 'revoke',
): Promise<void> {
  const { req, record, raw } = exchange;
  const { credentials } = parts;
  record.operation = operation;
  if (req.headers.authorization?.toLowerCase().startsWith('basic ')) record.auth = 'basic';
  if (req.method !== 'POST') {
    record.specViolations.push(`${req.method} is not allowed on the OAuth ${operation} endpoint`);
    return deliver(parts, exchange, oauthError(405, 'invalid_request', `Use POST for ${operation}.`));
  }
  const fault = parts.faults.take(operation, undefined);
  if (fault?.kind === 'reset') return drop(exchange);
  if (fault?.kind === 'delay') await parts.pause(fault.ms);
  if (fault?.kind === 'status') return deliver(parts, exchange, faultAnswer(fault, true));
  const lost = fault?.kind === 'lostResponse';

  const contentType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (contentType !== OAUTH_FORM) record.specViolations.push(`Content-Type must be ${OAUTH_FORM}`);
  const form = new URLSearchParams(raw.toString('utf8'));
  const clientId = credentials.basicClient(req.headers.authorization);
  if (!clientId) {
    if (record.auth !== 'basic')
      record.specViolations.push('the OAuth endpoints take HTTP Basic client credentials');
    const answer = oauthError(401, 'invalid_client', 'Client authentication failed.');
    answer.headers['www-authenticate'] = `Basic realm="${DIGEST_REALM}"`;
    return deliver(parts, exchange, answer, { lost });
  }
  if (contentType !== OAUTH_FORM) {
    return deliver(
      parts,
      exchange,
      oauthError(400, 'invalid_request', `Content-Type must be ${OAUTH_FORM}.`),
      {
        lost,
      },
    );
  }
  if (operation === 'revoke') {
    const token = form.get('token');
    if (!token) {
      record.specViolations.push('revoke needs the token parameter');
      return deliver(parts, exchange, oauthError(400, 'invalid_request', 'The token parameter is missing.'), {
        lost,
      });
    }
    credentials.revokeToken(clientId, token);
    return deliver(parts, exchange, { status: 200, headers: { 'cache-control': 'no-store' } }, { lost });
  }
  if (form.get('grant_type') !== 'client_credentials') {
    record.specViolations.push('grant_type must be client_credentials');
    return deliver(
      parts,
      exchange,
      oauthError(400, 'unsupported_grant_type', 'Only grant_type=client_credentials is supported.'),
      { lost },
    );
  }
  const token = credentials.issueToken(clientId);
  if (!token) {
    return deliver(
      parts,
      exchange,
      oauthError(403, 'access_denied', 'The service account has reached its limit of active access tokens.'),
      { lost },
    );
  }
  return deliver(
    parts,
    exchange,
    {
      status: 200,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' },
      body: { access_token: token, expires_in: credentials.tokenTtlSeconds, token_type: 'Bearer' },
    },
    { lost },
  );
}
