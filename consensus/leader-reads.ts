// ReadIndex on the leader (Raft thesis §6.4): wait for an entry of this term
// to commit, record the commit index, confirm leadership with one heartbeat
// round, then release the read to whoever asked.
import type { Raft } from './raft.js'
import { MessageType, type Message, type NodeId } from './types.js'

/** Register a read. Throws ReadIndexQueueFullError when too many wait (callers on this node see it). */
export function stepLeaderReadIndex(r: Raft, m: Message): void {
  const context = m.context
  if (context === undefined) return
  if (r.log.term(r.log.committed) !== r.term) {
    // Until the leader commits in its term it may not know the latest commit index.
    if (r.readsAwaitingCommit.length < r.cfg.pendingReadsMax) r.readsAwaitingCommit.push({ context, from: m.from })
    return
  }
  if (r.tracker.voters.size === 1 && r.tracker.isVoter(r.id)) {
    respondRead(r, m.from, r.log.committed, context)
    return
  }
  r.reads.add(r.log.committed, context, m.from, r.id)
  // One heartbeat round carrying the newest context confirms every read queued before it.
  r.readHeartbeatPending = true
}

export function releaseConfirmedReads(r: Raft, from: NodeId, context: Uint8Array): void {
  if (!r.tracker.isVoter(from)) return
  r.reads.recordAck(from, context)
  if (countVoterAcks(r, context) < r.tracker.quorum()) return
  for (const read of r.reads.releaseThrough(context)) respondRead(r, read.from, read.index, read.context)
}

function countVoterAcks(r: Raft, context: Uint8Array): number {
  const acks = r.reads.acksFor(context)
  if (acks === undefined) return 0
  let count = 0
  for (const id of acks) if (r.tracker.isVoter(id)) count++
  return count
}

function respondRead(r: Raft, to: NodeId, index: number, context: Uint8Array): void {
  if (to === r.id) r.readStates.push({ index, context })
  else r.send({ type: MessageType.ReadIndexResp, from: r.id, to, term: r.term, index, context })
}
