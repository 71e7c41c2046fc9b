/**
 * Carries the front door's messages from the moto queue its rule delivers to, to the request
 * queue on ElasticMQ: moto's EventBridge can deliver only to moto's own queues. Each body goes on
 * unchanged (the rule already made it the event's detail); a message is deleted once forwarded.
 */
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

export interface FrontDoorRelayOptions {
  from: { sqs: SQSClient; url: string };
  to: { sqs: SQSClient; url: string };
  onError: (error: Error) => void;
}

export interface FrontDoorRelay {
  stop(): Promise<void>;
}

export function startFrontDoorRelay(options: FrontDoorRelayOptions): FrontDoorRelay {
  const stopping = new AbortController();
  const run = async () => {
    while (!stopping.signal.aborted) {
      try {
        const { Messages = [] } = await options.from.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: options.from.url,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 1,
          }),
          { abortSignal: stopping.signal },
        );
        if (Messages.length === 0) continue;
        const entries = Messages.map((m, i) => ({ Id: String(i), MessageBody: m.Body ?? '' }));
        const sent = await options.to.sqs.send(
          new SendMessageBatchCommand({ QueueUrl: options.to.url, Entries: entries }),
        );
        const forwarded = new Set((sent.Successful ?? []).map((s) => s.Id));
        const done = Messages.flatMap((m, i) =>
          forwarded.has(String(i)) ? [{ Id: String(i), ReceiptHandle: m.ReceiptHandle }] : [],
        );
        if (done.length > 0) {
          await options.from.sqs.send(
            new DeleteMessageBatchCommand({ QueueUrl: options.from.url, Entries: done }),
          );
        }
        for (const failed of sent.Failed ?? []) {
          options.onError(new Error(`the front door relay could not forward a message: ${failed.Message}`));
        }
      } catch (error) {
        if (stopping.signal.aborted) return;
        options.onError(error as Error);
        await new Promise((ok) => setTimeout(ok, 500));
      }
    }
  };
  const running = run();
  return {
    async stop() {
      stopping.abort();
      await running;
    },
  };
}
