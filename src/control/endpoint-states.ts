// The reconciler's access to endpoints: it reads the desired state and is the only writer of the
// observed state and of the statuses that end an operation (InService, Failed, gone).
import type { Store, StoredRecord } from '../store/index.js';
import type { EndpointDoc, EndpointStatus, ObservedState } from './resources.js';

export type EndpointRecord = StoredRecord<EndpointDoc>;

export interface Observation {
  readonly status?: EndpointStatus;
  readonly observed: ObservedState;
}

export class EndpointStates {
  constructor(private readonly store: Store, private readonly now: () => number = () => Date.now() / 1000) {}

  get(name: string): Promise<EndpointRecord | undefined> {
    return this.store.get<EndpointDoc>('endpoint', name);
  }

  all(): Promise<EndpointRecord[]> {
    return this.store.all<EndpointDoc>('endpoint');
  }

  /**
   * Writes what the reconciler observed. `change` sees the current record, so an observation made
   * for an older generation can decline to overwrite a newer request (return undefined).
   */
  observe(name: string, change: (current: EndpointRecord) => Observation | undefined): Promise<EndpointRecord | undefined> {
    return this.store.update<EndpointDoc>('endpoint', name, (cur) => {
      const o = change(cur);
      if (!o) return undefined;
      const statusChanged = o.status !== undefined && o.status !== cur.status;
      return {
        ...(o.status !== undefined ? { status: o.status } : {}),
        doc: { ...cur.doc, observed: o.observed },
        // LastModifiedTime moves with status changes, not with every instance count update.
        ...(statusChanged ? { updatedAt: this.now() } : {}),
      };
    });
  }

  /** Removes an endpoint whose deletion has finished. */
  async remove(name: string): Promise<void> {
    await this.store.delete('endpoint', name);
  }
}
