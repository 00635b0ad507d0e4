// What deleting an object does to others: a namespace takes everything in it;
// an owner takes its dependents (Background, Foreground) or leaves them
// without it (Orphan), as Kubernetes' garbage collector does. Done in the
// same Raft entry, so no peer ever sees a half-finished cascade.
import type { StoreBatchOperation } from '../../consensus/log-store.js'
import type { ApiObject } from '../kinds/meta.js'
import type { PropagationPolicy } from './commands.js'
import type { ObjectStore } from './object-store.js'
import type { WatchEvent } from './watch.js'

/** How deep ownership chains may go (a Deployment owns ReplicaSets owning Pods: 3). */
const ownershipDepthMax = 8

export function cascadeDelete(store: ObjectStore, deleted: ApiObject, propagation: PropagationPolicy, index: number, ops: StoreBatchOperation[], events: WatchEvent[], depth = 0): void {
  if (depth > ownershipDepthMax) return
  if (deleted.kind === 'Namespace' && deleted.apiVersion === 'v1') {
    for (const o of store.allObjects()) {
      if (o.metadata.namespace === deleted.metadata.name) store.erase(o, index, ops, events)
    }
    return
  }
  const uid = deleted.metadata.uid
  if (uid === undefined) return
  for (const dependent of store.dependentsOf(uid)) {
    const others = (dependent.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid)
    if (propagation === 'Orphan' || others.length > 0) {
      // Orphaned, or still owned by someone else: it stays, without this owner.
      const kept: ApiObject = { ...dependent, metadata: { ...dependent.metadata, resourceVersion: String(index) } }
      if (others.length > 0) kept.metadata.ownerReferences = others
      else delete kept.metadata.ownerReferences
      store.write(kept, ops)
      events.push(store.event('MODIFIED', kept, index))
      continue
    }
    store.erase(dependent, index, ops, events)
    cascadeDelete(store, dependent, propagation, index, ops, events, depth + 1)
  }
}
