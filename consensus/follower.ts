// A follower takes appends, heartbeats and snapshot chunks from its leader,
// answers leadership transfers, and receives the answers to reads it forwarded.
import { campaign } from './election.js'
import { installSnapshot } from './membership.js'
import type { Raft } from './raft.js'
import { MessageType, type Message } from './types.js'

const fromLeader: Partial<Record<MessageType, (r: Raft, m: Message) => void>> = {
  [MessageType.App]: handleAppend,
  [MessageType.Heartbeat]: handleHeartbeat,
  [MessageType.Snap]: handleSnapshotChunk,
}

export function stepFollower(r: Raft, m: Message): void {
  const handle = fromLeader[m.type]
  if (handle !== undefined) {
    // Hearing from the leader resets the election timer (and the lease).
    r.electionElapsed = 0
    r.leaderId = m.from
    handle(r, m)
    return
  }
  switch (m.type) {
    case MessageType.TimeoutNow:
      // Leadership transfer: campaign at once, past PreVote and leases.
      if (r.promotable()) campaign(r, 'transfer')
      return
    case MessageType.ReadIndexResp:
      if (m.context !== undefined) r.readStates.push({ index: m.index ?? 0, context: m.context })
      return
  }
}

export function handleAppend(r: Raft, m: Message): void {
  const prevIndex = m.index ?? 0
  if (prevIndex < r.log.committed) {
    r.send({ type: MessageType.AppResp, from: r.id, to: m.from, term: r.term, index: r.log.committed })
    return
  }
  const lastNew = r.log.maybeAppend(prevIndex, m.logTerm ?? 0, m.commit ?? 0, m.entries ?? [])
  if (lastNew !== null) {
    respondAppend(r, m.from, lastNew)
    return
  }
  // Point the leader at the last entry that could match, skipping whole terms.
  const hint = r.log.findConflictByTerm(Math.min(prevIndex, r.log.lastIndex()), m.logTerm ?? 0)
  r.send({
    type: MessageType.AppResp,
    from: r.id,
    to: m.from,
    term: r.term,
    index: prevIndex,
    reject: true,
    rejectHint: hint.index,
    logTerm: hint.term,
  })
}

/**
 * Acknowledge up to `index`. Acks waiting for the same persist are coalesced:
 * the leader only needs the highest one.
 */
function respondAppend(r: Raft, to: string, index: number): void {
  const queued = r.messagesAfterPersist
  const last = queued[queued.length - 1]
  if (last !== undefined && last.type === MessageType.AppResp && last.to === to && last.reject !== true && last.term === r.term) {
    last.index = Math.max(last.index ?? 0, index)
    return
  }
  r.send({ type: MessageType.AppResp, from: r.id, to, term: r.term, index })
}

export function handleHeartbeat(r: Raft, m: Message): void {
  r.log.commitTo(Math.min(m.commit ?? 0, r.log.lastIndex()))
  const resp: Message = { type: MessageType.HeartbeatResp, from: r.id, to: m.from, term: r.term }
  if (m.context !== undefined) resp.context = m.context
  r.send(resp)
}

export function handleSnapshotChunk(r: Raft, m: Message): void {
  const chunk = m.snapshot
  if (chunk === undefined) return
  const meta = chunk.metadata
  if (meta.index <= r.log.committed) {
    // We already have it: tell the leader where we are, it goes back to appends.
    r.incomingSnapshot = null
    r.send({ type: MessageType.AppResp, from: r.id, to: m.from, term: r.term, index: r.log.committed })
    return
  }
  if (r.log.matchTerm(meta.index, meta.term)) {
    // Our log already holds the snapshot's last entry: fast-forward the commit instead.
    r.incomingSnapshot = null
    r.log.commitTo(meta.index)
    r.send({ type: MessageType.AppResp, from: r.id, to: m.from, term: r.term, index: r.log.committed })
    return
  }
  let incoming = r.incomingSnapshot
  const sameSnapshot = incoming !== null && incoming.index === meta.index && incoming.term === meta.term && incoming.from === m.from
  if (!sameSnapshot) {
    incoming = chunk.offset === 0 ? { from: m.from, index: meta.index, term: meta.term, chunks: [], receivedBytes: 0 } : null
    r.incomingSnapshot = incoming
  }
  if (incoming === null || chunk.offset !== incoming.receivedBytes) {
    // A lost or reordered chunk: ask the leader to resume from what we hold.
    const acked = incoming?.receivedBytes ?? 0
    r.send({ type: MessageType.SnapResp, from: r.id, to: m.from, term: r.term, index: meta.index, snapshotAcked: acked, reject: true })
    return
  }
  incoming.chunks.push(chunk.data)
  incoming.receivedBytes += chunk.data.byteLength
  if (incoming.receivedBytes < chunk.totalBytes) {
    r.send({ type: MessageType.SnapResp, from: r.id, to: m.from, term: r.term, index: meta.index, snapshotAcked: incoming.receivedBytes })
    return
  }
  const data = concatChunks(incoming.chunks, chunk.totalBytes)
  r.incomingSnapshot = null
  installSnapshot(r, { metadata: meta, data })
  r.send({ type: MessageType.SnapResp, from: r.id, to: m.from, term: r.term, index: meta.index, snapshotAcked: chunk.totalBytes })
}

function concatChunks(chunks: readonly Uint8Array[], totalBytes: number): Uint8Array {
  const data = new Uint8Array(totalBytes)
  let offset = 0
  for (const c of chunks) {
    data.set(c, offset)
    offset += c.byteLength
  }
  return data
}
