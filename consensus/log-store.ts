// The durable Raft log in LevelDB: hard state, the latest snapshot and the
// entries after it. Each Ready is one batch written with sync: true, so a
// process killed at any moment restarts with everything it acknowledged.
// Entries are stored in segments (one value per Ready, split past
// segmentMaxBytes): LevelDB's per-key cost, not the disk, bounded a store of
// one key per entry. Every value carries a CRC32; what does not verify is
// reported, not repaired.
import { crc32 } from 'node:zlib'
import { Level } from 'level'
import { decodeEntries, decodeHardState, decodeSnapshot, encodeEntries, encodeHardState, encodeSnapshot } from './codec.js'
import { LogCorruptionError } from './errors.js'
import { entrySizeBytes } from './log.js'
import { planPersist, type StoredRange } from './persist-plan.js'
import type { Entry, HardState, PersistedState, Ready } from './types.js'

const hardStateKey = new Uint8Array([0x6d, 0x68]) // "mh"
const snapshotKey = new Uint8Array([0x6d, 0x73]) // "ms"
const segmentPrefix = 0x65 // "e"
/** A Ready's entries beyond this many bytes go into several segments. */
const segmentMaxBytes = 4 * 1024 * 1024

/** A stored segment holds entries [firstIndex, lastIndex] under the key of its first index. */
interface Segment {
  firstIndex: number
  lastIndex: number
}

export function segmentKey(firstIndex: number): Uint8Array {
  const key = new Uint8Array(9)
  key[0] = segmentPrefix
  const view = new DataView(key.buffer)
  view.setUint32(1, Math.floor(firstIndex / 0x100000000))
  view.setUint32(5, firstIndex >>> 0)
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

type PersistInput = Pick<Ready, 'hardState' | 'snapshot' | 'entries'>

export class LevelLogStore {
  private range: StoredRange = { firstIndex: 1, lastIndex: 0 }
  private segments: Segment[] = []

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

  private decode<T>(what: string, value: Uint8Array, decode: (payload: Uint8Array) => T): T {
    if (value.byteLength < 4) throw new LogCorruptionError(this.directory, `${what} is truncated`)
    const payload = value.subarray(4)
    if (crc32(payload) !== new DataView(value.buffer, value.byteOffset, 4).getUint32(0)) {
      throw new LogCorruptionError(this.directory, `${what} fails its checksum`)
    }
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
    const snapshot = snapValue === undefined ? null : this.decode('snapshot', snapValue, decodeSnapshot)
    const snapshotIndex = snapshot?.metadata.index ?? 0
    const entries = await this.loadEntries(snapshotIndex)
    const lastIndex = entries[entries.length - 1]?.index ?? snapshotIndex
    if (hardState.commit > lastIndex) {
      throw new LogCorruptionError(this.directory, `commit index ${hardState.commit} is beyond the last stored entry ${lastIndex} (entries are missing)`)
    }
    this.range = { firstIndex: entries[0]?.index ?? snapshotIndex + 1, lastIndex }
    return { hardState, snapshot, entries }
  }

  private async loadEntries(snapshotIndex: number): Promise<Entry[]> {
    const entries: Entry[] = []
    this.segments = []
    for await (const [key, value] of this.db.iterator({ gte: segmentKey(0), lte: segmentKey(Number.MAX_SAFE_INTEGER) })) {
      const first = indexOfKey(key)
      const segment = this.decode(`log segment at ${first}`, value, decodeEntries)
      segment.forEach((e, k) => {
        if (e.index !== first + k) throw new LogCorruptionError(this.directory, `segment at ${first} holds entry ${e.index} in position ${k}`)
      })
      const last = segment[segment.length - 1]
      if (last === undefined) throw new LogCorruptionError(this.directory, `segment at ${first} is empty`)
      this.segments.push({ firstIndex: first, lastIndex: last.index })
      for (const e of segment) {
        // A compaction may leave the head of a segment behind: the snapshot covers it.
        if (e.index <= snapshotIndex) continue
        const expected = (entries[entries.length - 1]?.index ?? snapshotIndex) + 1
        if (e.index !== expected) throw new LogCorruptionError(this.directory, `entries jump from ${expected - 1} to ${e.index}`)
        entries.push(e)
      }
    }
    return entries
  }

  /** Is this a new data directory (nothing was ever persisted)? */
  async isEmpty(): Promise<boolean> {
    return (await this.db.get(hardStateKey)) === undefined
  }

  /** Persist a Ready's hard state, snapshot and entries in one synced batch (plus `extra` operations of the caller's). */
  async persist(rd: PersistInput, extra: readonly StoreBatchOperation[] = []): Promise<void> {
    const ops = await this.batchFor(rd)
    for (const op of extra) ops.push(op)
    if (ops.length > 0) await this.db.batch(ops, { sync: true })
  }

  /** Write the caller's operations alone, without waiting for the disk (what they record can be rebuilt from the log). */
  async writeUnsynced(ops: readonly StoreBatchOperation[]): Promise<void> {
    if (ops.length > 0) await this.db.batch([...ops], { sync: false })
  }

  /** The batch for a Ready; advances the store's view of what is stored. */
  private async batchFor(rd: PersistInput): Promise<StoreBatchOperation[]> {
    const plan = planPersist(this.range, rd)
    const ops: StoreBatchOperation[] = []
    if (plan.hardState !== null) ops.push({ type: 'put', key: hardStateKey, value: sealed(encodeHardState(plan.hardState)) })
    const pending = rd.snapshot
    if (pending !== null) {
      ops.push({ type: 'put', key: snapshotKey, value: sealed(encodeSnapshot(pending.snapshot)) })
      if (pending.replacesLog) this.dropSegmentsFrom(0, ops)
      else this.dropSegmentsThrough(pending.snapshot.metadata.index, ops)
    }
    const first = rd.entries[0]
    if (first !== undefined) {
      await this.truncateFrom(first.index, ops)
      for (const chunk of splitBySize(rd.entries)) {
        ops.push({ type: 'put', key: segmentKey(chunk[0]!.index), value: sealed(encodeEntries(chunk)) })
        this.segments.push({ firstIndex: chunk[0]!.index, lastIndex: chunk[chunk.length - 1]!.index })
      }
    }
    this.range = plan.range
    return ops
  }

  /** Segments are sorted: compaction drops from the front, truncation from the back. */
  private dropSegmentsThrough(index: number, ops: StoreBatchOperation[]): void {
    let k = 0
    while (k < this.segments.length && this.segments[k]!.lastIndex <= index) {
      ops.push({ type: 'del', key: segmentKey(this.segments[k]!.firstIndex) })
      k++
    }
    if (k > 0) this.segments.splice(0, k)
  }

  private dropSegmentsFrom(position: number, ops: StoreBatchOperation[]): void {
    for (const s of this.segments.splice(position)) ops.push({ type: 'del', key: segmentKey(s.firstIndex) })
  }

  /** New entries start at `index`: segments from there on go, and one that straddles it is cut short. */
  private async truncateFrom(index: number, ops: StoreBatchOperation[]): Promise<void> {
    let position = this.segments.length
    while (position > 0 && this.segments[position - 1]!.firstIndex >= index) position--
    this.dropSegmentsFrom(position, ops)
    const straddling = this.segments[this.segments.length - 1]
    if (straddling === undefined || straddling.lastIndex < index) return
    const value = await this.db.get(segmentKey(straddling.firstIndex))
    if (value === undefined) throw new LogCorruptionError(this.directory, `segment at ${straddling.firstIndex} vanished`)
    const kept = this.decode(`log segment at ${straddling.firstIndex}`, value, decodeEntries).filter((e) => e.index < index)
    ops.push({ type: 'put', key: segmentKey(straddling.firstIndex), value: sealed(encodeEntries(kept)) })
    straddling.lastIndex = index - 1
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

function splitBySize(entries: readonly Entry[]): Entry[][] {
  const chunks: Entry[][] = [[]]
  let bytes = 0
  for (const e of entries) {
    const size = entrySizeBytes(e)
    if (bytes + size > segmentMaxBytes && chunks[chunks.length - 1]!.length > 0) {
      chunks.push([])
      bytes = 0
    }
    chunks[chunks.length - 1]!.push(e)
    bytes += size
  }
  return chunks
}
