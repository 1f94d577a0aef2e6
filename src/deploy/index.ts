// The reconciler: desired endpoint state → running fleets, blue/green updates, replacement of failed instances.
export { Reconciler } from './reconciler.js';
export type { ReconcilerOptions, RoutePublisher, FleetRoute } from './reconciler.js';
