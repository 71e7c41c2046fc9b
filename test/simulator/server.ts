/**
 * The simulator's node:http server on 127.0.0.1: reads request bodies (up to 1 MiB), answers a
 * handler's unexpected failure with a 500 ApiError, and on close ends every connection at once.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { apiError } from '#test/simulator/answers.ts';

const MAX_BODY_BYTES = 1024 * 1024;

export interface HttpServer {
  readonly url: string;
  close(): Promise<void>;
}

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) req.destroy(new Error('request body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * Listens on 127.0.0.1 (`port` 0: a free one). Once `closing` is aborted, a handler's failure
 * only destroys its socket.
 */
export async function listen(
  port: number,
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  closing: AbortSignal,
): Promise<HttpServer> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (closing.aborted || res.headersSent) {
        res.socket?.destroy();
        return;
      }
      const answer = apiError(500, 'UNEXPECTED_ERROR', `Simulator error: ${(error as Error).message}`);
      res.writeHead(answer.status, answer.headers);
      res.end(JSON.stringify(answer.body));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
