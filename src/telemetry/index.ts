// Observability: berth's own structured logs.
export { createLogger, silentLogger } from './logger.js';
export type { Logger } from './logger.js';
