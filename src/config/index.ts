// Configuration, read once at the composition root and passed down frozen.
export { loadConfig, ConfigError } from './load.js';
export type { ConfigSources } from './load.js';
export { DEFAULTS } from './schema.js';
export type { Config } from './schema.js';
