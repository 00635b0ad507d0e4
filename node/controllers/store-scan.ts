// Reading many pods per round, cheaply. ObjectStore.list sorts by key (for
// paging), which costs more than a controller's whole round at 10,000 pods;
// controllers need no order, so they take one pass over the objects instead.
import type { ApiObject } from '../kinds/meta.js'
import type { ObjectStore } from '../store/object-store.js'

/** The v1 Pods for which `keep` holds, by namespace, in no particular order. */
export function podsByNamespace<T extends ApiObject>(store: ObjectStore, keep: (pod: T) => boolean = () => true): Map<string, T[]> {
  const out = new Map<string, T[]>()
  for (const o of store.allObjects()) {
    if (o.kind !== 'Pod' || o.apiVersion !== 'v1' || !keep(o as T)) continue
    const ns = o.metadata.namespace ?? ''
    let list = out.get(ns)
    if (list === undefined) out.set(ns, (list = []))
    list.push(o as T)
  }
  return out
}

export interface PodsByController<T extends ApiObject> {
  /** controller uid -> the pods whose controller ownerReference names it. */
  controlled: Map<string, T[]>
  /** namespace -> the pods without a controller. */
  orphans: Map<string, T[]>
}

/** The v1 Pods by their controller, and the orphans by namespace, in one pass (cheaper than the store's owner index, whose keys must be split). */
export function podsByController<T extends ApiObject>(store: ObjectStore): PodsByController<T> {
  const controlled = new Map<string, T[]>()
  const orphans = new Map<string, T[]>()
  const add = (map: Map<string, T[]>, key: string, pod: T): void => {
    let list = map.get(key)
    if (list === undefined) map.set(key, (list = []))
    list.push(pod)
  }
  for (const o of store.allObjects()) {
    if (o.kind !== 'Pod' || o.apiVersion !== 'v1') continue
    const controller = (o.metadata.ownerReferences ?? []).find((r) => r.controller === true)
    if (controller === undefined) add(orphans, o.metadata.namespace ?? '', o as T)
    else add(controlled, controller.uid, o as T)
  }
  return { controlled, orphans }
}
