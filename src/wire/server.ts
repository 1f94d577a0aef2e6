// berth's single HTTP port, as SageMaker's clients allow (wire-protocol.md §0.1): the control plane is
// `POST /` dispatched on X-Amz-Target, the runtime is `POST /endpoints/{name}/…`, and berth's own
// routes live under `/_berth/`. Handlers only decode, call the protocol-free core, and encode.
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BerthError } from '../errors/index.js';
import type { ControlPlane } from '../control/index.js';
import type { DeliveredOutcome, Router } from '../router/index.js';
import type { Logger } from '../telemetry/index.js';
import { BodyTooLarge, discardRest, readBody } from './body.js';
import { asBerthError, errorAnswer, sendAnswer, sendError, sendJson } from './envelope.js';
import type { Answer, Protocol } from './envelope.js';
import { regionFromAuthorization, SIGV4_HEADERS } from './sigv4.js';
import { INVOCATION_HEADERS, invocationFromHeaders } from './runtime.js';
import { createFront } from './front.js';
import { NativeFront, nativeFrontAddon, nativeFrontServes } from './native.js';
import { nextRequestId } from './request-id.js';

export interface WireOptions {
  readonly control: ControlPlane;
  readonly router: Router;
  readonly logs: (endpointName: string, lines: number) => Promise<string>;
  /** The models each instance of a multi-model endpoint holds, as JSON. */
  readonly models: (endpointName: string) => unknown;
  /** SageMaker's endpoint metrics in Prometheus' text format. */
  readonly metrics: () => string;
  readonly logger: Logger;
  readonly region: string;
  readonly accountId: string;
  readonly maxPayloadBytes: number;
  /** How long the native front waits for a container's answer (the router's invocationTimeoutMs). */
  readonly invocationTimeoutMs: number;
  /** Where the server will listen: the native front serves IPv4 addresses. */
  readonly host: string;
  /** Serve plain invocations from the native front when it is built (the nativeFront setting). */
  readonly nativeFront: boolean;
}

/** The part of net.Server berth uses, which both fronts provide. */
export interface WireServer {
  /** Which front serves plain invocations. */
  readonly front: 'native' | 'node';
  listen(port: number, host: string, callback: () => void): unknown;
  address(): AddressInfo | string | null;
  close(callback?: (err?: Error) => void): unknown;
  once(event: 'error', listener: (err: Error) => void): unknown;
}

/** Control-plane requests are small; this only guards memory against a hostile client. */
const CONTROL_BODY_LIMIT = 16 * 1024 * 1024;
const INVOCATION_PATH = /^\/endpoints\/([^/]+)\/(invocations|async-invocations|invocations-response-stream)$/;
const LOGS_PATH = /^\/_berth\/endpoints\/([^/]+)\/logs$/;
const MODELS_PATH = /^\/_berth\/endpoints\/([^/]+)\/models$/;

/**
 * The listening server: invocations on a fast path, everything else through `http`. The fast path is
 * the native front (native.ts) when it is built, allowed, and the host is an IPv4 address; otherwise
 * the Node front (front.ts).
 */
export function createWireServer(o: WireOptions): WireServer {
  let native: NativeFront | undefined;
  const http = createHttpServer({ ...o, metrics: () => {
    native?.flushMetrics();
    return o.metrics();
  } });
  // What answerInvocation reads: InvokeEndpoint's own headers and the SigV4 scope's region.
  const headers = [...INVOCATION_HEADERS, ...SIGV4_HEADERS];
  const answer = (h: IncomingHttpHeaders, endpointName: string, body: Buffer, requestId: string) => answerInvocation(o, h, endpointName, body, requestId);
  const addon = o.nativeFront && nativeFrontServes(o.host) ? nativeFrontAddon() : undefined;
  if (addon) {
    native = new NativeFront({
      addon, http, router: o.router, headers, answer,
      keepAliveMs: http.keepAliveTimeout,
      maxPayloadBytes: o.maxPayloadBytes,
      invocationTimeoutMs: o.invocationTimeoutMs,
      maxResponseBytes: o.maxPayloadBytes,
      delivered: (h, endpointName, body, requestId, variant, instance, outcome) => answerDelivered(o, h, endpointName, body, requestId, variant, instance, outcome),
    });
    return native;
  }
  return Object.assign(createFront({ http, maxPayloadBytes: o.maxPayloadBytes, keepAliveMs: http.keepAliveTimeout, headers, answer }), { front: 'node' as const });
}

function createHttpServer(o: WireOptions): Server {
  const server = createServer((req, res) => {
    const requestId = nextRequestId();
    handle(o, req, res, requestId).catch((err: unknown) => {
      o.logger.error({ err, requestId }, 'unhandled error while serving a request');
      if (!res.headersSent) sendError(res, asBerthError(err, requestId), requestId, 'json');
      else res.destroy();
    });
  });
  // Invocations may take the full 60 s; keep-alive connections from SDK pools stay open between them.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 70_000;
  server.requestTimeout = 0;
  return server;
}

async function handle(o: WireOptions, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
  const target = req.headers['x-amz-target'];
  if (req.method === 'POST' && typeof target === 'string' && target !== '') {
    return controlPlane(o, req, res, requestId, target);
  }
  // The raw path, not a URL object: invocations take this route on every call, and only the logs
  // route reads a query string.
  const raw = req.url ?? '/';
  const query = raw.indexOf('?');
  const path = query < 0 ? raw : raw.slice(0, query);
  const inv = INVOCATION_PATH.exec(path);
  if (inv && req.method === 'POST') {
    return runtime(o, req, res, requestId, decodeURIComponent(inv[1] as string), inv[2] as string);
  }
  if (req.method === 'GET' && path === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'x-amzn-requestid': requestId });
    res.end(o.metrics());
    return;
  }
  if (req.method === 'GET' && path === '/_berth/health') {
    return sendJson(res, 200, { status: 'ok' }, requestId, 'rest-json');
  }
  const logs = LOGS_PATH.exec(path);
  if (logs && req.method === 'GET') {
    const params = new URLSearchParams(query < 0 ? '' : raw.slice(query + 1));
    const lines = Math.max(1, Math.min(10_000, Number(params.get('lines') ?? 200) || 200));
    const text = await o.logs(decodeURIComponent(logs[1] as string), lines);
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-amzn-requestid': requestId });
    res.end(text);
    return;
  }
  const models = MODELS_PATH.exec(path);
  if (models && req.method === 'GET') {
    return sendJson(res, 200, { instances: o.models(decodeURIComponent(models[1] as string)) }, requestId, 'rest-json');
  }
  if (req.method === 'POST' && path === '/') {
    return refuse(req, res, requestId, 'json', new BerthError('UnknownOperationException', 'The request has no X-Amz-Target header; SageMaker API calls name their operation there (for example SageMaker.DescribeEndpoint).'));
  }
  return refuse(req, res, requestId, 'rest-json', new BerthError('UnknownOperationException', `berth has no route for ${req.method ?? 'GET'} ${path}.`));
}

function refuse(req: IncomingMessage, res: ServerResponse, requestId: string, protocol: Protocol, err: BerthError): void {
  sendError(res, err, requestId, protocol);
  req.resume();
}

async function controlPlane(o: WireOptions, req: IncomingMessage, res: ServerResponse, requestId: string, target: string): Promise<void> {
  const dot = target.indexOf('.');
  const service = target.slice(0, dot);
  const operation = target.slice(dot + 1);
  if (service !== 'SageMaker' || !o.control.supports(operation)) {
    return refuse(req, res, requestId, 'json', new BerthError('UnknownOperationException', `berth does not serve the operation ${target}.`));
  }
  let raw: Buffer;
  try {
    raw = await readBody(req, CONTROL_BODY_LIMIT);
  } catch (err) {
    if (err instanceof BodyTooLarge) {
      sendError(res, new BerthError('SerializationException', `The request body is larger than ${CONTROL_BODY_LIMIT} bytes.`), requestId, 'json', { connection: 'close' });
      discardRest(req, CONTROL_BODY_LIMIT, 5_000);
      return;
    }
    throw err;
  }
  let input: unknown = {};
  if (raw.length > 0) {
    try {
      input = JSON.parse(raw.toString('utf8'));
    } catch {
      return sendError(res, new BerthError('SerializationException', 'The request body is not valid JSON.'), requestId, 'json');
    }
  }
  const ctx = { region: regionFromAuthorization(req.headers) ?? o.region, accountId: o.accountId };
  try {
    const output = await o.control.execute(operation, input, ctx);
    sendJson(res, 200, output, requestId, 'json');
  } catch (err) {
    const e = asBerthError(err, requestId);
    if (e.code === 'InternalFailure') o.logger.error({ err, requestId, operation }, 'control-plane operation failed');
    sendError(res, e, requestId, 'json');
  }
}

async function runtime(o: WireOptions, req: IncomingMessage, res: ServerResponse, requestId: string, endpointName: string, kind: string): Promise<void> {
  if (kind !== 'invocations') {
    const op = kind === 'async-invocations' ? 'InvokeEndpointAsync' : 'InvokeEndpointWithResponseStream';
    return refuse(req, res, requestId, 'rest-json', new BerthError('UnknownOperationException', `berth does not serve ${op} yet; use InvokeEndpoint.`));
  }
  let body: Buffer;
  try {
    body = await readBody(req, o.maxPayloadBytes);
  } catch (err) {
    if (err instanceof BodyTooLarge) {
      // AWS's text for an oversize body, then what to do about it.
      const e = new BerthError('ValidationError', `Request ${requestId} has oversize body. InvokeEndpoint accepts at most ${o.maxPayloadBytes} bytes; send larger inputs with InvokeEndpointAsync or batch transform.`);
      sendError(res, e, requestId, 'rest-json', { connection: 'close' });
      discardRest(req, 4 * o.maxPayloadBytes, 10_000);
      return;
    }
    throw err;
  }
  sendAnswer(res, await answerInvocation(o, req.headers, endpointName, body, requestId));
}

/** The ModelError answer to an invocation the native front delivered that did not end in a 2xx answer. */
function answerDelivered(o: WireOptions, headers: IncomingHttpHeaders, endpointName: string, body: Buffer, requestId: string, variant: string, instance: string, outcome: DeliveredOutcome): Answer {
  const invocation = invocationFromHeaders(headers, endpointName, body, regionFromAuthorization(headers) ?? o.region, requestId);
  return errorAnswer(o.router.delivered(invocation, variant, instance, outcome), requestId, 'rest-json');
}

/** InvokeEndpoint once its body is read, for every path to it (this server, front.ts, native.ts). Never throws. */
export async function answerInvocation(o: WireOptions, headers: IncomingHttpHeaders, endpointName: string, body: Buffer, requestId: string): Promise<Answer> {
  try {
    const invocation = invocationFromHeaders(headers, endpointName, body, regionFromAuthorization(headers) ?? o.region, requestId);
    const out = await o.router.invoke(invocation);
    const answer: Record<string, string | number> = {
      'content-type': out.contentType ?? 'application/octet-stream',
      'content-length': out.body.length,
      'x-amzn-requestid': requestId,
      'x-amzn-invoked-production-variant': out.invokedVariant,
    };
    if (out.customAttributes !== undefined) answer['x-amzn-sagemaker-custom-attributes'] = out.customAttributes;
    return { status: 200, headers: answer, body: out.body };
  } catch (err) {
    const e = asBerthError(err, requestId);
    if (e.code === 'InternalFailure') o.logger.error({ err, requestId, endpoint: endpointName }, 'invocation failed');
    return errorAnswer(e, requestId, 'rest-json');
  }
}
