// Runs a RaftNode for real: ticks on a timer, and loops over Readys: send
// what may go early, persist to the LevelDB log store in one synced batch,
// send the rest, apply, advance. Proposals resolve once applied here; reads
// resolve once this node has applied through their ReadIndex.
import { NotLeaderError } from './errors.js'
import type { LevelLogStore, StoreBatchOperation } from './log-store.js'
import type { ProposalPosition, RaftNode } from './node.js'
import type { ConfChange, Entry, Message, NodeId, Ready, Snapshot } from './types.js'

export interface RaftTransport {
  /** Hand messages to the network; never throws. Losing some is fine: Raft resends. */
  send(messages: readonly Message[]): void
}

export interface RaftApplication {
  /** Committed entries in log order (membership changes included, for the application's bookkeeping). */
  apply(entries: readonly Entry[]): void | Promise<void>
  /** Replace the application's state with a snapshot received from the leader. */
  restore(snapshot: Snapshot): void | Promise<void>
  /** The application's state as of everything applied so far (for compaction); absent: never compact. */
  snapshotData?(): Uint8Array
  /**
   * Writes the application deferred (its state as of what it applied, with its applied index).
   * The driver adds them to the next Ready's synced batch, or writes them when idle: one LevelDB
   * write per Ready instead of two. Safe to defer, since the log already holds what they record.
   */
  takePendingWrites?(): StoreBatchOperation[]
}

export interface RaftDriverOptions {
  node: RaftNode
  store: LevelLogStore
  transport: RaftTransport
  application: RaftApplication
  tickIntervalMs: number
  /** Proposals waiting to be applied here; past it, propose() refuses (backpressure). */
  pendingProposalsMax: number
  /** Reads waiting for their ReadIndex; past it, readIndex() refuses. */
  pendingReadsMax: number
  /** The application already applied through this index (its state is durable). */
  appliedIndex?: number
  /** Compact the log into a snapshot once this many applied entries sit above the last one (0: never). */
  snapshotEveryEntries?: number
}

export class ProposalDroppedError extends Error {
  override readonly name = 'ProposalDroppedError'

  constructor(index: number) {
    super(`the proposal at index ${index} was replaced by a new leader's entry; it did not commit`)
  }
}

export class TooManyPendingError extends Error {
  override readonly name = 'TooManyPendingError'

  constructor(what: string, limit: number) {
    super(`${limit} ${what} are already waiting; retry shortly`)
  }
}

export class DriverStoppedError extends Error {
  override readonly name = 'DriverStoppedError'

  constructor(reason: string) {
    super(`the Raft driver stopped: ${reason}`)
  }
}

interface Waiter<T> {
  resolve: (value: T) => void
  reject: (err: Error) => void
}

export class RaftDriver {
  readonly node: RaftNode
  private readonly opts: RaftDriverOptions
  private readonly proposals = new Map<number, Waiter<number> & { term: number }>()
  private readonly reads = new Map<string, Waiter<number>>()
  private readonly readsAwaitingApply: { index: number; waiter: Waiter<number> }[] = []
  private readCounter = 0
  private wake: (() => void) | null = null
  private ticker: ReturnType<typeof setInterval> | null = null
  private stopped: Error | null = null
  private loopDone: Promise<void> = Promise.resolve()
  appliedIndex: number

  constructor(options: RaftDriverOptions) {
    this.opts = options
    this.node = options.node
    this.appliedIndex = options.appliedIndex ?? 0
  }

  start(): void {
    this.ticker = setInterval(() => {
      this.node.tick()
      this.poke()
    }, this.opts.tickIntervalMs)
    this.loopDone = this.loop().catch((err: unknown) => this.fail(err as Error))
  }

  /** Stop ticking and looping; everything waiting is rejected. */
  async stop(reason = 'stopped'): Promise<void> {
    this.fail(new DriverStoppedError(reason))
    await this.loopDone
  }

  private fail(err: Error): void {
    if (this.stopped !== null) return
    this.stopped = err
    if (this.ticker !== null) clearInterval(this.ticker)
    for (const w of this.proposals.values()) w.reject(err)
    for (const w of this.reads.values()) w.reject(err)
    for (const r of this.readsAwaitingApply) r.waiter.reject(err)
    this.proposals.clear()
    this.reads.clear()
    this.readsAwaitingApply.length = 0
    this.poke()
  }

  /** Why the driver stopped, or null while it runs. */
  get stoppedBecause(): Error | null {
    return this.stopped
  }

  private poke(): void {
    const wake = this.wake
    this.wake = null
    wake?.()
  }

  receive(message: Message): void {
    if (this.stopped !== null) return
    this.node.step(message)
    this.poke()
  }

  /** Start an election now. */
  campaign(): void {
    this.node.campaign()
    this.poke()
  }

  transferLeadership(to: NodeId): void {
    this.node.transferLeadership(to)
    this.poke()
  }

  /** Propose `data`; resolves with its index once committed and applied on this node. */
  propose(data: Uint8Array): Promise<number> {
    return this.track(() => this.node.propose(data))
  }

  /** Propose a membership change; resolves once applied on this node. */
  proposeConfChange(change: ConfChange): Promise<number> {
    return this.track(() => this.node.proposeConfChange(change))
  }

  private track(propose: () => ProposalPosition): Promise<number> {
    if (this.stopped !== null) return Promise.reject(this.stopped)
    if (this.proposals.size >= this.opts.pendingProposalsMax) {
      return Promise.reject(new TooManyPendingError('proposals', this.opts.pendingProposalsMax))
    }
    let position: ProposalPosition
    try {
      position = propose()
    } catch (err) {
      return Promise.reject(err as Error)
    }
    this.poke()
    return new Promise<number>((resolve, reject) => {
      this.proposals.set(position.index, { term: position.term, resolve, reject })
    })
  }

  /** A linearizable read point: resolves with the ReadIndex once this node has applied through it. */
  readIndex(): Promise<number> {
    if (this.stopped !== null) return Promise.reject(this.stopped)
    if (this.reads.size >= this.opts.pendingReadsMax) return Promise.reject(new TooManyPendingError('reads', this.opts.pendingReadsMax))
    const context = new TextEncoder().encode(`r${this.readCounter++}`)
    try {
      this.node.readIndex(context)
    } catch (err) {
      return Promise.reject(err as Error)
    }
    this.poke()
    return new Promise<number>((resolve, reject) => {
      this.reads.set(contextKey(context), { resolve, reject })
    })
  }

  /** Drop a read that will not be answered (the caller's deadline passed). */
  abandonReads(error: Error = new NotLeaderError(this.node.leaderId)): void {
    for (const w of this.reads.values()) w.reject(error)
    this.reads.clear()
  }

  private async loop(): Promise<void> {
    while (this.stopped === null) {
      if (!this.node.hasReady()) {
        const pending = this.opts.application.takePendingWrites?.() ?? []
        if (pending.length > 0) {
          await this.opts.store.writeUnsynced(pending)
          continue
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve
        })
        continue
      }
      await this.handle(this.node.ready())
    }
  }

  private async handle(rd: Ready): Promise<void> {
    const { transport, store, application } = this.opts
    if (rd.messages.length > 0) transport.send(rd.messages)
    await store.persist(rd, application.takePendingWrites?.() ?? [])
    if (this.stopped !== null) return
    if (rd.messagesAfterPersist.length > 0) transport.send(rd.messagesAfterPersist)
    if (rd.snapshot?.replacesLog === true) {
      await application.restore(rd.snapshot.snapshot)
      this.appliedIndex = rd.snapshot.snapshot.metadata.index
    }
    if (rd.committedEntries.length > 0) {
      await application.apply(rd.committedEntries)
      this.appliedIndex = rd.committedEntries[rd.committedEntries.length - 1]!.index
      this.settleProposals(rd.committedEntries)
    }
    for (const rs of rd.readStates) {
      const key = contextKey(rs.context)
      const waiter = this.reads.get(key)
      if (waiter === undefined) continue
      this.reads.delete(key)
      this.readsAwaitingApply.push({ index: rs.index, waiter })
    }
    this.node.advance(rd)
    this.releaseReads()
    this.compactIfDue()
  }

  /**
   * Bound the log: once enough applied entries pile up above the last snapshot, the
   * application's state becomes the new snapshot and the entries below it go (the next
   * Ready persists that). Followers that fall further behind get the snapshot instead.
   */
  private compactIfDue(): void {
    const every = this.opts.snapshotEveryEntries ?? 0
    const snapshotData = this.opts.application.snapshotData
    if (every <= 0 || snapshotData === undefined) return
    const snapshotIndex = this.node.status().firstIndex - 1
    if (this.appliedIndex - snapshotIndex < every) return
    this.node.compact(this.appliedIndex, snapshotData.call(this.opts.application))
    this.compactions++
    this.poke()
  }

  /** How many times this driver compacted the log (for metrics and tests). */
  compactions = 0

  private settleProposals(entries: readonly Entry[]): void {
    for (const e of entries) {
      const waiter = this.proposals.get(e.index)
      if (waiter === undefined) continue
      this.proposals.delete(e.index)
      if (waiter.term === e.term) waiter.resolve(e.index)
      else waiter.reject(new ProposalDroppedError(e.index))
    }
  }

  private releaseReads(): void {
    for (let k = 0; k < this.readsAwaitingApply.length; ) {
      const r = this.readsAwaitingApply[k]!
      if (r.index <= this.appliedIndex) {
        this.readsAwaitingApply.splice(k, 1)
        r.waiter.resolve(r.index)
      } else k++
    }
  }
}

function contextKey(context: Uint8Array): string {
  let key = ''
  for (const b of context) key += String.fromCharCode(b)
  return key
}
