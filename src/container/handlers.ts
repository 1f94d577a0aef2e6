// Users' JavaScript or TypeScript handlers, with the SageMaker inference toolkit's semantics in
// JavaScript spelling: `code/inference.js` (or .mjs, .cjs, .ts) in the model artifact exports
// `modelFn(modelDir, context)` and any of `inputFn(body, contentType, context)`,
// `predictFn(input, model, context)`, `outputFn(prediction, accept, context)`, or instead of those
// three `transformFn(model, body, contentType, accept, context)`.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CSV_TYPE, JSON_TYPE, mediaType, negotiate, parseCsv, parseJson, toCsv } from './codecs.js';
import { InvocationError } from './runtime.js';
import type { InvocationInput, InvocationOutput, Runtime } from './runtime.js';

/** What a hook receives as its last argument. */
export interface HandlerContext {
  readonly modelDir: string;
  /** Request headers as the container received them (per invocation; empty in modelFn). */
  readonly requestHeaders: Readonly<Record<string, string | string[] | undefined>>;
  /** X-Amzn-SageMaker-Custom-Attributes of the request. */
  readonly customAttributes: string | undefined;
  /** Sets a response header, e.g. X-Amzn-SageMaker-Custom-Attributes. */
  setResponseHeader(name: string, value: string): void;
}

type Fn = (...args: unknown[]) => unknown;

interface Hooks {
  modelFn?: Fn;
  inputFn?: Fn;
  predictFn?: Fn;
  outputFn?: Fn;
  transformFn?: Fn;
}

const ENTRY_NAMES = ['inference.js', 'inference.mjs', 'inference.cjs', 'inference.ts'];

export interface HandlerOptions {
  /** A file name under code/ (SAGEMAKER_PROGRAM / BERTH_HANDLER), else inference.{js,mjs,cjs,ts}. */
  readonly program?: string | undefined;
  /** A writable folder for TypeScript compiled to JavaScript. */
  readonly workDir: string;
}

export class HandlerRuntime implements Runtime {
  private hooks: Hooks = {};
  private model: unknown;
  private modelDir = '';

  constructor(private readonly options: HandlerOptions) {}

  async load(modelDir: string): Promise<void> {
    this.modelDir = modelDir;
    const codeDir = join(modelDir, 'code');
    const names = this.options.program ? [this.options.program] : ENTRY_NAMES;
    const entry = names.find((n) => existsSync(join(codeDir, n)));
    if (!entry) {
      const listing = existsSync(codeDir) ? (await readdir(codeDir)).join(', ') || '(empty)' : 'no code/ folder';
      throw new Error(`berth/node needs a handler at code/${names.join(' or code/')} in the model artifact; found: ${listing}`);
    }
    const file = entry.endsWith('.ts') ? await this.compile(codeDir, entry) : join(codeDir, entry);
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`could not load code/${entry}: ${(err as Error).stack ?? String(err)}`, { cause: err });
    }
    const source = (typeof mod['default'] === 'object' && mod['default'] !== null ? mod['default'] : mod) as Record<string, unknown>;
    for (const name of ['modelFn', 'inputFn', 'predictFn', 'outputFn', 'transformFn'] as const) {
      const f = source[name] ?? mod[name];
      if (f !== undefined && typeof f !== 'function') throw new Error(`code/${entry} exports ${name}, but it is not a function`);
      if (typeof f === 'function') this.hooks[name] = f as Fn;
    }
    const h = this.hooks;
    if (h.transformFn && (h.inputFn || h.predictFn || h.outputFn)) {
      // The inference toolkit's own rule and words.
      throw new Error('Cannot use transformFn implementation in conjunction with inputFn, predictFn, and/or outputFn implementation');
    }
    if (!h.modelFn) throw new Error(`Please provide a modelFn implementation in code/${entry}: it loads the model from the model folder`);
    this.model = await h.modelFn(modelDir, this.context({}, () => undefined));
  }

  async invoke(input: InvocationInput): Promise<InvocationOutput> {
    const responseHeaders: Record<string, string> = {};
    const ctx = this.context(input.headers, (k, v) => { responseHeaders[k] = v; });
    const accept = input.accept === undefined || mediaType(input.accept) === '*/*' ? JSON_TYPE : input.accept;
    // As in the toolkit: JSON and CSV bodies arrive as text, anything else as bytes.
    const type = mediaType(input.contentType);
    const body = type === JSON_TYPE || type === CSV_TYPE ? input.body.toString('utf8') : input.body;
    const h = this.hooks;
    let result: unknown;
    try {
      if (h.transformFn) {
        result = await h.transformFn(this.model, body, input.contentType, accept, ctx);
      } else {
        const decoded = h.inputFn ? await h.inputFn(body, input.contentType, ctx) : defaultInput(body, input.contentType);
        const prediction = h.predictFn ? await h.predictFn(decoded, this.model, ctx) : defaultPredict(decoded, this.model);
        result = h.outputFn ? await h.outputFn(prediction, accept, ctx) : defaultOutput(prediction, accept);
      }
    } catch (err) {
      if (err instanceof InvocationError) throw err;
      // A handler may throw an error carrying its own status, like the toolkit's BaseInferenceToolkitError.
      const e = err as { statusCode?: unknown; status?: unknown; message?: string; stack?: string };
      const status = [e.statusCode, e.status].find((s): s is number => typeof s === 'number' && s >= 400 && s < 600) ?? 500;
      console.error(`handler error: ${e.stack ?? String(err)}`);
      throw new InvocationError(status, e.message ?? String(err));
    }
    // A handler returns the body, or [body, contentType] like the toolkit's (body, content_type) tuple.
    const tuple = Array.isArray(result) && result.length === 2 && typeof result[1] === 'string' ? (result as [unknown, string]) : undefined;
    const out: unknown = tuple ? tuple[0] : result;
    const contentType = tuple ? tuple[1] : mediaType(accept) || JSON_TYPE;
    return { body: toBody(out), contentType, headers: responseHeaders };
  }

  private context(headers: Readonly<Record<string, string | string[] | undefined>>, set: (k: string, v: string) => void): HandlerContext {
    const attrs = headers['x-amzn-sagemaker-custom-attributes'];
    return {
      modelDir: this.modelDir,
      requestHeaders: headers,
      customAttributes: Array.isArray(attrs) ? attrs.join(',') : attrs,
      setResponseHeader: set,
    };
  }

  /**
   * TypeScript handlers: every .ts file under code/ is compiled to JavaScript (ES modules) in the work
   * folder beside a copy of code/, so relative imports such as `./util.js` resolve as in the source.
   */
  private async compile(codeDir: string, entry: string): Promise<string> {
    const ts = await import('typescript');
    // One folder per model folder: a multi-model container compiles many models' handlers.
    const out = join(this.options.workDir, createHash('sha256').update(this.modelDir).digest('hex').slice(0, 16), 'code');
    await mkdir(out, { recursive: true });
    await cp(codeDir, out, { recursive: true, dereference: true });
    const files = await readdir(codeDir, { recursive: true });
    for (const f of files) {
      if (!f.endsWith('.ts') || f.endsWith('.d.ts')) continue;
      const source = await readFile(join(codeDir, f), 'utf8');
      const result = ts.transpileModule(source, {
        fileName: f,
        reportDiagnostics: true,
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false, verbatimModuleSyntax: false },
      });
      const errors = (result.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
      if (errors.length > 0) {
        const text = errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('; ');
        throw new Error(`code/${f} does not compile: ${text}`);
      }
      await writeFile(join(out, f.replace(/\.ts$/, '.js')), result.outputText);
    }
    if (!existsSync(join(out, 'package.json'))) await writeFile(join(out, 'package.json'), '{"type":"module"}\n');
    return join(out, relative(codeDir, join(codeDir, entry)).replace(/\.ts$/, '.js'));
  }
}

/** JSON → the parsed value; CSV → rows of numbers (a single row as a flat array, as the toolkit does). */
function defaultInput(body: string | Buffer, contentType: string | undefined): unknown {
  const type = mediaType(contentType);
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  if (type === JSON_TYPE) return parseJson(bytes);
  if (type === CSV_TYPE) {
    const rows = parseCsv(bytes);
    return rows.length === 1 ? rows[0] : rows;
  }
  throw new InvocationError(415, `Content type "${contentType ?? ''}" is not supported by the default inputFn; send application/json or text/csv, or export an inputFn.`);
}

function defaultPredict(input: unknown, model: unknown): unknown {
  if (typeof model === 'function') return (model as Fn)(input);
  const predict = (model as { predict?: unknown } | null)?.predict;
  if (typeof predict === 'function') return (predict as Fn).call(model, input);
  throw new InvocationError(500, 'Please provide a predictFn implementation, or return from modelFn a function or an object with a predict method.');
}

function defaultOutput(prediction: unknown, accept: string): [string, string] {
  const type = negotiate(accept, [JSON_TYPE, CSV_TYPE], JSON_TYPE);
  return type === CSV_TYPE ? [toCsv(prediction), CSV_TYPE] : [JSON.stringify(prediction), JSON_TYPE];
}

function toBody(out: unknown): Buffer | string {
  if (typeof out === 'string' || Buffer.isBuffer(out)) return out;
  if (out instanceof Uint8Array) return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  // A handler that returns a value without encoding it gets JSON, the default encoding.
  return JSON.stringify(out ?? null);
}
