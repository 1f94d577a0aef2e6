// The composition root: one call that builds and starts berth from a Config.
export { startBerth, DataDirInUse } from './berth.js';
export type { Berth, BerthOptions } from './berth.js';
