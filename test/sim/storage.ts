// The simulator's durable storage: what survives a crash. A Ready is written
// here only when its simulated fsync completes; a crash before that loses it,
// exactly as an unsynced LevelDB batch would be lost.
import { encodeEntry, encodeHardState } from '../../consensus/codec.js'
import { planPersist, type StoredRange } from '../../consensus/persist-plan.js'
import type { Entry, HardState, PersistedState, Ready, Snapshot } from '../../consensus/types.js'

export class SimStorage {
  hardState: HardState = { term: 0, vote: null, commit: 0 }
  snapshot: Snapshot | null = null
  private readonly entries = new Map<number, Entry>()
  range: StoredRange = { firstIndex: 1, lastIndex: 0 }

  /** Seed with a bootstrap state, as `shoal up` would write it before starting the core. */
  initialize(state: PersistedState): void {
    this.hardState = { ...state.hardState }
    this.snapshot = state.snapshot
    for (const e of state.entries) this.entries.set(e.index, e)
    const first = state.entries[0]?.index ?? (state.snapshot?.metadata.index ?? 0) + 1
    this.range = { firstIndex: first, lastIndex: first + state.entries.length - 1 }
  }

  write(rd: Pick<Ready, 'hardState' | 'snapshot' | 'entries'>): void {
    const plan = planPersist(this.range, rd)
    if (plan.hardState !== null) this.hardState = { ...plan.hardState }
    if (plan.snapshot !== null) this.snapshot = plan.snapshot
    for (const d of plan.deletions) {
      for (let i = d.firstIndex; i <= d.lastIndex; i++) this.entries.delete(i)
    }
    for (const e of plan.entries) this.entries.set(e.index, e)
    this.range = plan.range
  }

  entry(index: number): Entry | undefined {
    return this.entries.get(index)
  }

  term(index: number): number | undefined {
    if (this.snapshot !== null && index === this.snapshot.metadata.index) return this.snapshot.metadata.term
    return this.entries.get(index)?.term
  }

  /** Bytes of Raft state on disk, not counting the snapshot (the lab's persister.RaftStateSize). */
  raftStateBytes(): number {
    let bytes = encodeHardState(this.hardState).byteLength
    for (const e of this.entries.values()) bytes += encodeEntry(e).byteLength
    return bytes
  }

  load(): PersistedState {
    const entries: Entry[] = []
    for (let i = this.range.firstIndex; i <= this.range.lastIndex; i++) {
      const e = this.entries.get(i)
      if (e === undefined) throw new Error(`simulated storage lost entry ${i} inside ${this.range.firstIndex}..${this.range.lastIndex}`)
      entries.push(e)
    }
    return { hardState: { ...this.hardState }, snapshot: this.snapshot, entries }
  }
}
