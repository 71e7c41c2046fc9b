/**
 * A fault-injecting HTTP proxy in front of an AWS API emulator (moto or ElasticMQ), for outages in
 * the local run and the soak: the functions' real AWS SDK clients talk to the proxy
 * (AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_SQS), which forwards every call unchanged unless an outage
 * covers it, and then answers as the service does when it is down: a 500 `InternalFailure`, a
 * throttling error, or (PutEvents) a partial failure with every entry refused. The SDK's own
 * retries meet the outage too, as they would in AWS.
 *
 * An operation is named as the SDK sends it: the `X-Amz-Target` header of the JSON protocols
 * (`AWSEvents.PutEvents`, `DynamoDB_20120810.UpdateItem`, `secretsmanager.GetSecretValue`,
 * `AmazonSQS.SendMessage`) or the `Action` of the query protocol.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The AWS services the functions call, by the prefix of their `X-Amz-Target` or the query endpoint. */
export type Service = 'events' | 'dynamodb' | 'secretsmanager' | 'sqs';

/** How a service answers while it is down. */
export type FaultKind =
  /** 500 InternalFailure (retried by the SDK, then thrown). */
  | 'error'
  /** 400 ThrottlingException (DynamoDB: ProvisionedThroughputExceededException). */
  | 'throttle'
  /** PutEvents only: 200 with every entry refused (FailedEntryCount = entries). */
  | 'partial';

export interface Outage {
  service: Service;
  /** Only these operations (e.g. 'PutEvents', 'UpdateItem'); absent: every operation of the service. */
  operations?: readonly string[];
  kind: FaultKind;
  /** Epoch ms the outage starts and ends (end excluded). */
  from: number;
  until: number;
}

export interface FaultProxy {
  /** The proxy's endpoint, to give the SDK in place of the emulator's. */
  readonly endpoint: string;
  /** Adds an outage; returns a function that ends it at once. */
  add(outage: Outage): () => void;
  /** Calls answered with a fault, by service and operation ("events PutEvents"). */
  readonly refused: ReadonlyMap<string, number>;
  /** Calls forwarded, by service and operation. */
  readonly forwarded: ReadonlyMap<string, number>;
  stop(): Promise<void>;
}

const TARGET_PREFIX: Record<string, Service> = {
  AWSEvents: 'events',
  DynamoDB_20120810: 'dynamodb',
  secretsmanager: 'secretsmanager',
  AmazonSQS: 'sqs',
};

/** The service and operation of a call, from its target header or its query Action. */
export function operationOf(
  headers: IncomingMessage['headers'],
  body: string,
  fallback: Service,
): { service: Service; operation: string } {
  const target = headers['x-amz-target'];
  if (typeof target === 'string' && target.includes('.')) {
    const [prefix = '', operation = ''] = target.split('.');
    return { service: TARGET_PREFIX[prefix] ?? fallback, operation };
  }
  const action = new URLSearchParams(body).get('Action');
  return { service: fallback, operation: action ?? 'unknown' };
}

const json = (res: ServerResponse, status: number, payload: object) => {
  const text = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'x-amzn-requestid': `fault-${Date.now()}`,
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
};

/** The answer of a service that is down, in the shape its protocol uses. */
function answerFault(
  res: ServerResponse,
  service: Service,
  operation: string,
  kind: FaultKind,
  body: string,
) {
  if (kind === 'partial' && operation === 'PutEvents') {
    const entries = (JSON.parse(body || '{}') as { Entries?: unknown[] }).Entries ?? [];
    json(res, 200, {
      FailedEntryCount: entries.length,
      Entries: entries.map(() => ({ ErrorCode: 'InternalFailure', ErrorMessage: 'injected outage' })),
    });
    return;
  }
  if (kind === 'throttle') {
    const type = service === 'dynamodb' ? 'ProvisionedThroughputExceededException' : 'ThrottlingException';
    json(res, 400, { __type: type, message: 'injected outage: rate exceeded' });
    return;
  }
  json(res, 500, { __type: 'InternalFailure', message: 'injected outage' });
}

/**
 * Starts a proxy on a free loopback port forwarding to `target` (an emulator's endpoint). Calls
 * that name no target header count as `service` (the query protocol of SQS, say).
 */
export async function startFaultProxy(options: {
  target: string;
  service: Service;
  now?: () => number;
}): Promise<FaultProxy> {
  const now = options.now ?? Date.now;
  const outages = new Set<Outage>();
  const refused = new Map<string, number>();
  const forwarded = new Map<string, number>();
  const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = raw.toString('utf8');
      const { service, operation } = operationOf(req.headers, body, options.service);
      const at = now();
      const outage = [...outages].find(
        (o) =>
          o.service === service &&
          at >= o.from &&
          at < o.until &&
          (o.operations === undefined || o.operations.includes(operation)),
      );
      const key = `${service} ${operation}`;
      if (outage) {
        count(refused, key);
        answerFault(res, service, operation, outage.kind, body);
        return;
      }
      count(forwarded, key);
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(
          ([name]) => !['host', 'connection', 'content-length'].includes(name),
        ),
      ) as Record<string, string>;
      fetch(new URL(req.url ?? '/', options.target), {
        method: req.method ?? 'GET',
        headers,
        ...(raw.length > 0 && { body: raw }),
      })
        .then(async (answer) => {
          const payload = Buffer.from(await answer.arrayBuffer());
          const out: Record<string, string> = {};
          answer.headers.forEach((value, name) => {
            if (!['content-encoding', 'transfer-encoding', 'connection', 'content-length'].includes(name))
              out[name] = value;
          });
          res.writeHead(answer.status, { ...out, 'content-length': payload.length });
          res.end(payload);
        })
        .catch((error: Error) => {
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`fault proxy: ${error.message}`);
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    add(outage) {
      outages.add(outage);
      return () => outages.delete(outage);
    },
    refused,
    forwarded,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
