// The one place that writes error bodies. Both SDK families must decode them (wire-protocol.md §1.4):
// botocore's JSON 1.1 parser reads only `__type`, rest-json parsers read `x-amzn-ErrorType` first,
// and code in the wild reads `message` or `Message` — so every error carries all of them.
import type { ServerResponse } from 'node:http';
import { BerthError, isBerthError } from '../errors/index.js';

export type Protocol = 'json' | 'rest-json';

export const CONTENT_TYPE: Readonly<Record<Protocol, string>> = {
  json: 'application/x-amz-json-1.1',
  'rest-json': 'application/json',
};

/** Any thrown value as a BerthError; unexpected ones become InternalFailure without leaking internals. */
export function asBerthError(err: unknown, requestId: string): BerthError {
  if (isBerthError(err)) return err;
  return new BerthError('InternalFailure', `berth could not process the request; its log has the details under request id ${requestId}.`);
}

/** A whole answer, for the two writers: Node's ServerResponse and the invocation fast path (front.ts). */
export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | number>;
  readonly body: Buffer | string;
}

export function errorAnswer(err: BerthError, requestId: string, protocol: Protocol, extraHeaders: Record<string, string> = {}): Answer {
  const body = JSON.stringify({ __type: err.code, message: err.message, Message: err.message, ...err.members });
  return {
    status: err.status,
    headers: {
      'content-type': CONTENT_TYPE[protocol],
      'content-length': Buffer.byteLength(body),
      'x-amzn-requestid': requestId,
      'x-amzn-errortype': err.code,
      ...extraHeaders,
    },
    body,
  };
}

export function sendAnswer(res: ServerResponse, answer: Answer): void {
  res.writeHead(answer.status, answer.headers);
  res.end(answer.body);
}

export function sendError(res: ServerResponse, err: BerthError, requestId: string, protocol: Protocol, extraHeaders: Record<string, string> = {}): void {
  sendAnswer(res, errorAnswer(err, requestId, protocol, extraHeaders));
}

export function sendJson(res: ServerResponse, status: number, value: unknown, requestId: string, protocol: Protocol): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': CONTENT_TYPE[protocol],
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': requestId,
  });
  res.end(body);
}
