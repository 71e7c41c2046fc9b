/**
 * Sending a request from a TypeScript service: validated by the parser the provisioner uses, so a
 * request that leaves here is never rejected as malformed, then sent to the request queue
 * (`sendRequest`) or put on the EventBridge front door (`putRequestEvent`). Import it as
 * `atlas-backup-private-endpoints-requester`, the package infra/package/requester.ts builds from it.
 */
import { randomUUID } from 'node:crypto';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { REQUESTED_DETAIL_TYPE } from '#messages/front-door.ts';
import { type ProvisionRequest, type ProvisionRequestInput, parseRequest } from '#messages/request.ts';

export { InvalidRequestError } from '#lib/errors.ts';
export type { ProvisionRequest } from '#messages/request.ts';

/** A request as a service writes it: `requestId` is generated when left out, `action` and `profile` default. */
export type RequestToSend = Omit<ProvisionRequestInput, 'requestId'> & { requestId?: string };

export interface SentRequest {
  /** Your correlation id: every status event about this request carries it in `detail.requestIds`. */
  readonly requestId: string;
  /** The request as sent, defaults filled in. */
  readonly request: ProvisionRequest;
}

export interface SendRequestOptions {
  /** The deployment's request queue (stack output RequestQueueUrl). */
  readonly queueUrl: string;
  /** @default - an SQSClient from the environment's region and credentials */
  readonly client?: Pick<SQSClient, 'send'>;
  /** @default crypto.randomUUID */
  readonly newRequestId?: () => string;
}

export interface PutRequestEventOptions {
  /** Name or ARN of the front door bus (a bus in another account by its ARN). */
  readonly eventBusName: string;
  /** Your service's source; the deployment accepts the sources in its `requestEventSources`. */
  readonly source: string;
  /** @default - an EventBridgeClient from the environment's region and credentials */
  readonly client?: Pick<EventBridgeClient, 'send'>;
  /** @default crypto.randomUUID */
  readonly newRequestId?: () => string;
}

/** EventBridge did not accept the request event. */
export class RequestNotSentError extends Error {
  readonly code?: string;
  constructor(message: string, code?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RequestNotSentError';
    this.code = code;
  }
}

/** Built on first use, then reused (as in a warm Lambda). */
let sqs: SQSClient | undefined;
let eventBridge: EventBridgeClient | undefined;
const defaultSqs = (): SQSClient => {
  sqs ??= new SQSClient({});
  return sqs;
};
const defaultEventBridge = (): EventBridgeClient => {
  eventBridge ??= new EventBridgeClient({});
  return eventBridge;
};

/** Validates and completes a request; throws InvalidRequestError naming every field and problem. */
export function prepareRequest(
  request: RequestToSend,
  newRequestId: () => string = randomUUID,
): ProvisionRequest {
  return parseRequest(JSON.stringify({ ...request, requestId: request.requestId ?? newRequestId() }));
}

/** Sends one request to the request queue; returns its requestId and the SQS messageId. */
export async function sendRequest(
  request: RequestToSend,
  options: SendRequestOptions,
): Promise<SentRequest & { readonly messageId: string }> {
  const prepared = prepareRequest(request, options.newRequestId);
  const client = options.client ?? defaultSqs();
  const out = await client.send(
    new SendMessageCommand({ QueueUrl: options.queueUrl, MessageBody: JSON.stringify(prepared) }),
  );
  return { requestId: prepared.requestId, request: prepared, messageId: out.MessageId ?? '' };
}

/** Puts one request on the EventBridge front door; returns its requestId and the event id. */
export async function putRequestEvent(
  request: RequestToSend,
  options: PutRequestEventOptions,
): Promise<SentRequest & { readonly eventId: string }> {
  const prepared = prepareRequest(request, options.newRequestId);
  const client = options.client ?? defaultEventBridge();
  const out = await client.send(
    new PutEventsCommand({
      Entries: [
        {
          EventBusName: options.eventBusName,
          Source: options.source,
          DetailType: REQUESTED_DETAIL_TYPE,
          Detail: JSON.stringify(prepared),
        },
      ],
    }),
  );
  const entry = out.Entries?.[0];
  if ((out.FailedEntryCount ?? 0) > 0 || !entry?.EventId) {
    throw new RequestNotSentError(
      `EventBridge did not accept the request ${prepared.requestId}: ${entry?.ErrorCode ?? 'no event id'} ${entry?.ErrorMessage ?? ''}`.trim(),
      entry?.ErrorCode,
    );
  }
  return { requestId: prepared.requestId, request: prepared, eventId: entry.EventId };
}
