// What a runtime inside berth's model server does: load a model folder once, then answer invocations.

/** An answer other than 200, with the status the container contract reports to the caller. */
export class InvocationError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface InvocationInput {
  readonly body: Buffer;
  /** As sent, possibly with parameters (`text/csv; charset=utf-8`). */
  readonly contentType: string | undefined;
  /** As sent; undefined or `*\/*` means the runtime's default. */
  readonly accept: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface InvocationOutput {
  /** 200 unless the runtime answers otherwise (XGBoost answers an empty body with 204). */
  readonly status?: number;
  readonly body: Buffer | string;
  readonly contentType: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface Runtime {
  /** Loads the model; a rejection is a reason the container cannot serve (it exits with it). */
  load(modelDir: string): Promise<void>;
  invoke(input: InvocationInput): Promise<InvocationOutput>;
  /** Frees what `load` took (a multi-model container unloads models it was told to). */
  unload?(): Promise<void>;
  /**
   * Whether a loaded model lives in native memory outside the JavaScript heap (onnxruntime's), so
   * the resident set's growth is its size; otherwise the live heap and external buffers tell it.
   */
  readonly nativeMemory?: boolean;
}
