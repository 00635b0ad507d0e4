// Sending store commands through Raft from any peer. Commands submitted in the
// same turn of the event loop travel together: one Raft entry (`obj.batch`)
// and, on a follower, one forwarding call to the leader, so a burst of writes
// costs one entry and one round trip instead of one each. The leader proposes
// the follower's bytes as they came and answers with the entry's index; the
// follower waits until it has applied that entry itself (so the client reads
// its write back from the same peer) and reads the outcomes from its own store:
// every peer records the same outcomes, as it applies the same log.
import type { RaftDriver } from '../../consensus/driver.js'
import { TooManyPendingError } from '../../consensus/driver.js'
import { NotLeaderError } from '../../consensus/errors.js'
import type { RpcEndpoint } from '../../net/rpc.js'
import type { PeerState } from '../state/peer-state.js'
import { decodeCommand, encodeStoreCommand, refOf, storeOps, type CommandOutcome, type StoreCommand } from '../store/commands.js'
import { StatusError } from './status.js'

/** How long a write may wait for a quorum before the API answers 504. */
export const commitWaitMs = 5000
/** Commands in one Raft entry. */
export const batchCommandsMax = 256
/** Commands waiting for their batch to go out; past it, submit() refuses (429). */
export const pendingCommandsMax = 20_000

export interface SubmitResult {
  index: number
  outcomes: CommandOutcome[]
}

export class CommitTimeoutError extends Error {
  override readonly name = 'CommitTimeoutError'

  constructor() {
    super(`the write did not commit within ${commitWaitMs / 1000} s (is a quorum of voters reachable?); it may still commit later`)
  }
}

export function withDeadline<T>(work: Promise<T>, ms = commitWaitMs): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CommitTimeoutError()), ms)
  })
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer))
}

/** Anything that takes a store command through Raft (the peer's SubmitBatcher). */
export interface Submitter {
  submit(command: StoreCommand): Promise<SubmitResult>
}

/** Submit one command; a write that does not commit within 5 s fails with CommitTimeoutError (the batcher keeps one deadline per batch). */
export function submit(s: Submitter, command: StoreCommand): Promise<SubmitResult> {
  return s.submit(command)
}

interface Queued {
  command: StoreCommand
  resolve: (result: SubmitResult) => void
  reject: (err: Error) => void
}

export interface SubmitBatcherOptions {
  driver: RaftDriver
  state: PeerState
  rpc: () => RpcEndpoint
}

export class SubmitBatcher implements Submitter {
  private queue: Queued[] = []
  private scheduled = false

  constructor(private readonly options: SubmitBatcherOptions) {}

  submit(command: StoreCommand): Promise<SubmitResult> {
    if (this.queue.length >= pendingCommandsMax) return Promise.reject(new TooManyPendingError('writes', pendingCommandsMax))
    return new Promise((resolve, reject) => {
      this.queue.push({ command, resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  /** Send what is queued, in batches; each batch settles on its own (they are pipelined). */
  private flush(): void {
    this.scheduled = false
    const queued = this.queue
    this.queue = []
    const singles: Queued[] = []
    for (const q of queued) {
      // A caller's own batch keeps its entry (batches do not nest) and gets all its outcomes.
      if (q.command.op === 'obj.batch') void this.send([q], q.command.commands)
      else singles.push(q)
    }
    for (let k = 0; k < singles.length; k += batchCommandsMax) void this.send(singles.slice(k, k + batchCommandsMax), null)
  }

  /** One entry; `inner` is the commands of a caller's own batch (sent alone), else null. */
  private async send(batch: Queued[], inner: StoreCommand[] | null): Promise<void> {
    const commands = inner ?? batch.map((q) => q.command)
    try {
      const bytes = encodeStoreCommand(inner !== null || commands.length === 1 ? batch[0]!.command : { op: 'obj.batch', commands })
      const { index, outcomes } = await withDeadline(this.commit(bytes, commands))
      if (inner !== null) batch[0]!.resolve({ index, outcomes })
      else batch.forEach((q, k) => q.resolve({ index, outcomes: [outcomes[k]!] }))
    } catch (err) {
      for (const q of batch) q.reject(err as Error)
    }
  }

  /** The outcomes of a committed entry holding `commands`, one per command. */
  private async commit(bytes: Uint8Array, commands: StoreCommand[]): Promise<SubmitResult> {
    const { driver, state, rpc } = this.options
    const node = driver.node
    if (node.role === 'leader') {
      const index = await driver.propose(bytes)
      return { index, outcomes: this.outcomesAt(index, commands, null) }
    }
    if (node.leaderId === null) throw new NotLeaderError(null)
    const answer = await rpc().call<ForwardAnswer>(node.leaderId, 'store.submit', bytes)
    await state.waitForApplied(answer.index)
    return { index: answer.index, outcomes: this.outcomesAt(answer.index, commands, answer.outcomes) }
  }

  /**
   * This peer's record of the entry's outcomes. It keeps the last 10,000 entries' and a snapshot
   * skips them; then the leader's summary stands in, with the object as this peer now holds it.
   */
  private outcomesAt(index: number, commands: StoreCommand[], fromLeader: CommandOutcome[] | null): CommandOutcome[] {
    const store = this.options.state.store
    const outcomes = store.outcomeOf(index) ?? fromLeader
    if (outcomes === null || outcomes === undefined || outcomes.length !== commands.length) {
      throw new StatusError(500, 'InternalError', `no outcome recorded for entry ${index}`)
    }
    return outcomes.map((o, k) => {
      if (!o.ok || o.object !== null) return o
      const c = commands[k]!
      if (c.op === 'obj.batch') return o
      if (c.op === 'obj.delete') return { ok: true, object: null }
      return { ok: true, object: store.get(refOf(c.object)) ?? c.object }
    })
  }

  /** On the leader: propose a follower's batch as it came (the `store.submit` RPC). */
  async proposeForwarded(bytes: unknown): Promise<ForwardAnswer> {
    const { driver, state } = this.options
    if (!(bytes instanceof Uint8Array) || !storeOps.has(decodeCommand(bytes).op)) throw new TypeError('store.submit takes an encoded store command')
    if (driver.node.role !== 'leader') throw new NotLeaderError(driver.node.leaderId)
    const index = await driver.propose(bytes)
    // Objects stay behind: the follower has them once it applies the entry. Failures travel, for the rare follower that lacks its own record.
    const outcomes = (state.store.outcomeOf(index) ?? []).map((o) => (o.ok ? { ok: true as const, object: null } : o))
    return { index, outcomes }
  }
}

export interface ForwardAnswer {
  index: number
  outcomes: CommandOutcome[]
}

/** The single outcome of a single command, as a stored object or a Status error. */
export function singleOutcome(result: SubmitResult): CommandOutcome & { ok: true } {
  const outcome = result.outcomes[0]
  if (outcome === undefined) throw new StatusError(500, 'InternalError', 'the command had no outcome')
  if (!outcome.ok) throw new StatusError(outcome.failure.code, outcome.failure.reason, outcome.failure.message, outcome.failure.details)
  return outcome
}
