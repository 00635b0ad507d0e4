// The pods bound to this peer's Node, kept from the local replica: a scan at
// start, then the store's change feed. Reading the local replica (not the
// leader) is what lets a peer cut off from the others keep running its pods,
// and see, once it hears the log again, which of them were deleted or moved.
// A snapshot installed from the leader (a peer that was down or cut off for
// long) replaces the objects without change events, so the pods are also
// rescanned every rescanEveryMs: a pod deleted meanwhile is stopped within a
// second of the install, not at the agent's next 10 s resync.
import type { ApiObject } from '../kinds/meta.js'
import type { ObjectStore } from '../store/object-store.js'
import type { WatchEvent } from '../store/watch.js'
import type { PodJson } from './pod-types.js'

export type BoundPodsListener = (uid: string) => void

/** How often the pods are compared with the store again, for changes that came without events (snapshot installs). */
export const rescanEveryMs = 1000

function isPod(o: ApiObject): o is PodJson {
  return o.kind === 'Pod' && o.apiVersion === 'v1'
}

export class BoundPods {
  private readonly pods = new Map<string, PodJson>()
  private stopWatch: (() => void) | null = null
  private rescanTimer: ReturnType<typeof setInterval> | null = null

  constructor(
    private readonly store: ObjectStore,
    private readonly nodeName: string,
    private readonly onChange: BoundPodsListener,
  ) {}

  start(): void {
    this.rescan()
    this.stopWatch = this.store.watches.watchFrom(this.store.appliedIndex, (e) => this.onEvent(e))
    this.rescanTimer = setInterval(() => this.rescan(), rescanEveryMs)
    this.rescanTimer.unref()
  }

  stop(): void {
    this.stopWatch?.()
    this.stopWatch = null
    if (this.rescanTimer !== null) clearInterval(this.rescanTimer)
    this.rescanTimer = null
  }

  /** Everything from the store again (after a snapshot install the change feed starts over). */
  rescan(): void {
    const seen = new Set<string>()
    const def = this.store.kinds.byKind('v1', 'Pod')
    for (const o of def === undefined ? [] : this.store.list(def)) {
      if (!isPod(o) || o.spec.nodeName !== this.nodeName) continue
      const uid = o.metadata.uid ?? ''
      seen.add(uid)
      if (this.pods.get(uid) !== o) {
        this.pods.set(uid, o)
        this.onChange(uid)
      }
    }
    for (const uid of [...this.pods.keys()]) {
      if (seen.has(uid)) continue
      this.pods.delete(uid)
      this.onChange(uid)
    }
  }

  get(uid: string): PodJson | undefined {
    return this.pods.get(uid)
  }

  all(): PodJson[] {
    return [...this.pods.values()]
  }

  uids(): IterableIterator<string> {
    return this.pods.keys()
  }

  private onEvent(e: WatchEvent): void {
    if (!isPod(e.object)) return
    const uid = e.object.metadata.uid ?? ''
    const boundHere = e.type !== 'DELETED' && e.object.spec.nodeName === this.nodeName
    if (boundHere) this.pods.set(uid, e.object)
    else if (!this.pods.delete(uid)) return
    this.onChange(uid)
  }
}
