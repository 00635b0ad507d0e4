// The scheduler's view of the pods, kept from the store's change feed: the
// pending ones and the bound ones. Listing (and sorting) 10,000 pods every
// round cost the leader more than planning did, and a round with nothing
// pending now costs nothing. Built from the store when this peer starts to
// lead (and whenever it is not running), then updated by every change in the
// same turn the store applies it, so it always says what the store says.
import type { ApiObject } from '../kinds/meta.js'
import type { ObjectStore } from '../store/object-store.js'
import type { WatchEvent } from '../store/watch.js'
import { podSpec } from './snapshot.js'

function podKey(pod: ApiObject): string {
  return `${pod.metadata.namespace ?? ''}/${pod.metadata.name ?? ''}`
}

export class SchedulerPodIndex {
  /** Pods for which `isPending` holds, by key. */
  readonly pending = new Map<string, ApiObject>()
  /** Pods with a node, by key. */
  readonly bound = new Map<string, ApiObject>()
  private stopWatch: (() => void) | null = null

  constructor(
    private readonly store: ObjectStore,
    private readonly isPending: (pod: ApiObject) => boolean,
  ) {}

  get running(): boolean {
    return this.stopWatch !== null
  }

  /** Read every pod from the store and follow its changes from here on. */
  start(): void {
    this.stop()
    for (const o of this.store.allObjects()) if (o.kind === 'Pod' && o.apiVersion === 'v1') this.put(o)
    this.stopWatch = this.store.watches.watchFrom(this.store.appliedIndex, (e) => this.onEvent(e))
  }

  stop(): void {
    this.stopWatch?.()
    this.stopWatch = null
    this.pending.clear()
    this.bound.clear()
  }

  private onEvent(e: WatchEvent): void {
    if (e.object.kind !== 'Pod' || e.object.apiVersion !== 'v1') return
    if (e.type === 'DELETED') {
      const key = podKey(e.object)
      this.pending.delete(key)
      this.bound.delete(key)
    } else this.put(e.object)
  }

  private put(pod: ApiObject): void {
    const key = podKey(pod)
    this.pending.delete(key)
    this.bound.delete(key)
    if ((podSpec(pod).nodeName ?? '') !== '') this.bound.set(key, pod)
    else if (this.isPending(pod)) this.pending.set(key, pod)
  }
}
