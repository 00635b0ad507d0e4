// The Raft application of a peer: the cluster registry and the object store,
// applied together. Every change and the applied index reach LevelDB in one
// batch (the driver adds them to the next Ready's), so a peer killed at any
// moment replays exactly what it lacks (the Raft log is the durable record;
// this state is rebuilt from it).
import { Packr } from 'msgpackr'
import type { RaftApplication } from '../../consensus/driver.js'
import type { StoreBatchOperation } from '../../consensus/log-store.js'
import { EntryType, type Entry, type Snapshot } from '../../consensus/types.js'
import type { ApiObject } from '../kinds/meta.js'
import { ClusterRegistry, lastWritePerKey, registryOps, type PeerRecord, type RegistryCommand } from '../registry.js'
import { decodeCommand, storeOps, type StoreCommand } from '../store/commands.js'
import { ObjectStore } from '../store/object-store.js'
import type { WatchEvent } from '../store/watch.js'

const packr = new Packr({ useRecords: false, moreTypes: false })
const encoder = new TextEncoder()
const decoder = new TextDecoder()
const appliedKey = encoder.encode('app/applied')

export interface StateDb {
  iterator(options: { gte: Uint8Array; lt: Uint8Array }): AsyncIterable<[Uint8Array, Uint8Array]>
  get(key: Uint8Array): Promise<Uint8Array | undefined>
  batch(ops: StoreBatchOperation[]): Promise<void>
}

interface SnapshotState {
  registry: { peers: PeerRecord[]; settings: [string, string][] }
  objects: ApiObject[]
}

export class PeerState implements RaftApplication {
  appliedIndex = 0
  private readonly appliedWaiters: { index: number; resolve: () => void }[] = []

  constructor(
    private readonly db: StateDb,
    readonly registry: ClusterRegistry,
    readonly store: ObjectStore,
  ) {
    // Allocations (a Service's cluster IP) read cluster settings: applied in the same log, so every replica sees the same.
    store.settingOf = (key) => registry.settings.get(key)
  }

  /** Changes applied in memory but not yet handed to LevelDB, with the applied index last. */
  private pendingWrites: StoreBatchOperation[] = []

  takePendingWrites(): StoreBatchOperation[] {
    if (this.pendingWrites.length === 0) return []
    const ops = lastWritePerKey(this.pendingWrites)
    this.pendingWrites = []
    return ops
  }

  async load(): Promise<void> {
    const applied = await this.db.get(appliedKey)
    this.appliedIndex = applied === undefined ? 0 : Number(decoder.decode(applied))
    await this.registry.load()
    await this.store.load(this.db, this.appliedIndex)
  }

  async apply(entries: readonly Entry[]): Promise<void> {
    const last = entries[entries.length - 1]
    if (last === undefined) return
    const ops: StoreBatchOperation[] = []
    const events: WatchEvent[] = []
    const registryApplied: RegistryCommand[] = []
    for (const e of entries) {
      if (e.type !== EntryType.Normal || e.data.byteLength === 0) continue
      const command = decodeCommand(e.data)
      if (storeOps.has(command.op)) this.store.apply(e.index, command as unknown as StoreCommand, ops, events)
      else if (registryOps.has(command.op) && this.registry.applyCommand(command as unknown as RegistryCommand, ops)) registryApplied.push(command as unknown as RegistryCommand)
    }
    ops.push({ type: 'put', key: appliedKey, value: encoder.encode(String(last.index)) })
    // Written with the next Ready's synced batch (or when the driver is idle): see takePendingWrites.
    for (const op of ops) this.pendingWrites.push(op)
    this.setApplied(last.index)
    for (const e of events) this.store.watches.publish(e)
    this.registry.notify(registryApplied)
  }

  private setApplied(index: number): void {
    this.appliedIndex = index
    this.store.appliedIndex = index
    for (let k = 0; k < this.appliedWaiters.length; ) {
      const w = this.appliedWaiters[k]!
      if (w.index <= index) {
        this.appliedWaiters.splice(k, 1)
        w.resolve()
      } else k++
    }
  }

  /** Resolves once this peer has applied through `index` (read-your-writes after a forwarded write). */
  waitForApplied(index: number): Promise<void> {
    if (this.appliedIndex >= index) return Promise.resolve()
    return new Promise((resolve) => this.appliedWaiters.push({ index, resolve }))
  }

  snapshotData(): Uint8Array {
    const state: SnapshotState = { registry: this.registry.snapshotState(), objects: this.store.snapshotObjects() }
    return packr.pack(state)
  }

  async restore(snapshot: Snapshot): Promise<void> {
    const state: SnapshotState = snapshot.data.byteLength === 0 ? { registry: { peers: [], settings: [] }, objects: [] } : (packr.unpack(snapshot.data) as SnapshotState)
    // Deferred writes go first: the restore's deletions are computed from the state they describe.
    const ops: StoreBatchOperation[] = this.takePendingWrites()
    this.registry.restoreState(state.registry, ops)
    const events = this.store.restore(state.objects, snapshot.metadata.index, ops)
    ops.push({ type: 'put', key: appliedKey, value: encoder.encode(String(snapshot.metadata.index)) })
    await this.db.batch(lastWritePerKey(ops))
    this.setApplied(snapshot.metadata.index)
    for (const e of events) this.store.watches.publish(e)
  }
}
