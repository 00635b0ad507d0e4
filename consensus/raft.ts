// The Raft state machine: roles, terms, timers counted in ticks, and the
// dispatch of every message. Pure: no I/O, no clock, randomness injected.
// Role-specific handling lives in election.ts, leader.ts and follower.ts.
import { campaign, handleVoteRequest, stepCandidate } from './election.js'
import { stepFollower } from './follower.js'
import { bcastHeartbeat, handOverLeadership, stepLeader, tickSnapshotTransfers } from './leader.js'
import { RaftLog } from './log.js'
import { ReadIndexQueue } from './read-index.js'
import { ProgressTracker } from './tracker.js'
import {
  MessageType,
  type ConfState,
  type Message,
  type NodeId,
  type PendingSnapshot,
  type PersistedState,
  type ReadState,
  type Role,
  type Snapshot,
} from './types.js'

export interface RaftConfig {
  id: NodeId
  /** Ticks without hearing from a leader before a follower campaigns (randomized up to twice this). */
  electionTicks: number
  /** Ticks between a leader's heartbeats. */
  heartbeatTicks: number
  /** Uniform in [0, 1): seeded in simulation, Math.random in production. */
  random: () => number
  preVote: boolean
  checkQuorum: boolean
  /** Upper bound on the entries' bytes in one append message. */
  appendMessageMaxBytes: number
  /** Appends in flight per follower before the leader waits for acknowledgements. */
  inflightMessagesMax: number
  /** Proposals are refused past this many uncommitted bytes. */
  uncommittedEntriesMaxBytes: number
  /** Bytes of committed entries handed out in one Ready. */
  committedEntriesMaxBytesPerReady: number
  snapshotChunkBytes: number
  snapshotChunksInflightMax: number
  pendingReadsMax: number
  /** Index the application has already applied (durably), so it is not handed out again. */
  applied: number
}

export const defaultRaftConfig: Omit<RaftConfig, 'id'> = {
  electionTicks: 10,
  heartbeatTicks: 1,
  random: Math.random,
  preVote: true,
  checkQuorum: true,
  appendMessageMaxBytes: 1024 * 1024,
  inflightMessagesMax: 256,
  uncommittedEntriesMaxBytes: 64 * 1024 * 1024,
  committedEntriesMaxBytesPerReady: 8 * 1024 * 1024,
  snapshotChunkBytes: 512 * 1024,
  snapshotChunksInflightMax: 4,
  pendingReadsMax: 4096,
  applied: 0,
}

/** Messages a leader may send before its own log is durable (Raft thesis §10.2.1). */
const leaderEarlyMessages = new Set<MessageType>([
  MessageType.App,
  MessageType.Heartbeat,
  MessageType.Snap,
  MessageType.TimeoutNow,
  MessageType.ReadIndexResp,
])

export interface IncomingSnapshot {
  from: NodeId
  index: number
  term: number
  chunks: Uint8Array[]
  receivedBytes: number
}

export class Raft {
  readonly id: NodeId
  readonly cfg: RaftConfig
  term: number
  vote: NodeId | null
  leaderId: NodeId | null = null
  role: Role = 'follower'
  readonly log: RaftLog
  readonly tracker: ProgressTracker
  electionElapsed = 0
  heartbeatElapsed = 0
  randomizedElectionTimeout = 0
  leadTransferee: NodeId | null = null
  /** Index of the newest membership change proposed; the next waits until it is applied. */
  pendingConfIndex = 0
  /** Membership changes up to this index are in effect. */
  confAppliedIndex: number
  uncommittedBytes = 0
  /** Set when entries or commit progress should be broadcast at the next Ready. */
  appendPending = false
  /** Set when reads wait for a confirming heartbeat round, sent once at the next Ready. */
  readHeartbeatPending = false
  readonly reads: ReadIndexQueue
  /** Reads asked before this leader committed an entry of its term (§6.4 step 1). */
  readsAwaitingCommit: { context: Uint8Array; from: NodeId }[] = []
  readStates: ReadState[] = []
  messages: Message[] = []
  messagesAfterPersist: Message[] = []
  /** The newest snapshot: what a follower that fell behind compaction receives. */
  snapshot: Snapshot | null
  incomingSnapshot: IncomingSnapshot | null = null
  pendingSnapshot: PendingSnapshot | null = null
  /** Configuration at the snapshot, and each change applied since (for compaction metadata). */
  confBase: ConfState
  confHistory: { index: number; conf: ConfState }[] = []
  /** Term of the last hard state known durable: a leader sends early only once its term is. */
  persistedTerm: number

  constructor(config: Partial<RaftConfig> & { id: NodeId }, state: PersistedState) {
    this.cfg = { ...defaultRaftConfig, ...config }
    this.id = config.id
    this.term = state.hardState.term
    this.vote = state.hardState.vote
    this.persistedTerm = state.hardState.term
    this.log = new RaftLog(state)
    this.snapshot = state.snapshot
    this.confBase = state.snapshot?.metadata.confState ?? { voters: [], learners: [] }
    this.confAppliedIndex = state.snapshot?.metadata.index ?? 0
    this.tracker = new ProgressTracker(this.confBase, this.cfg.inflightMessagesMax)
    this.reads = new ReadIndexQueue(this.cfg.pendingReadsMax)
    this.resetRandomizedElectionTimeout()
  }

  get electionTimeout(): number {
    return this.cfg.electionTicks
  }

  /** Only voters campaign: learners and nodes not (yet) in the configuration wait. */
  promotable(): boolean {
    return this.tracker.isVoter(this.id)
  }

  send(m: Message): void {
    if (this.role === 'leader' && this.term === this.persistedTerm && leaderEarlyMessages.has(m.type)) {
      this.messages.push(m)
    } else {
      this.messagesAfterPersist.push(m)
    }
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.cfg.electionTicks + Math.floor(this.cfg.random() * this.cfg.electionTicks)
  }

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term
      this.vote = null
    }
    this.leaderId = null
    this.electionElapsed = 0
    this.heartbeatElapsed = 0
    this.resetRandomizedElectionTimeout()
    this.leadTransferee = null
    this.tracker.resetVotes()
    for (const [id, pr] of this.tracker.progress) {
      pr.match = id === this.id ? this.log.persistedIndex : 0
      pr.next = this.log.lastIndex() + 1
      pr.becomeProbe()
      pr.next = this.log.lastIndex() + 1
    }
    this.pendingConfIndex = 0
    this.uncommittedBytes = 0
    this.appendPending = false
    this.readHeartbeatPending = false
    this.reads.reset()
    this.readsAwaitingCommit = []
  }

  becomeFollower(term: number, leaderId: NodeId | null): void {
    this.reset(term)
    this.role = 'follower'
    this.leaderId = leaderId
  }

  becomePreCandidate(): void {
    // A pre-candidate keeps its term: a failed pre-election disturbs nobody.
    this.role = 'pre-candidate'
    this.leaderId = null
    this.tracker.resetVotes()
  }

  becomeCandidate(): void {
    this.reset(this.term + 1)
    this.vote = this.id
    this.role = 'candidate'
  }

  becomeLeader(): void {
    this.reset(this.term)
    this.role = 'leader'
    this.leaderId = this.id
    this.tracker.progress.get(this.id)?.becomeReplicate()
    // No membership change until an entry of this term commits (the single-server change bug fix).
    this.pendingConfIndex = this.log.lastIndex()
    this.log.append([{ term: this.term, index: this.log.lastIndex() + 1, type: 0, data: new Uint8Array(0) }])
    this.appendPending = true
  }

  tick(): void {
    if (this.role === 'leader') this.tickLeader()
    else this.tickElection()
  }

  private tickElection(): void {
    this.electionElapsed++
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0
      this.step({ type: MessageType.Hup, from: this.id, to: this.id, term: 0 })
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++
    this.electionElapsed++
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0
      if (this.cfg.checkQuorum) {
        if (!this.tracker.quorumActive(this.id)) {
          this.becomeFollower(this.term, null)
          return
        }
        this.tracker.resetRecentActive(this.id)
      }
      // A transfer that did not finish within an election timeout is abandoned,
      // unless this leader was removed: then it tries again with the best voter.
      this.leadTransferee = null
      if (!this.promotable()) handOverLeadership(this)
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0
      bcastHeartbeat(this, this.reads.lastContext())
      tickSnapshotTransfers(this)
    }
  }

  step(m: Message): void {
    if (!this.stepTerm(m)) return
    switch (m.type) {
      case MessageType.Hup:
        if (this.role !== 'leader' && this.promotable()) campaign(this, this.cfg.preVote ? 'pre-vote' : 'election')
        return
      case MessageType.Vote:
      case MessageType.PreVote:
        handleVoteRequest(this, m)
        return
    }
    if (this.role === 'leader') stepLeader(this, m)
    else if (this.role === 'follower') stepFollower(this, m)
    else stepCandidate(this, m)
  }

  /** Term rules (§5.1, PreVote, CheckQuorum leases). Returns false when the message is done with. */
  private stepTerm(m: Message): boolean {
    if (m.term === 0 || m.term === this.term) return true
    if (m.term > this.term) return this.stepHigherTerm(m)
    // A stale leader learns of the newer term from our answer and steps down.
    if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
      this.send({ type: MessageType.AppResp, from: this.id, to: m.from, term: this.term })
    } else if (m.type === MessageType.PreVote) {
      this.send({ type: MessageType.PreVoteResp, from: this.id, to: m.from, term: this.term, reject: true })
    }
    return false
  }

  private stepHigherTerm(m: Message): boolean {
    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      const forced = m.context !== undefined && isTransferContext(m.context)
      const inLease = this.cfg.checkQuorum && this.leaderId !== null && this.electionElapsed < this.electionTimeout
      // While we hear from a live leader, a disruptive candidate is ignored.
      if (!forced && inLease) return false
    }
    if (m.type === MessageType.PreVote) return true
    if (m.type === MessageType.PreVoteResp && m.reject !== true) return true
    const fromLeader = m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap
    this.becomeFollower(m.term, fromLeader ? m.from : null)
    return true
  }
}

const transferContext = new Uint8Array([0x74, 0x72, 0x61, 0x6e, 0x73, 0x66, 0x65, 0x72]) // "transfer"

export function campaignTransferContext(): Uint8Array {
  return transferContext
}

function isTransferContext(context: Uint8Array): boolean {
  return context.length === transferContext.length && context.every((b, i) => b === transferContext[i])
}
