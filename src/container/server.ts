// SageMaker's container contract over node:http: GET /ping answers 200 only once the model is loaded,
// POST /invocations hands the body to the runtime. Anything a runtime throws becomes a status and a
// plain-text message, which berth returns to the caller as ModelError. A multi-model container
// serves /models instead (models.ts) and is healthy from the start, since it begins empty.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { ModelTable } from './models.js';
import type { ManagementAnswer } from './models.js';
import { InvocationError } from './runtime.js';
import type { Runtime } from './runtime.js';

export interface ContainerServerOptions {
  /** Single-model: the runtime behind /invocations. */
  readonly runtime?: Runtime;
  /** Multi-model (SAGEMAKER_MULTI_MODEL=true): a fresh runtime for each model loaded through /models. */
  readonly newRuntime?: () => Runtime;
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
  const models = o.newRuntime ? new ModelTable(o.newRuntime) : undefined;
  let loaded = models !== undefined;
  const server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/ping' && req.method === 'GET') {
      res.writeHead(loaded ? 200 : 503, { 'content-length': 0 });
      res.end();
      return;
    }
    if (url === '/invocations' && req.method === 'POST' && o.runtime) {
      void invoke(o, req, res, loaded ? o.runtime : undefined);
      return;
    }
    // The hot path of a multi-model container, without parsing a URL: /models/{name}/invoke.
    if (models && req.method === 'POST' && url.startsWith('/models/') && url.endsWith('/invoke')) {
      const raw = url.slice('/models/'.length, -'/invoke'.length);
      const runtime = raw.includes('/') ? undefined : models.get(raw.includes('%') ? safeDecode(raw) : raw);
      if (runtime) {
        void invoke(o, req, res, runtime);
        return;
      }
    }
    if (models && (url === '/models' || url.startsWith('/models/') || url.startsWith('/models?'))) {
      void manage(models, o, req, res);
      return;
    }
    const routes = models ? 'GET /ping, POST|GET /models, GET|DELETE /models/{name} and POST /models/{name}/invoke' : 'GET /ping and POST /invocations';
    send(res, 404, `No route for ${req.method ?? ''} ${url}; this container serves ${routes}.`, 'text/plain');
  });
  server.keepAliveTimeout = 65_000;
  return { server, markLoaded: () => { loaded = true; } };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function answer(res: ServerResponse, a: ManagementAnswer): void {
  send(res, a.status, JSON.stringify(a.body), 'application/json');
}

async function manage(models: ModelTable, o: ContainerServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://container');
  const parts = url.pathname.split('/').slice(2).map((p) => decodeURIComponent(p));
  const [name, action] = parts;
  try {
    if (parts.length === 0 || (parts.length === 1 && name === '')) {
      if (req.method === 'GET') return answer(res, models.list(url.searchParams.get('limit'), url.searchParams.get('next_page_token')));
      if (req.method === 'POST') {
        const body = await readBody(req, 64 * 1024);
        let request: unknown;
        try {
          request = body.length ? JSON.parse(body.toString('utf8')) : Object.fromEntries(url.searchParams);
        } catch {
          request = undefined;
        }
        return answer(res, await models.load(request));
      }
    } else if (name !== undefined && parts.length === 1) {
      if (req.method === 'GET') return answer(res, models.describe(name));
      if (req.method === 'DELETE') return answer(res, await models.unload(name));
    } else if (name !== undefined && action === 'invoke' && parts.length === 2 && req.method === 'POST') {
      const runtime = models.get(name);
      if (!runtime) return answer(res, models.notLoaded(name));
      return await invoke(o, req, res, runtime);
    }
    answer(res, { status: 405, body: { code: 405, type: 'MethodNotAllowedException', message: `${req.method ?? ''} ${url.pathname} is not part of the multi-model API.` } });
  } catch (err) {
    const status = err instanceof InvocationError ? err.status : 500;
    if (!res.headersSent) answer(res, { status, body: { code: status, type: 'InternalServerException', message: (err as Error).message } });
  }
}

async function invoke(o: ContainerServerOptions, req: IncomingMessage, res: ServerResponse, runtime: Runtime | undefined): Promise<void> {
  try {
    if (!runtime) throw new InvocationError(503, 'The model is still loading.');
    const body = await readBody(req, o.maxBodyBytes);
    const accept = req.headers['accept'];
    const out = await runtime.invoke({ body, contentType: req.headers['content-type'], accept, headers: req.headers });
    send(res, out.status ?? 200, out.body, out.contentType, out.headers);
  } catch (err) {
    const status = err instanceof InvocationError ? err.status : 500;
    if (!(err instanceof InvocationError)) console.error(`invocation failed: ${(err as Error).stack ?? String(err)}`);
    if (!res.headersSent) send(res, status, (err as Error).message, 'text/plain; charset=utf-8');
  }
}
