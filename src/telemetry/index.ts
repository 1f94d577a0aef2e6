// Observability: berth's own structured logs and SageMaker's endpoint metrics.
export { createLogger, silentLogger } from './logger.js';
export type { Logger } from './logger.js';
export { Metrics, Series } from './metrics.js';
export type { Labels, MetricName } from './metrics.js';
