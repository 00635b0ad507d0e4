// One simulated peer: the real RaftNode driven by the same Ready loop the
// production peer runs (persist, send, apply, advance), with a simulated fsync
// latency during which a crash loses the unsynced Ready.
import { NotLeaderError } from '../../consensus/errors.js'
import { RaftNode, type ProposalPosition } from '../../consensus/node.js'
import type { RaftConfig } from '../../consensus/raft.js'
import type { Entry, HardState, Message, NodeId, Ready, Snapshot } from '../../consensus/types.js'
import type { EventQueue } from './event-queue.js'
import type { Rng } from './rng.js'
import { SimStorage } from './storage.js'

export interface StateMachine {
  apply(entry: Entry): void
  snapshot(): Uint8Array
  restore(data: Uint8Array): void
}

export interface SimNodeHooks {
  send(m: Message): void
  onPersist(node: SimNode, rd: Ready, durableBefore: HardState): void
  onApply(node: SimNode, entry: Entry): void
  onSnapshotInstalled(node: SimNode, snapshot: Snapshot): void
  onCompacted(node: SimNode, snapshot: Snapshot): void
}

export interface SimNodeOptions {
  raft: Partial<RaftConfig>
  fsyncMinMs: number
  fsyncMaxMs: number
  /** Compact once this many entries were applied since the last snapshot; 0 never. */
  snapshotEveryEntries: number
  /** Overrides snapshotEveryEntries: compact whenever this says so after applying. */
  snapshotWanted?: (node: SimNode) => boolean
}

type Waiter<T> = (result: T) => void

export class SimNode {
  raft: RaftNode | null = null
  readonly storage = new SimStorage()
  incarnation = 0
  appliedIndex = 0
  private snapshotIndex = 0
  private persisting = false
  private readonly proposalWaiters = new Map<number, { term: number; done: Waiter<boolean> }>()
  private readonly readWaiters = new Map<string, Waiter<number>>()
  private readonly appliedWaiters: { index: number; done: () => void }[] = []

  constructor(
    readonly id: NodeId,
    readonly stateMachine: StateMachine,
    private readonly options: SimNodeOptions,
    private readonly queue: EventQueue,
    private readonly rng: Rng,
    private readonly hooks: SimNodeHooks,
  ) {}

  get alive(): boolean {
    return this.raft !== null
  }

  start(): void {
    const state = this.storage.load()
    this.incarnation++
    this.stateMachine.restore(state.snapshot?.data ?? new Uint8Array(0))
    this.appliedIndex = state.snapshot?.metadata.index ?? 0
    this.snapshotIndex = this.appliedIndex
    const random = this.rng.fork()
    this.raft = new RaftNode({ ...this.options.raft, id: this.id, random: () => random.next() }, state)
    this.pump()
  }

  /** SIGKILL: in-memory state and any Ready still being persisted are gone; waiters learn nothing. */
  crash(): void {
    this.raft = null
    this.persisting = false
    this.incarnation++
    this.proposalWaiters.clear()
    this.readWaiters.clear()
    this.appliedWaiters.length = 0
  }

  tick(): void {
    this.raft?.tick()
    this.pump()
  }

  receive(m: Message): void {
    this.raft?.step(m)
    this.pump()
  }

  /** Propose; `done(true)` once applied here at that position, `done(false)` if another entry took it. */
  propose(data: Uint8Array, done: Waiter<boolean>): ProposalPosition {
    const raft = this.requireRaft()
    const position = raft.propose(data)
    this.proposalWaiters.set(position.index, { term: position.term, done })
    this.pump()
    return position
  }

  /** A linearizable read point: `done(index)` once this node has applied through it. */
  readIndex(context: Uint8Array, done: Waiter<number>): void {
    this.requireRaft().readIndex(context)
    this.readWaiters.set(contextKey(context), done)
    this.pump()
  }

  private requireRaft(): RaftNode {
    if (this.raft === null) throw new NotLeaderError(null)
    return this.raft
  }

  pump(): void {
    const raft = this.raft
    if (raft === null || this.persisting || !raft.hasReady()) return
    const rd = raft.ready()
    for (const m of rd.messages) this.hooks.send(m)
    this.persisting = true
    const incarnation = this.incarnation
    const fsyncMs = this.options.fsyncMinMs + this.rng.next() * (this.options.fsyncMaxMs - this.options.fsyncMinMs)
    this.queue.schedule(fsyncMs, () => {
      if (this.incarnation !== incarnation) return
      this.persisted(rd)
    })
  }

  private persisted(rd: Ready): void {
    const durableBefore = this.storage.hardState
    this.storage.write(rd)
    this.hooks.onPersist(this, rd, durableBefore)
    for (const m of rd.messagesAfterPersist) this.hooks.send(m)
    if (rd.snapshot !== null && rd.snapshot.replacesLog) this.installSnapshot(rd.snapshot.snapshot)
    for (const entry of rd.committedEntries) this.applyEntry(entry)
    for (const rs of rd.readStates) this.resolveRead(rs.context, rs.index)
    this.raft!.advance(rd)
    this.persisting = false
    this.maybeCompact()
    this.releaseAppliedWaiters()
    this.pump()
  }

  private installSnapshot(snapshot: Snapshot): void {
    this.stateMachine.restore(snapshot.data)
    this.appliedIndex = snapshot.metadata.index
    this.snapshotIndex = this.appliedIndex
    this.hooks.onSnapshotInstalled(this, snapshot)
  }

  private applyEntry(entry: Entry): void {
    this.stateMachine.apply(entry)
    this.appliedIndex = entry.index
    this.hooks.onApply(this, entry)
    const waiter = this.proposalWaiters.get(entry.index)
    if (waiter !== undefined) {
      this.proposalWaiters.delete(entry.index)
      waiter.done(waiter.term === entry.term)
    }
  }

  private resolveRead(context: Uint8Array, index: number): void {
    const key = contextKey(context)
    const done = this.readWaiters.get(key)
    if (done === undefined) return
    this.readWaiters.delete(key)
    this.whenApplied(index, () => done(index))
  }

  whenApplied(index: number, done: () => void): void {
    if (this.appliedIndex >= index) done()
    else this.appliedWaiters.push({ index, done })
  }

  private releaseAppliedWaiters(): void {
    for (let k = 0; k < this.appliedWaiters.length; ) {
      const w = this.appliedWaiters[k]!
      if (this.appliedIndex >= w.index) {
        this.appliedWaiters.splice(k, 1)
        w.done()
      } else k++
    }
  }

  private maybeCompact(): void {
    if (this.raft === null || this.appliedIndex === this.snapshotIndex) return
    const wanted = this.options.snapshotWanted
    const every = this.options.snapshotEveryEntries
    if (wanted !== undefined ? !wanted(this) : every <= 0 || this.appliedIndex - this.snapshotIndex < every) return
    try {
      const snapshot = this.raft.compact(this.appliedIndex, this.stateMachine.snapshot())
      this.hooks.onCompacted(this, snapshot)
    } catch (err) {
      // An installed snapshot not yet handed to us already covers this index.
      if ((err as Error).name !== 'SnapshotOutOfDateError') throw err
    }
    this.snapshotIndex = this.appliedIndex
  }
}

export function contextKey(context: Uint8Array): string {
  let key = ''
  for (const b of context) key += String.fromCharCode(b)
  return key
}
