// InvokeEndpoint's headers (wire-protocol.md §2.2) → the router's request, checked against the
// runtime model's constraints, since clients do not check them.
import type { IncomingHttpHeaders } from 'node:http';
import { BerthError } from '../errors/index.js';
import type { InvocationRequest } from '../router/index.js';

/** The request's members that come from headers. */
type HeaderMember = 'contentType' | 'accept' | 'customAttributes' | 'targetVariant' | 'targetModel' | 'targetContainerHostname' | 'inferenceId';

interface HeaderRule {
  readonly header: string;
  readonly member: HeaderMember;
  readonly min?: number;
  readonly max: number;
  readonly pattern?: RegExp;
  readonly awsPattern?: string;
}

const NAME = { pattern: /^[a-zA-Z0-9](-*[a-zA-Z0-9])*$/, awsPattern: '^[a-zA-Z0-9](-*[a-zA-Z0-9])*' };
const ASCII = { pattern: /^\p{ASCII}*$/u, awsPattern: '\\p{ASCII}*' };
const PRINT = { pattern: /^\S[\x20-\x7E]*$/, awsPattern: '\\A\\S[\\p{Print}]*\\z' };

const RULES: readonly HeaderRule[] = [
  { header: 'content-type', member: 'contentType', max: 1024, ...ASCII },
  { header: 'accept', member: 'accept', max: 1024, ...ASCII },
  { header: 'x-amzn-sagemaker-custom-attributes', member: 'customAttributes', max: 1024, ...ASCII },
  { header: 'x-amzn-sagemaker-target-variant', member: 'targetVariant', max: 63, ...NAME },
  { header: 'x-amzn-sagemaker-target-model', member: 'targetModel', min: 1, max: 1024, ...PRINT },
  { header: 'x-amzn-sagemaker-target-container-hostname', member: 'targetContainerHostname', max: 63, ...NAME },
  { header: 'x-amzn-sagemaker-inference-id', member: 'inferenceId', min: 1, max: 64, ...PRINT },
];

/** The headers InvokeEndpoint reads (lower case). */
export const INVOCATION_HEADERS: readonly string[] = RULES.map((r) => r.header);

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

export function invocationFromHeaders(headers: IncomingHttpHeaders, endpointName: string, body: Buffer, region: string, requestId?: string): InvocationRequest {
  const request: { -readonly [K in keyof InvocationRequest]: InvocationRequest[K] } = { endpointName, body, region, requestId };
  // The checks run on every invocation: nothing is allocated unless one fails.
  let problems = check(undefined, endpointName, 'endpointName', 63, NAME.pattern, NAME.awsPattern);
  for (const r of RULES) {
    const v = single(headers[r.header]);
    request[r.member] = v;
    if (v !== undefined) problems = check(problems, v, r.member, r.max, r.pattern ?? /.*/, r.awsPattern ?? '.*', r.min);
  }
  if (problems !== undefined) {
    const head = problems.length === 1 ? '1 validation error detected: ' : `${problems.length} validation errors detected: `;
    throw new BerthError('ValidationError', head + problems.join('; '));
  }
  return request;
}

/** `problems` with what is wrong with `value` added (made on the first problem). */
function check(problems: string[] | undefined, value: string, member: string, max: number, pattern: RegExp, awsPattern: string, min = 0): string[] | undefined {
  if (value.length > max) (problems ??= []).push(`Value '${value}' at '${member}' failed to satisfy constraint: Member must have length less than or equal to ${max}`);
  if (value.length < min) (problems ??= []).push(`Value '${value}' at '${member}' failed to satisfy constraint: Member must have length greater than or equal to ${min}`);
  if (!pattern.test(value)) (problems ??= []).push(`Value '${value}' at '${member}' failed to satisfy constraint: Member must satisfy regular expression pattern: ${awsPattern}`);
  return problems;
}
