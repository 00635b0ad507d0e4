// The leader: replication with flow control, commit by quorum (only entries
// of its own term, Figure 8), heartbeats, snapshots in chunks, transfers.
import { entrySizeBytes } from './log.js'
import type { Progress } from './progress.js'
import type { Raft } from './raft.js'
import { releaseConfirmedReads, stepLeaderReadIndex } from './leader-reads.js'
import { MessageType, type Message, type NodeId } from './types.js'

/** Answered heartbeats with appends in flight and none acknowledged before we resend from the match. */
const stalledHeartbeatsMax = 2

export function stepLeader(r: Raft, m: Message): void {
  const pr = r.tracker.progress.get(m.from)
  switch (m.type) {
    case MessageType.Beat:
      bcastHeartbeat(r, r.reads.lastContext())
      return
    case MessageType.ReadIndex:
      stepLeaderReadIndex(r, m)
      return
    case MessageType.TransferLeader:
      transferLeadership(r, m.from)
      return
  }
  if (pr === undefined) return
  pr.recentActive = true
  switch (m.type) {
    case MessageType.AppResp:
      handleAppendResponse(r, m, pr)
      return
    case MessageType.HeartbeatResp:
      if (pr.heartbeatAnswered(stalledHeartbeatsMax)) pr.becomeProbe()
      if (pr.match < r.log.lastIndex()) r.appendPending = true
      if (m.context !== undefined) releaseConfirmedReads(r, m.from, m.context)
      return
    case MessageType.SnapResp:
      handleSnapshotResponse(r, m, pr)
      return
  }
}

function handleAppendResponse(r: Raft, m: Message, pr: Progress): void {
  const index = m.index ?? 0
  if (m.reject === true) {
    // Fast backtracking: jump to where the follower's hint says the logs can agree.
    let hint = m.rejectHint ?? 0
    if ((m.logTerm ?? 0) > 0) hint = r.log.findConflictByTerm(hint, m.logTerm ?? 0).index
    if (pr.maybeDecrTo(index, hint)) {
      if (pr.state === 'replicate') pr.becomeProbe()
      r.appendPending = true
    }
    return
  }
  if (m.index === undefined) return // a stale leader's nudge carries no index
  const updated = pr.maybeUpdate(index)
  if (pr.state === 'snapshot' && pr.snapshotTransfer !== null && pr.match >= pr.snapshotTransfer.index) {
    pr.becomeProbe()
  }
  if (!updated) return
  if (pr.state === 'probe') pr.becomeReplicate()
  else pr.inflights.freeLE(index)
  maybeCommit(r)
  r.appendPending = true
  if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) sendTimeoutNow(r, m.from)
}

function handleSnapshotResponse(r: Raft, m: Message, pr: Progress): void {
  const transfer = pr.snapshotTransfer
  if (pr.state !== 'snapshot' || transfer === null || transfer.index !== m.index) return
  const acked = m.snapshotAcked ?? 0
  if (acked >= transfer.totalBytes) {
    pr.maybeUpdate(transfer.index)
    pr.becomeProbe()
    r.appendPending = true
    return
  }
  if (acked > transfer.ackedBytes) transfer.stalledBeats = 0
  transfer.ackedBytes = acked
  // The follower lost a chunk: resend from what it holds.
  if (m.reject === true) transfer.sentBytes = acked
  sendSnapshotChunks(r, m.from, pr)
}

/** Commit the largest index a quorum holds, if it is of the current term (§5.4.2). */
export function maybeCommit(r: Raft): boolean {
  const index = r.tracker.committedIndex()
  if (index <= r.log.committed || r.log.term(index) !== r.term) return false
  for (let i = r.log.committed + 1; i <= index; i++) {
    r.uncommittedBytes -= entrySizeBytes(r.log.entryAt(i)!)
  }
  if (r.uncommittedBytes < 0) r.uncommittedBytes = 0
  r.log.commitTo(index)
  releaseReadsAwaitingCommit(r)
  return true
}

function releaseReadsAwaitingCommit(r: Raft): void {
  if (r.readsAwaitingCommit.length === 0 || r.log.term(r.log.committed) !== r.term) return
  const waiting = r.readsAwaitingCommit
  r.readsAwaitingCommit = []
  for (const read of waiting) {
    stepLeaderReadIndex(r, { type: MessageType.ReadIndex, from: read.from, to: r.id, term: r.term, context: read.context })
  }
}

/** Send every follower what it lacks, within its flow-control window. */
export function bcastAppend(r: Raft): void {
  r.appendPending = false
  for (const [id, pr] of r.tracker.progress) {
    if (id !== r.id) sendAppends(r, id, pr)
  }
}

function sendAppends(r: Raft, to: NodeId, pr: Progress): void {
  const last = r.log.lastIndex()
  let commitToSend = pr.commitSent < r.log.committed
  while (!pr.isPaused()) {
    const prevIndex = pr.next - 1
    const prevTerm = r.log.term(prevIndex)
    if (prevTerm === undefined) {
      startSnapshot(r, to, pr)
      return
    }
    const entries = pr.next <= last ? r.log.slice(pr.next, last, r.cfg.appendMessageMaxBytes) : []
    if (entries.length === 0 && !commitToSend && pr.state === 'replicate') return
    r.send({ type: MessageType.App, from: r.id, to, term: r.term, index: prevIndex, logTerm: prevTerm, entries, commit: r.log.committed })
    pr.commitSent = r.log.committed
    commitToSend = false
    const sentLast = entries[entries.length - 1]
    pr.sentEntries(sentLast === undefined ? prevIndex : sentLast.index, entries.length)
    if (sentLast === undefined) return
  }
}

export function bcastHeartbeat(r: Raft, context: Uint8Array | undefined): void {
  for (const [id, pr] of r.tracker.progress) {
    if (id === r.id) continue
    // Never tell a follower to commit past what it is known to hold.
    const m: Message = { type: MessageType.Heartbeat, from: r.id, to: id, term: r.term, commit: Math.min(pr.match, r.log.committed) }
    if (context !== undefined) m.context = context
    r.send(m)
  }
}

function startSnapshot(r: Raft, to: NodeId, pr: Progress): void {
  const snapshot = r.snapshot
  if (snapshot === null) throw new Error(`entry ${pr.next - 1} is compacted but no snapshot is held`)
  pr.becomeSnapshot({ index: snapshot.metadata.index, totalBytes: snapshot.data.byteLength, ackedBytes: 0, sentBytes: 0, stalledBeats: 0 })
  sendSnapshotChunks(r, to, pr)
}

/** Keep up to snapshotChunksInflightMax chunks in flight; an empty snapshot is one empty chunk. */
function sendSnapshotChunks(r: Raft, to: NodeId, pr: Progress): void {
  const transfer = pr.snapshotTransfer
  const snapshot = r.snapshot
  if (transfer === null || snapshot === null || snapshot.metadata.index !== transfer.index) return
  const chunkBytes = r.cfg.snapshotChunkBytes
  const windowBytes = chunkBytes * r.cfg.snapshotChunksInflightMax
  do {
    if (transfer.sentBytes - transfer.ackedBytes >= windowBytes) return
    if (transfer.sentBytes >= transfer.totalBytes && transfer.totalBytes > 0) return
    const offset = transfer.sentBytes
    const data = snapshot.data.subarray(offset, Math.min(offset + chunkBytes, transfer.totalBytes))
    r.send({
      type: MessageType.Snap,
      from: r.id,
      to,
      term: r.term,
      snapshot: { metadata: snapshot.metadata, totalBytes: transfer.totalBytes, offset, data },
    })
    transfer.sentBytes = offset + data.byteLength
  } while (transfer.sentBytes < transfer.totalBytes)
}

/** Each heartbeat: a transfer with no progress for two beats resends from the last acknowledged byte. */
export function tickSnapshotTransfers(r: Raft): void {
  for (const [id, pr] of r.tracker.progress) {
    const transfer = pr.snapshotTransfer
    if (id === r.id || pr.state !== 'snapshot' || transfer === null) continue
    transfer.stalledBeats++
    if (transfer.stalledBeats < 2) continue
    transfer.stalledBeats = 0
    if (r.snapshot === null || r.snapshot.metadata.index !== transfer.index) {
      // A newer snapshot replaced the one in transfer: start over with it.
      pr.becomeProbe()
      r.appendPending = true
      continue
    }
    transfer.sentBytes = transfer.ackedBytes
    sendSnapshotChunks(r, id, pr)
  }
}

export function transferLeadership(r: Raft, to: NodeId): void {
  if (to === r.id || !r.tracker.isVoter(to)) return
  r.leadTransferee = to
  r.electionElapsed = 0
  const pr = r.tracker.progress.get(to)!
  if (pr.match === r.log.lastIndex()) sendTimeoutNow(r, to)
  else r.appendPending = true
}

function sendTimeoutNow(r: Raft, to: NodeId): void {
  r.send({ type: MessageType.TimeoutNow, from: r.id, to, term: r.term })
}

/**
 * A leader that removed itself keeps leading, refusing proposals, until the
 * best-placed voter holds its whole log; then it hands over (thesis §4.2.2).
 * Stepping down at once could strand an entry only it holds.
 */
export function handOverLeadership(r: Raft): void {
  let best: NodeId | null = null
  let bestMatch = -1
  for (const id of r.tracker.voters) {
    const match = r.tracker.progress.get(id)?.match ?? 0
    if (id !== r.id && match > bestMatch) {
      best = id
      bestMatch = match
    }
  }
  if (best !== null) transferLeadership(r, best)
}
