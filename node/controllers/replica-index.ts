// The pods of each ReplicationController or ReplicaSet, kept from the store's change feed
// rather than rescanned every round: at 10,000 pods, three scans and two
// selector passes per round were most of the leader's CPU while an RC scaled
// up. Built from the store when this peer starts to lead (and whenever it is
// not running), then updated by every change, in the same turn the store
// applies it, so it always says what the store says. Per controller it keeps
// running counts (replicas, fully labelled, ready, pods to release), so a
// controller with nothing to adopt, release or delete is planned from counts.
import { matches, selectorFromMap, type Selector } from '../api/selectors.js'
import type { ApiObject } from '../kinds/meta.js'
import type { ObjectStore } from '../store/object-store.js'
import type { WatchEvent } from '../store/watch.js'
import { controllerRefOf, isActivePod, isPodReady, selectorOf, type PodObject, type RcObject } from './replication.js'

/** What one owned pod adds to its controller's counts. */
interface Contribution {
  replicas: number
  fullyLabeled: number
  ready: number
  /** Owned but no longer matching: to release. */
  release: number
}

/** One controller's counts, for the selector and template labels they were counted with. */
export interface ReplicaTally extends Contribution {
  signature: string
}

const nothing: Contribution = { replicas: 0, fullyLabeled: 0, ready: 0, release: 0 }

function signatureOf(rc: RcObject): string {
  return JSON.stringify([rc.metadata.namespace ?? '', rc.spec?.selector ?? {}, rc.spec?.template?.metadata?.labels ?? {}])
}

function podKey(pod: ApiObject): string {
  return `${pod.metadata.namespace ?? ''}/${pod.metadata.name ?? ''}`
}

function add(map: Map<string, Map<string, PodObject>>, key: string, pod: PodObject): void {
  let pods = map.get(key)
  if (pods === undefined) map.set(key, (pods = new Map()))
  pods.set(podKey(pod), pod)
}

function remove(map: Map<string, Map<string, PodObject>>, key: string, pod: PodObject): void {
  const pods = map.get(key)
  pods?.delete(podKey(pod))
  if (pods?.size === 0) map.delete(key)
}

/** Counts kept for one controller, with the selectors they were made with. */
class Counter {
  readonly tally: ReplicaTally
  private readonly selector: Selector
  private readonly templateSelector: Selector
  private readonly namespace: string | undefined

  constructor(rc: RcObject, pods: Iterable<PodObject>) {
    this.namespace = rc.metadata.namespace
    this.selector = selectorOf(rc)
    this.templateSelector = selectorFromMap(rc.spec?.template?.metadata?.labels)
    this.tally = { signature: signatureOf(rc), ...nothing }
    for (const pod of pods) this.change(undefined, pod)
  }

  private contribution(pod: PodObject | undefined): Contribution {
    // A pod of another namespace naming this controller is not its own (claimPods skips it too).
    if (pod === undefined || pod.metadata.namespace !== this.namespace) return nothing
    if (!matches(this.selector, pod.metadata.labels)) return { ...nothing, release: 1 }
    if (!isActivePod(pod)) return nothing
    return { replicas: 1, fullyLabeled: matches(this.templateSelector, pod.metadata.labels) ? 1 : 0, ready: isPodReady(pod) ? 1 : 0, release: 0 }
  }

  change(before: PodObject | undefined, after: PodObject | undefined): void {
    const out = this.contribution(before)
    const into = this.contribution(after)
    this.tally.replicas += into.replicas - out.replicas
    this.tally.fullyLabeled += into.fullyLabeled - out.fullyLabeled
    this.tally.ready += into.ready - out.ready
    this.tally.release += into.release - out.release
  }
}

export class ReplicaIndex {
  /** pod key -> the pod as the store holds it. */
  private readonly pods = new Map<string, PodObject>()
  /** controller uid -> its pods (by the ownerReference with controller: true). */
  private readonly controlled = new Map<string, Map<string, PodObject>>()
  /** namespace -> pods without a controller. */
  private readonly orphanPods = new Map<string, Map<string, PodObject>>()
  private readonly counters = new Map<string, Counter>()
  private stopWatch: (() => void) | null = null

  constructor(private readonly store: ObjectStore) {}

  get running(): boolean {
    return this.stopWatch !== null
  }

  /** Read every pod from the store and follow its changes from here on. */
  start(): void {
    this.stop()
    for (const o of this.store.allObjects()) if (o.kind === 'Pod' && o.apiVersion === 'v1') this.change(undefined, o as PodObject)
    this.stopWatch = this.store.watches.watchFrom(this.store.appliedIndex, (e) => this.onEvent(e))
  }

  stop(): void {
    this.stopWatch?.()
    this.stopWatch = null
    this.pods.clear()
    this.controlled.clear()
    this.orphanPods.clear()
    this.counters.clear()
  }

  /** The pods `uid` controls. */
  controlledBy(uid: string): Iterable<PodObject> {
    return this.controlled.get(uid)?.values() ?? []
  }

  orphans(namespace: string): Iterable<PodObject> {
    return this.orphanPods.get(namespace)?.values() ?? []
  }

  hasOrphans(namespace: string): boolean {
    return this.orphanPods.has(namespace)
  }

  /** `rc`'s counts, counted again if its selector or template labels changed since. */
  tally(rc: RcObject): ReplicaTally {
    const uid = rc.metadata.uid ?? ''
    let counter = this.counters.get(uid)
    if (counter === undefined || counter.tally.signature !== signatureOf(rc)) {
      counter = new Counter(rc, this.controlledBy(uid))
      this.counters.set(uid, counter)
    }
    return counter.tally
  }

  /** Forget the counts of controllers that are gone. */
  keepTallies(uids: ReadonlySet<string>): void {
    for (const uid of this.counters.keys()) if (!uids.has(uid)) this.counters.delete(uid)
  }

  private onEvent(e: WatchEvent): void {
    if (e.object.kind !== 'Pod' || e.object.apiVersion !== 'v1') return
    const key = podKey(e.object)
    this.change(this.pods.get(key), e.type === 'DELETED' ? undefined : (e.object as PodObject))
  }

  private change(before: PodObject | undefined, after: PodObject | undefined): void {
    const beforeUid = before === undefined ? undefined : controllerRefOf(before)?.uid
    const afterUid = after === undefined ? undefined : controllerRefOf(after)?.uid
    if (before !== undefined) {
      if (beforeUid === undefined) remove(this.orphanPods, before.metadata.namespace ?? '', before)
      else remove(this.controlled, beforeUid, before)
    }
    if (after !== undefined) {
      this.pods.set(podKey(after), after)
      if (afterUid === undefined) add(this.orphanPods, after.metadata.namespace ?? '', after)
      else add(this.controlled, afterUid, after)
    } else if (before !== undefined) this.pods.delete(podKey(before))
    if (beforeUid === afterUid) {
      if (beforeUid !== undefined) this.counters.get(beforeUid)?.change(before, after)
      return
    }
    if (beforeUid !== undefined) this.counters.get(beforeUid)?.change(before, undefined)
    if (afterUid !== undefined) this.counters.get(afterUid)?.change(undefined, after)
  }
}
