// Every error a client of berth can see, in one closed table.
//
// Codes are SageMaker's own (wire-protocol.md §1.5, §2.5): clients key behaviour on them — the
// endpoint_deleted waiter succeeds only on `ValidationException`, boto3 maps `ModelError` to a modeled
// class carrying `OriginalStatusCode` — so a code is never invented where SageMaker has one.
// `retryable` says whether sending the same request again may succeed; it travels with errors that
// cross processes. docs/errors.md lists the same table and a test keeps the two in step.

export interface ErrorSpec {
  /** HTTP status sent with the error. */
  readonly status: number;
  /** `client`: the request must change; `server`: berth or a dependency failed. */
  readonly fault: 'client' | 'server';
  /** Whether the same request may succeed later without change. */
  readonly retryable: boolean;
  /** Which API family raises it: control plane (AWS JSON 1.1) or runtime (rest-json). */
  readonly api: 'control' | 'runtime' | 'both';
  /** When berth raises it, for docs/errors.md. */
  readonly when: string;
}

export const ERRORS = {
  ValidationException: {
    status: 400, fault: 'client', retryable: false, api: 'control',
    when: 'A request member breaks a constraint, a named resource does not exist, already exists, or is in a state that forbids the call.',
  },
  ResourceLimitExceeded: {
    status: 400, fault: 'client', retryable: false, api: 'control',
    when: 'A request asks for more than berth allows (for example more instances than the configured limit).',
  },
  SerializationException: {
    status: 400, fault: 'client', retryable: false, api: 'control',
    when: 'The body is not JSON, or a member has the wrong JSON type.',
  },
  UnknownOperationException: {
    status: 400, fault: 'client', retryable: false, api: 'control',
    when: 'The X-Amz-Target header names an operation berth does not serve or is missing, or the path is not a route berth serves (including InvokeEndpointAsync and InvokeEndpointWithResponseStream, not served yet).',
  },
  InternalFailure: {
    status: 500, fault: 'server', retryable: true, api: 'both',
    when: 'berth itself failed; the message and the server log say how.',
  },
  ValidationError: {
    status: 400, fault: 'client', retryable: false, api: 'runtime',
    when: 'An invocation names an unknown endpoint or variant, the endpoint is not in service, the body is too large, or TargetModel is missing, not allowed, or names no object under the multi-model prefix.',
  },
  ModelError: {
    status: 424, fault: 'client', retryable: false, api: 'runtime',
    when: "The container answered 4xx/5xx, timed out, or closed the connection; OriginalStatusCode and OriginalMessage carry its answer.",
  },
  ServiceUnavailable: {
    status: 503, fault: 'server', retryable: true, api: 'runtime',
    when: 'The endpoint is in service but none of its instances is ready (for example while a crashed instance is replaced).',
  },
  ModelNotReadyException: {
    status: 429, fault: 'client', retryable: true, api: 'runtime',
    when: 'A multi-model endpoint is still downloading or loading the TargetModel after the wait berth allows a first call (multiModelLoadWaitMs, 60 s as on SageMaker); loading goes on, so retry.',
  },
  InternalDependencyException: {
    status: 530, fault: 'server', retryable: true, api: 'runtime',
    when: "A multi-model endpoint could not reach the store holding its models (S3 or the model data URL's server) to find or fetch the TargetModel.",
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Members SageMaker models on some errors (ModelError's OriginalStatusCode, …), sent at the top level. */
export type ErrorMembers = Readonly<Record<string, string | number | boolean>>;

export class BerthError extends Error {
  readonly code: ErrorCode;
  readonly members: ErrorMembers;

  constructor(code: ErrorCode, message: string, members: ErrorMembers = {}) {
    super(message);
    this.name = code;
    this.code = code;
    this.members = members;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }

  get retryable(): boolean {
    return ERRORS[this.code].retryable;
  }
}

export function isBerthError(err: unknown): err is BerthError {
  return err instanceof BerthError;
}
