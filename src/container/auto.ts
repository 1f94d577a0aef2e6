// berth/model-server: one container for models of any runtime berth's model server has, chosen per
// model folder by what it holds. A multi-model endpoint can then host ONNX, XGBoost and JavaScript
// handler models side by side, as Triton hosts several backends.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { InvocationInput, InvocationOutput, Runtime } from './runtime.js';

export type RuntimeKind = 'onnx' | 'node' | 'xgboost';

const HANDLER = /^inference\.(m|c)?[jt]s$/;

/** Which runtime serves a model folder: a JS/TS handler in code/, else an .onnx file, else XGBoost. */
export async function detectRuntime(modelDir: string): Promise<RuntimeKind> {
  const top = await readdir(modelDir);
  if (top.includes('code')) {
    const code = await readdir(join(modelDir, 'code')).catch(() => [] as string[]);
    if (code.some((f) => HANDLER.test(f))) return 'node';
  }
  if (top.some((f) => f.endsWith('.onnx'))) return 'onnx';
  return 'xgboost';
}

export class AutoRuntime implements Runtime {
  private inner: Runtime | undefined;

  constructor(private readonly make: (kind: RuntimeKind) => Runtime) {}

  get nativeMemory(): boolean {
    return this.inner?.nativeMemory ?? false;
  }

  async load(modelDir: string): Promise<void> {
    const inner = this.make(await detectRuntime(modelDir));
    await inner.load(modelDir);
    this.inner = inner;
  }

  invoke(input: InvocationInput): Promise<InvocationOutput> {
    if (!this.inner) throw new Error('the model is not loaded');
    return this.inner.invoke(input);
  }

  async unload(): Promise<void> {
    await this.inner?.unload?.();
    this.inner = undefined;
  }
}
