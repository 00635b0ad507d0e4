// The public face of the core, after etcd's RawNode: feed it ticks, messages
// and requests; take a Ready; persist, send and apply it; call advance().
import {
  CompactionError,
  ConfChangeInProgressError,
  LeadershipTransferInProgressError,
  LearnerNotCaughtUpError,
  NotLeaderError,
  SnapshotOutOfDateError,
  TransferTargetError,
  UncommittedLogFullError,
} from './errors.js'
import { bcastAppend, bcastHeartbeat, maybeCommit, transferLeadership } from './leader.js'
import { stepLeaderReadIndex } from './leader-reads.js'
import { entrySizeBytes } from './log.js'
import { applyCommittedConfChanges, compactLog, encodeConfChange } from './membership.js'
import { Raft, type RaftConfig } from './raft.js'
import { applyConfChange } from './tracker.js'
import {
  ConfChangeType,
  EntryType,
  MessageType,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type PersistedState,
  type Ready,
  type Role,
  type Snapshot,
  type SoftState,
} from './types.js'

export interface ProposalPosition {
  /** Index of the first entry proposed. */
  index: number
  term: number
}

export interface ProgressStatus {
  match: number
  next: number
  state: string
  isLearner: boolean
}

export interface RaftStatus {
  id: NodeId
  term: number
  vote: NodeId | null
  role: Role
  leaderId: NodeId | null
  commitIndex: number
  appliedIndex: number
  firstIndex: number
  lastIndex: number
  lastTerm: number
  conf: ConfState
  /** The leader's view of each member; empty elsewhere. */
  progress: Record<NodeId, ProgressStatus>
  leadTransferee: NodeId | null
}

/** Identical on every founding member: one AddVoter entry per voter, committed at term 1. */
export function bootstrapState(voters: readonly NodeId[]): PersistedState {
  const sorted = [...voters].sort()
  const entries: Entry[] = sorted.map((nodeId, k) => ({
    term: 1,
    index: k + 1,
    type: EntryType.ConfChange,
    data: encodeConfChange({ type: ConfChangeType.AddVoter, nodeId }),
  }))
  return { hardState: { term: 1, vote: null, commit: entries.length }, snapshot: null, entries }
}

export function emptyState(): PersistedState {
  return { hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [] }
}

const localMessageTypes = new Set<MessageType>([MessageType.Hup, MessageType.Beat])

export class RaftNode {
  private readonly r: Raft
  private prevSoftState: SoftState
  private prevHardState: HardState

  constructor(config: Partial<RaftConfig> & { id: NodeId }, state: PersistedState) {
    this.r = new Raft(config, state)
    this.prevSoftState = this.softState()
    this.prevHardState = { ...state.hardState }
    // Entries the application applied before a restart are not handed out again.
    const log = this.r.log
    log.applied = Math.max(log.applied, Math.min(config.applied ?? 0, log.committed))
    applyCommittedConfChanges(this.r)
  }

  get id(): NodeId {
    return this.r.id
  }

  get term(): number {
    return this.r.term
  }

  get role(): Role {
    return this.r.role
  }

  get leaderId(): NodeId | null {
    return this.r.leaderId
  }

  get commitIndex(): number {
    return this.r.log.committed
  }

  get lastIndex(): number {
    return this.r.log.lastIndex()
  }

  /** Term of the entry at `index` in this node's log, or undefined if compacted or absent. */
  logTerm(index: number): number | undefined {
    return this.r.log.term(index)
  }

  /** Entries [lo, hi] of the in-memory log (for inspection; the application normally gets entries through Ready). */
  entries(lo: number, hi: number): Entry[] {
    if (lo < this.r.log.firstIndex()) throw new CompactionError(`entry ${lo} is compacted`)
    if (hi < lo) return []
    return this.r.log.slice(lo, hi, Number.MAX_SAFE_INTEGER)
  }

  /** Whether `id` is a voter in the configuration this node has applied. */
  isVoter(id: NodeId): boolean {
    return this.r.tracker.isVoter(id)
  }

  tick(): void {
    this.r.tick()
    applyCommittedConfChanges(this.r)
  }

  /** A message from a peer. Messages meant for someone else and local-only types are dropped. */
  step(m: Message): void {
    if (m.to !== this.r.id || localMessageTypes.has(m.type)) return
    this.r.step(m)
    applyCommittedConfChanges(this.r)
  }

  /**
   * The transport lost its connection to `id` (messages may have been dropped):
   * the leader stops pipelining to it and probes from the last acknowledged entry.
   */
  reportUnreachable(id: NodeId): void {
    const pr = this.r.role === 'leader' ? this.r.tracker.progress.get(id) : undefined
    if (pr?.state === 'replicate') {
      pr.becomeProbe()
      this.r.appendPending = true
    }
  }

  /** Start an election now (a voter that knows it should lead, or a test). */
  campaign(): void {
    this.r.step({ type: MessageType.Hup, from: this.r.id, to: this.r.id, term: 0 })
  }

  propose(data: Uint8Array): ProposalPosition {
    return this.proposeEntries([data], EntryType.Normal)
  }

  /** Several proposals as consecutive entries (one uncommitted-size check for the batch). */
  proposeBatch(data: readonly Uint8Array[]): ProposalPosition {
    return this.proposeEntries(data, EntryType.Normal)
  }

  private proposeEntries(data: readonly Uint8Array[], type: EntryType): ProposalPosition {
    const r = this.r
    if (r.role !== 'leader') throw new NotLeaderError(r.leaderId)
    if (r.leadTransferee !== null) throw new LeadershipTransferInProgressError(r.leadTransferee)
    // A leader that removed itself only hands over; it takes no new work.
    if (!r.promotable()) throw new NotLeaderError(null)
    const first = r.log.lastIndex() + 1
    const entries = data.map((d, k): Entry => ({ term: r.term, index: first + k, type, data: d }))
    let bytes = 0
    for (const e of entries) bytes += entrySizeBytes(e)
    if (r.uncommittedBytes > 0 && r.uncommittedBytes + bytes > r.cfg.uncommittedEntriesMaxBytes) {
      throw new UncommittedLogFullError(r.cfg.uncommittedEntriesMaxBytes)
    }
    r.uncommittedBytes += bytes
    r.log.append(entries)
    r.appendPending = true
    return { index: first, term: r.term }
  }

  proposeConfChange(change: ConfChange): ProposalPosition {
    const r = this.r
    if (r.role !== 'leader') throw new NotLeaderError(r.leaderId)
    if (r.pendingConfIndex > r.confAppliedIndex) throw new ConfChangeInProgressError(r.pendingConfIndex)
    applyConfChange(r.tracker.confState(), change) // throws InvalidConfChangeError
    if (change.type === ConfChangeType.PromoteLearner) {
      const match = r.tracker.progress.get(change.nodeId)?.match ?? 0
      if (match < r.log.committed) throw new LearnerNotCaughtUpError(change.nodeId, match, r.log.committed)
    }
    const position = this.proposeEntries([encodeConfChange(change)], EntryType.ConfChange)
    r.pendingConfIndex = position.index
    return position
  }

  /**
   * Ask for a linearizable read point. The answer arrives as a ReadState with
   * the same context in a later Ready; a follower forwards to its leader.
   */
  readIndex(context: Uint8Array): void {
    const r = this.r
    if (r.role === 'leader') {
      stepLeaderReadIndex(r, { type: MessageType.ReadIndex, from: r.id, to: r.id, term: r.term, context })
      return
    }
    if (r.leaderId === null) throw new NotLeaderError(null)
    r.send({ type: MessageType.ReadIndex, from: r.id, to: r.leaderId, term: r.term, context })
  }

  transferLeadership(to: NodeId): void {
    const r = this.r
    if (r.role !== 'leader') throw new NotLeaderError(r.leaderId)
    if (!r.tracker.isVoter(to)) throw new TransferTargetError(to)
    transferLeadership(r, to)
  }

  /** The application has applied through `index` and snapshotted its state as `data`. */
  compact(index: number, data: Uint8Array): Snapshot {
    const r = this.r
    if (index > r.log.applied) throw new CompactionError(`cannot compact to ${index}: only ${r.log.applied} is applied`)
    // A newer snapshot (installed from the leader, say) already covers it: nothing to do.
    if (index < r.log.firstIndex()) throw new SnapshotOutOfDateError(`cannot compact to ${index}: a snapshot at ${r.log.firstIndex() - 1} covers it`)
    return compactLog(r, index, data)
  }

  hasReady(): boolean {
    const r = this.r
    return (
      (r.role === 'leader' && (r.appendPending || r.readHeartbeatPending)) ||
      r.messages.length > 0 ||
      r.messagesAfterPersist.length > 0 ||
      r.readStates.length > 0 ||
      r.pendingSnapshot !== null ||
      r.log.unstableFrom <= r.log.lastIndex() ||
      r.log.hasNextCommittedEntries() ||
      !sameSoftState(this.softState(), this.prevSoftState) ||
      !sameHardState(this.hardState(), this.prevHardState)
    )
  }

  ready(): Ready {
    const r = this.r
    this.flushLeaderMessages()
    const soft = this.softState()
    const hard = this.hardState()
    const rd: Ready = {
      softState: sameSoftState(soft, this.prevSoftState) ? null : soft,
      hardState: sameHardState(hard, this.prevHardState) ? null : hard,
      snapshot: r.pendingSnapshot,
      entries: r.log.unstableEntries(),
      committedEntries: r.log.nextCommittedEntries(r.cfg.committedEntriesMaxBytesPerReady),
      messages: r.messages,
      messagesAfterPersist: r.messagesAfterPersist,
      readStates: r.readStates,
    }
    this.acceptReady(rd, soft, hard)
    return rd
  }

  private flushLeaderMessages(): void {
    const r = this.r
    if (r.role !== 'leader') return
    if (r.appendPending) bcastAppend(r)
    if (r.readHeartbeatPending) {
      r.readHeartbeatPending = false
      bcastHeartbeat(r, r.reads.lastContext())
    }
  }

  private acceptReady(rd: Ready, soft: SoftState, hard: HardState): void {
    const r = this.r
    this.prevSoftState = soft
    this.prevHardState = hard
    r.pendingSnapshot = null
    r.log.unstableFrom = r.log.lastIndex() + 1
    r.messages = []
    r.messagesAfterPersist = []
    r.readStates = []
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1]
    if (lastCommitted !== undefined) r.log.applied = lastCommitted.index
  }

  /** The driver persisted `rd` (and sent and applied it). */
  advance(rd: Ready): void {
    const r = this.r
    if (rd.hardState !== null) r.persistedTerm = rd.hardState.term
    const snap = rd.snapshot?.snapshot.metadata
    if (snap !== undefined) r.log.stableTo(snap.index, snap.term)
    const last = rd.entries[rd.entries.length - 1]
    if (last !== undefined) r.log.stableTo(last.index, last.term)
    if (r.role === 'leader' && r.tracker.progress.get(r.id)?.maybeUpdate(r.log.persistedIndex) === true) {
      if (maybeCommit(r)) r.appendPending = true
    }
    applyCommittedConfChanges(r)
  }

  private softState(): SoftState {
    return { leaderId: this.r.leaderId, role: this.r.role }
  }

  private hardState(): HardState {
    return { term: this.r.term, vote: this.r.vote, commit: this.r.log.committed }
  }

  status(): RaftStatus {
    const r = this.r
    const progress: Record<NodeId, ProgressStatus> = {}
    if (r.role === 'leader') {
      for (const [id, pr] of r.tracker.progress) {
        progress[id] = { match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner }
      }
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      role: r.role,
      leaderId: r.leaderId,
      commitIndex: r.log.committed,
      appliedIndex: r.log.applied,
      firstIndex: r.log.firstIndex(),
      lastIndex: r.log.lastIndex(),
      lastTerm: r.log.lastTerm(),
      conf: r.tracker.confState(),
      progress,
      leadTransferee: r.leadTransferee,
    }
  }

  /** The newest snapshot this node holds (for tests and the store's restart path). */
  latestSnapshot(): Snapshot | null {
    return this.r.snapshot
  }
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leaderId === b.leaderId && a.role === b.role
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit
}
