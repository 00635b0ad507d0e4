// Sending a store command through Raft from any peer: the leader proposes it
// and answers with its outcome; a follower forwards it to the leader and then
// waits until it has applied the entry itself, so the client that wrote it
// reads it back from the same peer.
import type { RaftDriver } from '../../consensus/driver.js'
import { NotLeaderError } from '../../consensus/errors.js'
import type { RpcEndpoint } from '../../net/rpc.js'
import type { PeerState } from '../state/peer-state.js'
import { encodeStoreCommand, type CommandOutcome, type StoreCommand } from '../store/commands.js'
import { StatusError } from './status.js'

/** How long a write may wait for a quorum before the API answers 504. */
export const commitWaitMs = 5000

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

export interface Submitter {
  driver: RaftDriver
  state: PeerState
  rpc: () => RpcEndpoint
}

/** On the leader: propose and read the outcome once applied. (Also the `store.submit` RPC handler.) */
export async function submitOnLeader(s: Submitter, command: StoreCommand): Promise<SubmitResult> {
  const index = await s.driver.propose(encodeStoreCommand(command))
  const outcomes = s.state.store.outcomeOf(index)
  if (outcomes === undefined) throw new StatusError(500, 'InternalError', `no outcome recorded for entry ${index}`)
  return { index, outcomes }
}

export async function submit(s: Submitter, command: StoreCommand): Promise<SubmitResult> {
  return withDeadline(
    (async () => {
      const node = s.driver.node
      if (node.role === 'leader') return submitOnLeader(s, command)
      if (node.leaderId === null) throw new NotLeaderError(null)
      const result = await s.rpc().call<SubmitResult>(node.leaderId, 'store.submit', command)
      await s.state.waitForApplied(result.index)
      return result
    })(),
  )
}

/** The single outcome of a single command, as a stored object or a Status error. */
export function singleOutcome(result: SubmitResult): CommandOutcome & { ok: true } {
  const outcome = result.outcomes[0]
  if (outcome === undefined) throw new StatusError(500, 'InternalError', 'the command had no outcome')
  if (!outcome.ok) throw new StatusError(outcome.failure.code, outcome.failure.reason, outcome.failure.message, outcome.failure.details)
  return outcome
}
