// The durable Raft log in LevelDB: hard state, the latest snapshot and the
// entries after it. Each Ready is one batch written with sync: true, so a
// process killed at any moment restarts with everything it acknowledged.
// Every value carries a CRC32; what does not verify is reported, not repaired.
import { crc32 } from 'node:zlib'
import { Level } from 'level'
import { decodeEntry, decodeHardState, decodeSnapshot, encodeEntry, encodeHardState, encodeSnapshot } from './codec.js'
import { LogCorruptionError } from './errors.js'
import { planPersist, type StoredRange } from './persist-plan.js'
import type { Entry, HardState, PersistedState, Ready, Snapshot } from './types.js'

const hardStateKey = new Uint8Array([0x6d, 0x68]) // "mh"
const snapshotKey = new Uint8Array([0x6d, 0x73]) // "ms"
const entryPrefix = 0x65 // "e"

function entryKey(index: number): Uint8Array {
  const key = new Uint8Array(9)
  key[0] = entryPrefix
  const view = new DataView(key.buffer)
  view.setUint32(1, Math.floor(index / 0x100000000))
  view.setUint32(5, index >>> 0)
  return key
}

function indexOfKey(key: Uint8Array): number {
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength)
  return view.getUint32(1) * 0x100000000 + view.getUint32(5)
}

/** [crc32 (4 bytes, big-endian)][payload] */
function sealed(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.byteLength + 4)
  new DataView(out.buffer).setUint32(0, crc32(payload))
  out.set(payload, 4)
  return out
}

export type StoreBatchOperation =
  | { type: 'put'; key: Uint8Array; value: Uint8Array }
  | { type: 'del'; key: Uint8Array }

export class LevelLogStore {
  private range: StoredRange = { firstIndex: 1, lastIndex: 0 }

  private constructor(
    readonly directory: string,
    readonly db: Level<Uint8Array, Uint8Array>,
  ) {}

  static async open(directory: string): Promise<LevelLogStore> {
    const db = new Level<Uint8Array, Uint8Array>(directory, { keyEncoding: 'view', valueEncoding: 'view' })
    try {
      await db.open()
    } catch (err) {
      throw new LogCorruptionError(directory, `LevelDB would not open (${(err as Error).message})`)
    }
    return new LevelLogStore(directory, db)
  }

  private unseal(what: string, value: Uint8Array): Uint8Array {
    if (value.byteLength < 4) throw new LogCorruptionError(this.directory, `${what} is truncated`)
    const expected = new DataView(value.buffer, value.byteOffset, 4).getUint32(0)
    const payload = value.subarray(4)
    if (crc32(payload) !== expected) throw new LogCorruptionError(this.directory, `${what} fails its checksum`)
    return payload
  }

  private decode<T>(what: string, value: Uint8Array, decode: (payload: Uint8Array) => T): T {
    const payload = this.unseal(what, value)
    try {
      return decode(payload)
    } catch (err) {
      throw new LogCorruptionError(this.directory, `${what} cannot be decoded (${(err as Error).message})`)
    }
  }

  /** Read and verify everything; the result is what the Raft core restarts from. */
  async load(): Promise<PersistedState> {
    const hardValue = await this.db.get(hardStateKey)
    const hardState: HardState = hardValue === undefined ? { term: 0, vote: null, commit: 0 } : this.decode('hard state', hardValue, decodeHardState)
    const snapValue = await this.db.get(snapshotKey)
    const snapshot: Snapshot | null = snapValue === undefined ? null : this.decode('snapshot', snapValue, decodeSnapshot)
    const entries = await this.loadEntries(snapshot?.metadata.index ?? 0)
    const lastIndex = entries[entries.length - 1]?.index ?? snapshot?.metadata.index ?? 0
    if (hardState.commit > lastIndex) {
      throw new LogCorruptionError(this.directory, `commit index ${hardState.commit} is beyond the last stored entry ${lastIndex} (entries are missing)`)
    }
    const firstIndex = entries[0]?.index ?? (snapshot?.metadata.index ?? 0) + 1
    this.range = { firstIndex, lastIndex }
    return { hardState, snapshot, entries }
  }

  private async loadEntries(snapshotIndex: number): Promise<Entry[]> {
    const entries: Entry[] = []
    for await (const [key, value] of this.db.iterator({ gte: entryKey(0), lte: entryKey(Number.MAX_SAFE_INTEGER) })) {
      const index = indexOfKey(key)
      const entry = this.decode(`entry ${index}`, value, decodeEntry)
      if (entry.index !== index) throw new LogCorruptionError(this.directory, `entry stored under index ${index} claims index ${entry.index}`)
      const expected = entries.length === 0 ? snapshotIndex + 1 : entries[entries.length - 1]!.index + 1
      if (index !== expected) {
        if (entries.length === 0 && index <= snapshotIndex) {
          throw new LogCorruptionError(this.directory, `entry ${index} is covered by the snapshot at ${snapshotIndex} but was not removed`)
        }
        throw new LogCorruptionError(this.directory, `entries jump from ${expected - 1} to ${index}`)
      }
      entries.push(entry)
    }
    return entries
  }

  /** Is this a new data directory (nothing was ever persisted)? */
  async isEmpty(): Promise<boolean> {
    const hard = await this.db.get(hardStateKey)
    return hard === undefined
  }

  /** Persist a Ready's hard state, snapshot and entries in one synced batch. */
  async persist(rd: Pick<Ready, 'hardState' | 'snapshot' | 'entries'>, extra: StoreBatchOperation[] = []): Promise<void> {
    const ops = this.batchFor(rd)
    for (const op of extra) ops.push(op)
    if (ops.length === 0) return
    await this.db.batch(ops, { sync: true })
  }

  /** The batch operations for a Ready; also advances the known stored range. */
  batchFor(rd: Pick<Ready, 'hardState' | 'snapshot' | 'entries'>): StoreBatchOperation[] {
    const plan = planPersist(this.range, rd)
    const ops: StoreBatchOperation[] = []
    if (plan.hardState !== null) ops.push({ type: 'put', key: hardStateKey, value: sealed(encodeHardState(plan.hardState)) })
    if (plan.snapshot !== null) ops.push({ type: 'put', key: snapshotKey, value: sealed(encodeSnapshot(plan.snapshot)) })
    for (const d of plan.deletions) {
      for (let i = d.firstIndex; i <= d.lastIndex; i++) ops.push({ type: 'del', key: entryKey(i) })
    }
    for (const e of plan.entries) ops.push({ type: 'put', key: entryKey(e.index), value: sealed(encodeEntry(e)) })
    this.range = plan.range
    return ops
  }

  /** Write a founding state (see bootstrapState) into an empty store. */
  async bootstrap(state: PersistedState): Promise<void> {
    if (!(await this.isEmpty())) throw new Error(`${this.directory} already holds a Raft log`)
    const snapshot = state.snapshot === null ? null : { snapshot: state.snapshot, replacesLog: true }
    await this.persist({ hardState: state.hardState, snapshot, entries: state.entries })
  }

  async close(): Promise<void> {
    await this.db.close()
  }
}
