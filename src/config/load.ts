// Reads flags, environment and the config file once, in that order of precedence over the defaults,
// validates the merge, normalises paths and freezes it. Nothing else in berth reads process.env.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { configSchema, DEFAULTS } from './schema.js';
import type { Config } from './schema.js';

export interface ConfigSources {
  /** Already-parsed command-line flags, keyed like the config (`port`, `dataDir`, …). */
  readonly flags?: Readonly<Record<string, unknown>>;
  /** The process environment; only `BERTH_*` variables are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Path of a JSON config file; `BERTH_CONFIG` names one too. */
  readonly configFile?: string;
  /** Working directory against which relative paths are resolved. */
  readonly cwd?: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

// Environment variable → key and how to parse it.
const ENV: ReadonlyArray<readonly [string, string, 'string' | 'int' | 'bool']> = [
  ['BERTH_PORT', 'port', 'int'],
  ['BERTH_HOST', 'host', 'string'],
  ['BERTH_DATA_DIR', 'dataDir', 'string'],
  ['BERTH_REGION', 'region', 'string'],
  ['BERTH_ACCOUNT_ID', 'accountId', 'string'],
  ['BERTH_LOG_LEVEL', 'logLevel', 'string'],
  ['BERTH_INVOCATION_TIMEOUT_MS', 'invocationTimeoutMs', 'int'],
  ['BERTH_SPIN_WAIT_MICROS', 'spinWaitMicros', 'int'],
  ['BERTH_SPIN_WAIT_BACKOFF_MS', 'spinWaitBackoffMs', 'int'],
  ['BERTH_NATIVE_FRONT', 'nativeFront', 'bool'],
  ['BERTH_HEALTH_CHECK_INTERVAL_MS', 'healthCheckIntervalMs', 'int'],
  ['BERTH_STARTUP_HEALTH_CHECK_TIMEOUT_MS', 'startupHealthCheckTimeoutMs', 'int'],
  ['BERTH_INSTANCE_STOP_GRACE_MS', 'instanceStopGraceMs', 'int'],
  ['BERTH_MULTI_MODEL_MEMORY_BUDGET_BYTES', 'multiModelMemoryBudgetBytes', 'int'],
  ['BERTH_MULTI_MODEL_DISK_BUDGET_BYTES', 'multiModelDiskBudgetBytes', 'int'],
  ['BERTH_PYTHON', 'python', 'string'],
  ['BERTH_PYTHON_INSTALL_REQUIREMENTS', 'pythonInstallRequirements', 'bool'],
];

function fromEnv(env: Readonly<Record<string, string | undefined>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, key, kind] of ENV) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    if (kind === 'int') {
      const n = Number(raw);
      if (!Number.isInteger(n)) throw new ConfigError(`${name}=${raw} is not a whole number`);
      out[key] = n;
    } else if (kind === 'bool') {
      const v = raw.toLowerCase();
      if (!['true', 'false', '1', '0'].includes(v)) throw new ConfigError(`${name}=${raw} is not true or false`);
      out[key] = v === 'true' || v === '1';
    } else {
      out[key] = raw;
    }
  }
  return out;
}

function fromFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('the top level must be an object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * The AWS SDKs' own variables for an S3-compatible store. AWS_ENDPOINT_URL is skipped when it points
 * at berth's own port on this machine: users export it for their clients in the shell berth runs in.
 */
function s3EndpointFromEnv(env: Readonly<Record<string, string | undefined>>, port: number): string | undefined {
  const specific = env['AWS_ENDPOINT_URL_S3'];
  if (specific) return specific;
  const global = env['AWS_ENDPOINT_URL'];
  if (!global) return undefined;
  try {
    const u = new URL(global);
    const local = ['localhost', '127.0.0.1', '[::1]', '0.0.0.0'].includes(u.hostname);
    if (local && Number(u.port || 80) === port) return undefined;
  } catch {
    return undefined;
  }
  return global;
}

export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? {};
  const cwd = sources.cwd ?? '.';
  const file = sources.configFile ?? env['BERTH_CONFIG'];
  const fileValues = file ? fromFile(resolve(cwd, file)) : {};
  const flags = Object.fromEntries(Object.entries(sources.flags ?? {}).filter(([, v]) => v !== undefined));
  const merged = { ...DEFAULTS, ...fileValues, ...fromEnv(env), ...flags };
  // Image tables merge rather than replace, so a flag-given image keeps the file's others.
  merged.images = { ...(fileValues['images'] as object | undefined), ...(flags['images'] as object | undefined) };
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const s3Endpoint = parsed.data.s3Endpoint ?? s3EndpointFromEnv(env, parsed.data.port);
  const config = {
    ...parsed.data,
    dataDir: resolve(cwd, parsed.data.dataDir),
    ...(s3Endpoint ? { s3Endpoint } : {}),
    s3ForcePathStyle: parsed.data.s3ForcePathStyle ?? s3Endpoint !== undefined,
    ...(parsed.data.httpsCaFile ? { httpsCaFile: resolve(cwd, parsed.data.httpsCaFile) } : {}),
  };
  return deepFreeze(config);
}
