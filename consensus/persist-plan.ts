// What a Ready does to a stored log, as data: which entry ranges to delete and
// what to write. The LevelDB store and the simulator's storage both follow it,
// so the simulation checks the same rules production uses.
import type { Entry, HardState, Ready, Snapshot } from './types.js'

/** Stored entries are [firstIndex, lastIndex]; empty when firstIndex > lastIndex. */
export interface StoredRange {
  firstIndex: number
  lastIndex: number
}

export interface PersistPlan {
  hardState: HardState | null
  snapshot: Snapshot | null
  /** Inclusive ranges of entry indexes to delete, applied before `entries` are written. */
  deletions: StoredRange[]
  entries: Entry[]
  /** The stored range once the plan is applied. */
  range: StoredRange
}

export function planPersist(range: StoredRange, rd: Pick<Ready, 'hardState' | 'snapshot' | 'entries'>): PersistPlan {
  const deletions: StoredRange[] = []
  let { firstIndex, lastIndex } = range
  const pending = rd.snapshot
  if (pending !== null) {
    const snapIndex = pending.snapshot.metadata.index
    // Installing replaces everything; compacting drops what the snapshot covers.
    const deleteTo = pending.replacesLog ? lastIndex : Math.min(snapIndex, lastIndex)
    if (firstIndex <= deleteTo) deletions.push({ firstIndex, lastIndex: deleteTo })
    firstIndex = snapIndex + 1
    if (pending.replacesLog || lastIndex < snapIndex) lastIndex = snapIndex
  }
  const first = rd.entries[0]
  const last = rd.entries[rd.entries.length - 1]
  if (first !== undefined && last !== undefined) {
    if (first.index > lastIndex + 1) {
      throw new RangeError(`entries start at ${first.index} but the stored log ends at ${lastIndex}`)
    }
    // Entries beyond the new last index belong to an overwritten history.
    if (last.index < lastIndex) deletions.push({ firstIndex: last.index + 1, lastIndex })
    lastIndex = last.index
    if (firstIndex > first.index) firstIndex = first.index
  }
  return { hardState: rd.hardState, snapshot: pending?.snapshot ?? null, deletions, entries: rd.entries, range: { firstIndex, lastIndex } }
}
