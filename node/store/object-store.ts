// The replicated object store: every API object, in memory and in LevelDB
// next to the Raft log. Commands are applied in log order; resourceVersion is
// the Raft index of an object's last change. Every peer holds all of it.
import type { StoreBatchOperation } from '../../consensus/log-store.js'
import type { AllocationResult, KindDefinition, KindRegistry } from '../kinds/kind.js'
import { apiVersionOf } from '../kinds/kind.js'
import type { ApiObject } from '../kinds/meta.js'
import type { CommandOutcome, ObjectRef, StoreCommand, StoreFailure } from './commands.js'
import { cascadeDelete } from './cascade.js'
import { WatchWindow, type WatchEvent } from './watch.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const objectPrefix = 'o/'

export function kindKey(apiVersion: string, kind: string): string {
  return `${apiVersion}/${kind}`
}

function objectKey(kk: string, namespace: string | undefined, name: string): string {
  return `${objectPrefix}${kk}/${namespace ?? ''}/${name}`
}

export interface StoreDb {
  iterator(options: { gte: Uint8Array; lt: Uint8Array }): AsyncIterable<[Uint8Array, Uint8Array]>
}

/** Outcomes kept for the peer that proposed the command; older ones are forgotten. */
const outcomesKept = 10_000

export class ObjectStore {
  /** kindKey -> namespace/name -> object */
  private readonly objects = new Map<string, Map<string, ApiObject>>()
  private readonly outcomes = new Map<number, CommandOutcome[]>()
  /** owner uid -> keys of objects that name it in ownerReferences (for cascading deletes). */
  private readonly dependents = new Map<string, Set<string>>()
  readonly watches: WatchWindow
  appliedIndex = 0
  /** Cluster settings an allocation may read (the registry's, wired by PeerState). */
  settingOf: (key: string) => string | undefined = () => undefined

  constructor(
    readonly kinds: KindRegistry,
    options: { watchEventsMax?: number; watchersMax?: number } = {},
  ) {
    this.watches = new WatchWindow({ eventsMax: options.watchEventsMax ?? 20_000, watchersMax: options.watchersMax ?? 2_000 })
  }

  async load(db: StoreDb, appliedIndex: number): Promise<void> {
    for await (const [, value] of db.iterator({ gte: encoder.encode(objectPrefix), lt: encoder.encode('o0') })) {
      this.put(JSON.parse(decoder.decode(value)) as ApiObject)
    }
    this.appliedIndex = appliedIndex
    this.watches.reset(appliedIndex)
  }

  private bucket(kk: string): Map<string, ApiObject> {
    let b = this.objects.get(kk)
    if (b === undefined) {
      b = new Map()
      this.objects.set(kk, b)
    }
    return b
  }

  private put(object: ApiObject): void {
    const kk = kindKey(object.apiVersion, object.kind)
    const key = `${object.metadata.namespace ?? ''}/${object.metadata.name}`
    const bucket = this.bucket(kk)
    const previous = bucket.get(key)
    if (previous !== undefined) this.unindexOwners(previous, kk)
    bucket.set(key, object)
    for (const owner of object.metadata.ownerReferences ?? []) {
      let set = this.dependents.get(owner.uid)
      if (set === undefined) this.dependents.set(owner.uid, (set = new Set()))
      set.add(`${kk}|${key}`)
    }
  }

  private unindexOwners(object: ApiObject, kk: string): void {
    const key = `${kk}|${object.metadata.namespace ?? ''}/${object.metadata.name}`
    for (const owner of object.metadata.ownerReferences ?? []) {
      const set = this.dependents.get(owner.uid)
      set?.delete(key)
      if (set?.size === 0) this.dependents.delete(owner.uid)
    }
  }

  /** Objects whose ownerReferences name `uid`. */
  dependentsOf(uid: string): ApiObject[] {
    const out: ApiObject[] = []
    for (const entry of this.dependents.get(uid) ?? []) {
      const [kk, key] = entry.split('|') as [string, string]
      const o = this.objects.get(kk)?.get(key)
      if (o !== undefined) out.push(o)
    }
    return out
  }

  get(ref: ObjectRef): ApiObject | undefined {
    return this.objects.get(kindKey(ref.apiVersion, ref.kind))?.get(`${ref.namespace ?? ''}/${ref.name}`)
  }

  /** Objects of a kind, optionally in one namespace, in key order (stable for paging). */
  list(def: KindDefinition, namespace?: string): ApiObject[] {
    const bucket = this.objects.get(kindKey(apiVersionOf(def), def.kind))
    if (bucket === undefined) return []
    // Each sort key built once: comparing by freshly built strings cost more than the list itself.
    const keyed: [string, ApiObject][] = []
    for (const [key, o] of bucket) if (namespace === undefined || o.metadata.namespace === namespace) keyed.push([key, o])
    keyed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    return keyed.map((k) => k[1])
  }

  allObjects(): ApiObject[] {
    return [...this.objects.values()].flatMap((b) => [...b.values()])
  }

  outcomeOf(index: number): CommandOutcome[] | undefined {
    return this.outcomes.get(index)
  }

  /** Apply one entry's command; LevelDB operations go into `ops`, watch events are published after. */
  apply(index: number, command: StoreCommand, ops: StoreBatchOperation[], events: WatchEvent[]): void {
    const outcomes: CommandOutcome[] = []
    const commands = command.op === 'obj.batch' ? command.commands : [command]
    for (const c of commands) outcomes.push(this.applyOne(index, c, ops, events))
    this.outcomes.set(index, outcomes)
    if (this.outcomes.size > outcomesKept) this.outcomes.delete(this.outcomes.keys().next().value!)
  }

  private applyOne(index: number, c: StoreCommand, ops: StoreBatchOperation[], events: WatchEvent[]): CommandOutcome {
    switch (c.op) {
      case 'obj.create':
        return this.create(index, c.object, ops, events)
      case 'obj.update':
        return this.update(index, c, ops, events)
      case 'obj.delete':
        return this.remove(index, c, ops, events)
      case 'obj.batch':
        return failure(422, 'Invalid', 'batches do not nest', {})
    }
  }

  private create(index: number, proposed: ApiObject, ops: StoreBatchOperation[], events: WatchEvent[]): CommandOutcome {
    const ref = { apiVersion: proposed.apiVersion, kind: proposed.kind, namespace: proposed.metadata.namespace, name: proposed.metadata.name ?? '' }
    if (this.get(ref) !== undefined) return failure(409, 'AlreadyExists', `${lowerPlural(this, ref)} "${ref.name}" already exists`, details(this, ref))
    const ns = proposed.metadata.namespace
    if (ns !== undefined && this.get({ apiVersion: 'v1', kind: 'Namespace', name: ns }) === undefined) {
      return failure(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' })
    }
    const allocated = this.allocate(proposed, null, index)
    if ('invalid' in allocated) return failure(422, 'Invalid', `${ref.kind} "${ref.name}" is invalid: ${allocated.invalid}`, details(this, ref))
    const object = allocated.object
    const stored: ApiObject = { ...object, metadata: { ...object.metadata, resourceVersion: String(index) } }
    this.write(stored, ops)
    events.push(this.event('ADDED', stored, index))
    return { ok: true, object: stored }
  }

  private update(index: number, c: Extract<StoreCommand, { op: 'obj.update' }>, ops: StoreBatchOperation[], events: WatchEvent[]): CommandOutcome {
    const ref = { apiVersion: c.object.apiVersion, kind: c.object.kind, namespace: c.object.metadata.namespace, name: c.object.metadata.name ?? '' }
    const current = this.get(ref)
    if (current === undefined) return failure(404, 'NotFound', `${lowerPlural(this, ref)} "${ref.name}" not found`, details(this, ref))
    if (c.expectResourceVersion !== undefined && c.expectResourceVersion !== current.metadata.resourceVersion) {
      return failure(409, 'Conflict', `Operation cannot be fulfilled on ${lowerPlural(this, ref)} "${ref.name}": the object has been modified; please apply your changes to the latest version and try again`, details(this, ref))
    }
    // An update meant for an object that was since deleted and made again under the same name must not land on the new one.
    const uid = c.object.metadata.uid
    if (uid !== undefined && uid !== '' && uid !== current.metadata.uid) {
      return failure(409, 'Conflict', `Operation cannot be fulfilled on ${lowerPlural(this, ref)} "${ref.name}": Precondition failed: UID in precondition: ${uid}, UID in object meta: ${current.metadata.uid ?? ''}`, details(this, ref))
    }
    const hasStatus = this.kinds.byKind(ref.apiVersion, ref.kind)?.subresources.status ?? false
    const allocated = c.subresource === 'status' ? { object: c.object } : this.allocate(c.object, current, index)
    if ('invalid' in allocated) return failure(422, 'Invalid', `${ref.kind} "${ref.name}" is invalid: ${allocated.invalid}`, details(this, ref))
    const stored = mergeUpdate(current, allocated.object, c.subresource === 'status', hasStatus, index)
    this.write(stored, ops)
    events.push(this.event('MODIFIED', stored, index))
    return { ok: true, object: stored }
  }

  private remove(index: number, c: Extract<StoreCommand, { op: 'obj.delete' }>, ops: StoreBatchOperation[], events: WatchEvent[]): CommandOutcome {
    const current = this.get(c.ref)
    if (current === undefined) return failure(404, 'NotFound', `${lowerPlural(this, c.ref)} "${c.ref.name}" not found`, details(this, c.ref))
    const stale = (c.expectUid !== undefined && c.expectUid !== current.metadata.uid) || (c.expectResourceVersion !== undefined && c.expectResourceVersion !== current.metadata.resourceVersion)
    if (stale) return failure(409, 'Conflict', `Operation cannot be fulfilled on ${lowerPlural(this, c.ref)} "${c.ref.name}": the precondition does not match the stored object`, details(this, c.ref))
    const deleted = this.erase(current, index, ops, events)
    cascadeDelete(this, current, c.propagation, index, ops, events)
    return { ok: true, object: deleted }
  }

  /** The kind's apply-time allocation (a Service's cluster IP), from replicated state only. */
  private allocate(object: ApiObject, old: ApiObject | null, index: number): AllocationResult {
    const def = this.kinds.byKind(object.apiVersion, object.kind)
    if (def?.allocate === undefined) return { object }
    const bucket = this.objects.get(kindKey(object.apiVersion, object.kind))
    return def.allocate(object, old, { index, existing: () => bucket?.values() ?? [], setting: (key) => this.settingOf(key) })
  }

  /** Remove one object (cascades call this too). */
  erase(object: ApiObject, index: number, ops: StoreBatchOperation[], events: WatchEvent[]): ApiObject {
    const kk = kindKey(object.apiVersion, object.kind)
    this.unindexOwners(object, kk)
    this.objects.get(kk)?.delete(`${object.metadata.namespace ?? ''}/${object.metadata.name}`)
    ops.push({ type: 'del', key: encoder.encode(objectKey(kk, object.metadata.namespace, object.metadata.name ?? '')) })
    const last = { ...object, metadata: { ...object.metadata, resourceVersion: String(index) } }
    events.push(this.event('DELETED', last, index))
    return last
  }

  /** Store a new version of an object (cascades use it to orphan dependents). */
  write(object: ApiObject, ops: StoreBatchOperation[]): void {
    this.put(object)
    const kk = kindKey(object.apiVersion, object.kind)
    ops.push({ type: 'put', key: encoder.encode(objectKey(kk, object.metadata.namespace, object.metadata.name ?? '')), value: encoder.encode(JSON.stringify(object)) })
  }

  event(type: WatchEvent['type'], object: ApiObject, index: number): WatchEvent {
    return { type, object, resourceVersion: index, kindKey: kindKey(object.apiVersion, object.kind) }
  }

  snapshotObjects(): ApiObject[] {
    return this.allObjects()
  }

  /**
   * Replace everything with a snapshot's objects; the LevelDB operations go into `ops`. Returns what
   * changed as watch events at the snapshot's index, for the caller to publish: without them every
   * change-feed consumer (the agent, the proxies, controller indexes, HTTP watches) would miss the
   * deletions and updates the snapshot carried.
   */
  restore(objects: readonly ApiObject[], index: number, ops: StoreBatchOperation[]): WatchEvent[] {
    const before = new Map<string, ApiObject>()
    for (const o of this.allObjects()) {
      const key = objectKey(kindKey(o.apiVersion, o.kind), o.metadata.namespace, o.metadata.name ?? '')
      before.set(key, o)
      ops.push({ type: 'del', key: encoder.encode(key) })
    }
    this.objects.clear()
    this.dependents.clear()
    const events: WatchEvent[] = []
    for (const o of objects) {
      this.write(o, ops)
      const key = objectKey(kindKey(o.apiVersion, o.kind), o.metadata.namespace, o.metadata.name ?? '')
      const old = before.get(key)
      before.delete(key)
      if (old === undefined || old.metadata.uid !== o.metadata.uid) {
        if (old !== undefined) events.push(this.event('DELETED', old, index))
        events.push(this.event('ADDED', o, index))
      } else if (old.metadata.resourceVersion !== o.metadata.resourceVersion) events.push(this.event('MODIFIED', o, index))
    }
    for (const old of before.values()) events.push(this.event('DELETED', old, index))
    this.appliedIndex = index
    this.watches.reset(index)
    return events
  }
}

function failure(code: StoreFailure['code'], reason: StoreFailure['reason'], message: string, d: StoreFailure['details']): CommandOutcome {
  return { ok: false, failure: { code, reason, message, details: d } }
}

function lowerPlural(store: ObjectStore, ref: ObjectRef): string {
  return store.kinds.byKind(ref.apiVersion, ref.kind)?.plural ?? ref.kind.toLowerCase()
}

function details(store: ObjectStore, ref: ObjectRef): StoreFailure['details'] {
  const def = store.kinds.byKind(ref.apiVersion, ref.kind)
  return { name: ref.name, kind: def?.plural ?? ref.kind.toLowerCase(), ...(def !== undefined && def.group !== '' ? { group: def.group } : {}) }
}

/**
 * An update keeps what the caller may not change (uid, creation time), keeps
 * the stored status unless this is the status subresource (and the stored
 * spec and metadata when it is), and bumps generation when the spec changes.
 */
function mergeUpdate(current: ApiObject, proposed: ApiObject, statusOnly: boolean, hasStatusSubresource: boolean, index: number): ApiObject {
  let base: ApiObject
  if (statusOnly) base = { ...current, status: proposed.status }
  else if (hasStatusSubresource) {
    base = { ...proposed }
    if (current.status === undefined) delete base.status
    else base.status = current.status
  } else base = proposed
  const specChanged = !statusOnly && JSON.stringify(proposed.spec) !== JSON.stringify(current.spec)
  const metadata = statusOnly ? current.metadata : proposed.metadata
  return {
    ...base,
    metadata: {
      ...metadata,
      uid: current.metadata.uid,
      creationTimestamp: current.metadata.creationTimestamp,
      generation: (current.metadata.generation ?? 1) + (specChanged ? 1 : 0),
      resourceVersion: String(index),
    },
  }
}
