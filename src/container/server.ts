// SageMaker's container contract over node:http: GET /ping answers 200 only once the model is loaded,
// POST /invocations hands the body to the runtime. Anything a runtime throws becomes a status and a
// plain-text message, which berth returns to the caller as ModelError.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { InvocationError } from './runtime.js';
import type { Runtime } from './runtime.js';

export interface ContainerServerOptions {
  readonly runtime: Runtime;
  /** Largest request body read, in bytes. */
  readonly maxBodyBytes: number;
}

export interface ContainerServer {
  readonly server: Server;
  markLoaded(): void;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new InvocationError(413, `The body is larger than ${limit} bytes.`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: Buffer | string, contentType: string, headers: Readonly<Record<string, string>> = {}): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

export function createContainerServer(o: ContainerServerOptions): ContainerServer {
  let loaded = false;
  const server = createServer((req, res) => {
    if (req.url === '/ping' && req.method === 'GET') {
      res.writeHead(loaded ? 200 : 503, { 'content-length': 0 });
      res.end();
      return;
    }
    if (req.url === '/invocations' && req.method === 'POST') {
      void invoke(o, req, res, loaded);
      return;
    }
    send(res, 404, `No route for ${req.method ?? ''} ${req.url ?? ''}; this container serves GET /ping and POST /invocations.`, 'text/plain');
  });
  server.keepAliveTimeout = 65_000;
  return { server, markLoaded: () => { loaded = true; } };
}

async function invoke(o: ContainerServerOptions, req: IncomingMessage, res: ServerResponse, loaded: boolean): Promise<void> {
  try {
    if (!loaded) throw new InvocationError(503, 'The model is still loading.');
    const body = await readBody(req, o.maxBodyBytes);
    const accept = req.headers['accept'];
    const out = await o.runtime.invoke({ body, contentType: req.headers['content-type'], accept, headers: req.headers });
    send(res, out.status ?? 200, out.body, out.contentType, out.headers);
  } catch (err) {
    const status = err instanceof InvocationError ? err.status : 500;
    if (!(err instanceof InvocationError)) console.error(`invocation failed: ${(err as Error).stack ?? String(err)}`);
    if (!res.headersSent) send(res, status, (err as Error).message, 'text/plain; charset=utf-8');
  }
}
