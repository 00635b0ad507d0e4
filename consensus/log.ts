// The core's view of the log: every entry after the last snapshot, in memory.
// Entries up to `unstableFrom - 1` have been handed to storage in a Ready;
// the rest still have to be. Compaction (snapshots) keeps this bounded.
import type { Entry, PersistedState, SnapshotMetadata } from './types.js'

/** Bytes an entry costs in a message, for batching limits. */
export function entrySizeBytes(entry: Entry): number {
  return entry.data.byteLength + 24
}

export class RaftLog {
  private snapshotIndex: number
  private snapshotTerm: number
  /** entries[k].index === snapshotIndex + 1 + k */
  private entries: Entry[]
  committed: number
  /** Last index handed to the application in a Ready. */
  applied: number
  /** First index not yet handed to storage. */
  unstableFrom: number
  /** Last index known durable (the driver confirmed the Ready that carried it). */
  persistedIndex: number

  constructor(state: PersistedState) {
    const meta = state.snapshot?.metadata
    this.snapshotIndex = meta?.index ?? 0
    this.snapshotTerm = meta?.term ?? 0
    this.entries = state.entries.filter((e) => e.index > this.snapshotIndex)
    this.checkContiguous()
    this.committed = Math.max(state.hardState.commit, this.snapshotIndex)
    if (this.committed > this.lastIndex()) {
      throw new RangeError(`commit index ${this.committed} is beyond the last stored entry ${this.lastIndex()}`)
    }
    this.applied = this.snapshotIndex
    this.unstableFrom = this.lastIndex() + 1
    this.persistedIndex = this.lastIndex()
  }

  private checkContiguous(): void {
    this.entries.forEach((e, k) => {
      if (e.index !== this.snapshotIndex + 1 + k) {
        throw new RangeError(`log is not contiguous: expected index ${this.snapshotIndex + 1 + k}, found ${e.index}`)
      }
    })
  }

  firstIndex(): number {
    return this.snapshotIndex + 1
  }

  lastIndex(): number {
    return this.snapshotIndex + this.entries.length
  }

  lastTerm(): number {
    return this.entries.length === 0 ? this.snapshotTerm : this.entries[this.entries.length - 1]!.term
  }

  /** The term of entry `index`, or undefined when it is compacted away or not there yet. */
  term(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm
    if (index < this.snapshotIndex || index > this.lastIndex()) return undefined
    return this.entries[index - this.snapshotIndex - 1]!.term
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term
  }

  entryAt(index: number): Entry | undefined {
    return this.entries[index - this.snapshotIndex - 1]
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm()
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex())
  }

  /** Leader append: entries continue the log. */
  append(entries: readonly Entry[]): void {
    for (const e of entries) this.entries.push(e)
  }

  /**
   * Follower append: if our log holds (prevIndex, prevTerm), add the entries,
   * truncating at the first conflict. Returns the last index the leader and
   * we now agree on, or null if the logs do not match at prevIndex.
   */
  maybeAppend(prevIndex: number, prevTerm: number, commit: number, entries: readonly Entry[]): number | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null
    const lastNewIndex = prevIndex + entries.length
    const conflict = this.findConflict(entries)
    if (conflict !== 0) {
      if (conflict <= this.committed) {
        throw new Error(`entry ${conflict} conflicts with committed entry ${this.committed}`)
      }
      this.truncateAndAppend(entries.slice(conflict - (prevIndex + 1)))
    }
    this.commitTo(Math.min(commit, lastNewIndex))
    return lastNewIndex
  }

  /** Index of the first entry whose term differs from ours, or that we lack; 0 if none. */
  private findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index
    }
    return 0
  }

  private truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0]
    if (first === undefined) return
    if (first.index <= this.snapshotIndex) throw new RangeError(`cannot overwrite compacted entry ${first.index}`)
    if (first.index <= this.lastIndex()) {
      this.entries.length = first.index - this.snapshotIndex - 1
      if (first.index < this.unstableFrom) this.unstableFrom = first.index
      if (first.index <= this.persistedIndex) this.persistedIndex = first.index - 1
    }
    this.append(entries)
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `term`.
   * Skips a whole term of conflicting entries per round trip.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex())
    for (;;) {
      const t = this.term(i)
      if (t === undefined) return { index: i, term: 0 }
      if (t <= term) return { index: i, term: t }
      i--
    }
  }

  /** Entries in [lo, hi], at least one, at most `maxBytes` beyond the first. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.snapshotIndex) throw new RangeError(`entry ${lo} is compacted`)
    const end = Math.min(hi, this.lastIndex())
    const out: Entry[] = []
    let bytes = 0
    for (let i = lo; i <= end; i++) {
      const e = this.entries[i - this.snapshotIndex - 1]!
      bytes += entrySizeBytes(e)
      if (out.length > 0 && bytes > maxBytes) break
      out.push(e)
    }
    return out
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false
    if (index > this.lastIndex()) throw new RangeError(`commit ${index} beyond last index ${this.lastIndex()}`)
    this.committed = index
    return true
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > this.applied
  }

  nextCommittedEntries(maxBytes: number): Entry[] {
    if (this.committed <= this.applied) return []
    return this.slice(this.applied + 1, this.committed, maxBytes)
  }

  unstableEntries(): Entry[] {
    if (this.unstableFrom > this.lastIndex()) return []
    return this.entries.slice(this.unstableFrom - this.snapshotIndex - 1)
  }

  /** Replace the whole log with a snapshot received from the leader. */
  restore(meta: SnapshotMetadata): void {
    this.snapshotIndex = meta.index
    this.snapshotTerm = meta.term
    this.entries = []
    this.committed = meta.index
    this.applied = meta.index
    this.unstableFrom = meta.index + 1
    // Durable again only once the Ready carrying the snapshot is persisted.
    this.persistedIndex = 0
  }

  /** The driver persisted entries up to (index, term); ignored if they were overwritten since. */
  stableTo(index: number, term: number): void {
    if (index > this.persistedIndex && this.matchTerm(index, term)) this.persistedIndex = index
  }

  /** Drop entries up to `index`, now covered by a local snapshot. */
  compact(index: number): void {
    const term = this.term(index)
    if (term === undefined) throw new RangeError(`cannot compact to ${index}: not in the log`)
    this.entries = this.entries.slice(index - this.snapshotIndex)
    this.snapshotIndex = index
    this.snapshotTerm = term
    this.unstableFrom = Math.max(this.unstableFrom, index + 1)
  }
}
