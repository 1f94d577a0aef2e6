// The `berth` command: `berth serve` runs the server, `berth logs` prints an endpoint's container logs.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startBerth } from '../app/index.js';
import { ConfigError, loadConfig } from '../config/index.js';
import { createLogger } from '../telemetry/index.js';

const USAGE = `usage:
  berth serve [--port N] [--host ADDR] [--data-dir DIR] [--region R] [--account-id ID]
              [--log-level LEVEL] [--config FILE] [--image NAME=COMMAND ...]
              [--python INTERPRETER] [--python-install-requirements]
  berth logs ENDPOINT [--endpoint-url URL] [--lines N]
  berth --version

Settings also come from BERTH_* environment variables and a JSON config file (docs/configuration.md).`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** `--image NAME=COMMAND` registers an image; the command is split on spaces (use the config file for more). */
function parseImages(values: readonly string[] | undefined): Record<string, { command: string[] }> | undefined {
  if (!values?.length) return undefined;
  const images: Record<string, { command: string[] }> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const command = v.slice(eq + 1).trim().split(/\s+/).filter(Boolean);
    if (eq <= 0 || command.length === 0) throw new ConfigError(`--image ${v}: expected NAME=COMMAND, for example --image my-model=/usr/local/bin/serve-model`);
    images[v.slice(0, eq)] = { command };
  }
  return images;
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      region: { type: 'string' },
      'account-id': { type: 'string' },
      'log-level': { type: 'string' },
      config: { type: 'string' },
      image: { type: 'string', multiple: true },
      python: { type: 'string' },
      'python-install-requirements': { type: 'boolean' },
    },
    strict: true,
  });
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && !Number.isInteger(port)) throw new ConfigError(`--port ${values.port} is not a port number`);
  const config = loadConfig({
    flags: {
      port,
      host: values.host,
      dataDir: values['data-dir'],
      region: values.region,
      accountId: values['account-id'],
      logLevel: values['log-level'],
      images: parseImages(values.image),
      python: values.python,
      pythonInstallRequirements: values['python-install-requirements'],
    },
    env: process.env,
    configFile: values.config,
    cwd: process.cwd(),
  });
  const logger = createLogger(config.logLevel);
  const berth = await startBerth(config, { logger, containerEnv: process.env });
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down: stopping instances');
      void berth.close().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

async function logs(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { 'endpoint-url': { type: 'string' }, lines: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const name = positionals[0];
  if (!name) {
    console.error(USAGE);
    return 2;
  }
  const base = values['endpoint-url'] ?? process.env['AWS_ENDPOINT_URL_SAGEMAKER'] ?? process.env['AWS_ENDPOINT_URL'] ?? 'http://localhost:8080';
  const url = new URL(`/_berth/endpoints/${encodeURIComponent(name)}/logs`, base);
  if (values.lines) url.searchParams.set('lines', values.lines);
  const res = await fetch(url);
  if (!res.ok) {
    console.error(`berth logs: ${res.status} ${await res.text()}`);
    return 1;
  }
  process.stdout.write(await res.text());
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serve(rest);
      case 'logs':
        return await logs(rest);
      case '--version':
      case 'version':
        console.log(version());
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        console.error(`berth: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`berth: ${(err as Error).message}`);
      return 2;
    }
    throw err;
  }
}
