// The protocols: AWS JSON 1.1 control plane, the runtime's REST routes, berth's own routes.
export { createWireServer } from './server.js';
export type { WireOptions } from './server.js';
