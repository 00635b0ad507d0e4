// The leader's view of one follower: how far its log matches, what to send
// next, and how much is in flight. Mirrors etcd's tracker.Progress.

/**
 * probe: one append per heartbeat until we learn where the logs match.
 * replicate: optimistic, pipelined appends within the inflight window.
 * snapshot: sending an InstallSnapshot in chunks; appends wait.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot'

/** A bounded window of in-flight appends, by the last index each one carries. */
export class Inflights {
  private readonly lastIndexes: number[] = []

  constructor(readonly capacity: number) {}

  get count(): number {
    return this.lastIndexes.length
  }

  full(): boolean {
    return this.lastIndexes.length >= this.capacity
  }

  add(lastIndex: number): void {
    if (this.full()) throw new RangeError('inflight window is full')
    this.lastIndexes.push(lastIndex)
  }

  /** Forget every append whose entries are all at or below `index` (acknowledged). */
  freeLE(index: number): void {
    let k = 0
    while (k < this.lastIndexes.length && this.lastIndexes[k]! <= index) k++
    if (k > 0) this.lastIndexes.splice(0, k)
  }

  reset(): void {
    this.lastIndexes.length = 0
  }
}

/** Snapshot transfer bookkeeping while a follower is in the `snapshot` state. */
export interface SnapshotTransfer {
  index: number
  totalBytes: number
  /** Bytes the follower confirmed. */
  ackedBytes: number
  /** Bytes sent so far (>= ackedBytes). */
  sentBytes: number
  /** Heartbeat intervals since the follower last confirmed progress. */
  stalledBeats: number
}

export class Progress {
  match = 0
  next: number
  state: ProgressState = 'probe'
  /** In probe state: an append was sent and we wait for its answer (or the next heartbeat). */
  probeSent = false
  /** Heard from since the last CheckQuorum round. */
  recentActive = false
  /** The commit index in the last append sent, so commit progress alone is worth a message. */
  commitSent = 0
  /** Heartbeat answers in a row with appends in flight but no acknowledgement: they were lost. */
  stalledHeartbeats = 0
  private matchAtLastHeartbeat = 0
  snapshotTransfer: SnapshotTransfer | null = null
  readonly inflights: Inflights

  constructor(
    next: number,
    inflightMessagesMax: number,
    public isLearner: boolean,
  ) {
    this.next = next
    this.inflights = new Inflights(inflightMessagesMax)
  }

  becomeProbe(): void {
    if (this.state === 'snapshot' && this.snapshotTransfer !== null) {
      // The snapshot was installed (or abandoned): resume after it at the earliest.
      this.next = Math.max(this.match + 1, this.snapshotTransfer.index + 1)
    } else {
      this.next = this.match + 1
    }
    this.resetState('probe')
  }

  becomeReplicate(): void {
    this.next = this.match + 1
    this.resetState('replicate')
  }

  becomeSnapshot(transfer: SnapshotTransfer): void {
    this.resetState('snapshot')
    this.snapshotTransfer = transfer
  }

  private resetState(state: ProgressState): void {
    this.state = state
    this.probeSent = false
    this.stalledHeartbeats = 0
    this.snapshotTransfer = null
    this.inflights.reset()
  }

  /** An acknowledgement up to `index`; returns whether it told us anything new. */
  maybeUpdate(index: number): boolean {
    let updated = false
    if (index > this.match) {
      this.match = index
      updated = true
      this.probeSent = false
    }
    this.next = Math.max(this.next, index + 1)
    return updated
  }

  /** Optimistically advance after sending an append ending at `lastIndex` (carrying `entryCount` entries). */
  sentEntries(lastIndex: number, entryCount: number): void {
    if (this.state === 'replicate') {
      if (entryCount === 0) return
      this.next = lastIndex + 1
      this.inflights.add(lastIndex)
    } else {
      this.probeSent = true
    }
  }

  /**
   * A rejected append. `rejected` is the prevIndex the follower refused; `hint`
   * is where it suggests we retry. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false
      this.next = this.match + 1
      return true
    }
    if (this.next - 1 !== rejected) return false
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1)
    this.probeSent = false
    return true
  }

  /**
   * A heartbeat answer proves the link works; if appends stay unacknowledged
   * across two of them, they were lost: returns true when we should re-probe.
   */
  heartbeatAnswered(stalledHeartbeatsMax: number): boolean {
    this.probeSent = false
    const stalled = this.state === 'replicate' && this.inflights.count > 0 && this.match === this.matchAtLastHeartbeat
    this.stalledHeartbeats = stalled ? this.stalledHeartbeats + 1 : 0
    this.matchAtLastHeartbeat = this.match
    return this.stalledHeartbeats >= stalledHeartbeatsMax
  }

  /** Whether the leader should hold back appends to this follower. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent
      case 'replicate':
        return this.inflights.full()
      case 'snapshot':
        return true
    }
  }
}
