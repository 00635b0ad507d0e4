// Membership: single-server changes carried in the log, applied when
// committed, one at a time; snapshots carry the configuration they cover.
import { InvalidConfChangeError } from './errors.js'
import { handOverLeadership } from './leader.js'
import type { Raft } from './raft.js'
import { applyConfChange } from './tracker.js'
import { ConfChangeType, EntryType, type ConfChange, type ConfState, type Entry, type Snapshot } from './types.js'

const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder()

/** One byte of type, then the node id in UTF-8: tiny, and no codec dependency in the core. */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const id = textEncoder.encode(change.nodeId)
  const out = new Uint8Array(id.byteLength + 1)
  out[0] = change.type
  out.set(id, 1)
  return out
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const type = data[0]
  if (type === undefined || type > ConfChangeType.RemoveNode) throw new InvalidConfChangeError(`unknown membership change type ${type}`)
  return { type: type as ConfChangeType, nodeId: textDecoder.decode(data.subarray(1)) }
}

/** The configuration in force at `index` (which must not be older than the snapshot). */
export function confAt(r: Raft, index: number): ConfState {
  let conf = r.confBase
  for (const change of r.confHistory) {
    if (change.index > index) break
    conf = change.conf
  }
  return conf
}

/**
 * Membership changes take effect as soon as this node knows they are
 * committed: at start, and after every step, tick and advance. (Applying an
 * uncommitted change is what the single-server change rules forbid; a
 * committed one is safe to apply as early as it is known.)
 */
export function applyCommittedConfChanges(r: Raft): void {
  const upTo = r.log.committed
  for (let i = Math.max(r.confAppliedIndex, r.log.firstIndex() - 1) + 1; i <= upTo; i++) {
    const entry = r.log.entryAt(i)
    if (entry?.type === EntryType.ConfChange) applyConfChangeEntry(r, entry)
  }
  if (upTo > r.confAppliedIndex) r.confAppliedIndex = upTo
}

function applyConfChangeEntry(r: Raft, entry: Entry): void {
  let next: ConfState
  try {
    next = applyConfChange(r.tracker.confState(), decodeConfChange(entry.data))
  } catch (err) {
    // Every node reaches the same verdict on the same log: an invalid change is a no-op everywhere.
    if (err instanceof InvalidConfChangeError) return
    throw err
  }
  r.tracker.setConf(next, r.log.lastIndex() + 1)
  r.confHistory.push({ index: entry.index, conf: next })
  if (r.role !== 'leader') return
  if (!r.tracker.isVoter(r.id)) {
    handOverLeadership(r)
    return
  }
  if (r.leadTransferee !== null && !r.tracker.isVoter(r.leadTransferee)) r.leadTransferee = null
  r.appendPending = true
}

/** Install a snapshot received from the leader: the log and configuration are replaced. */
export function installSnapshot(r: Raft, snapshot: Snapshot): void {
  r.log.restore(snapshot.metadata)
  r.snapshot = snapshot
  r.pendingSnapshot = { snapshot, replacesLog: true }
  r.confBase = snapshot.metadata.confState
  r.confHistory = []
  r.confAppliedIndex = snapshot.metadata.index
  r.tracker.setConf(snapshot.metadata.confState, r.log.lastIndex() + 1)
}

/** Local compaction: the application snapshotted its state at `index`. */
export function compactLog(r: Raft, index: number, data: Uint8Array): Snapshot {
  const term = r.log.term(index)
  if (term === undefined) throw new RangeError(`entry ${index} is not in the log`)
  const snapshot: Snapshot = { metadata: { index, term, confState: confAt(r, index) }, data }
  r.confBase = snapshot.metadata.confState
  r.confHistory = r.confHistory.filter((c) => c.index > index)
  r.log.compact(index)
  r.snapshot = snapshot
  // A not-yet-persisted install is superseded, but the stored log must still be replaced.
  r.pendingSnapshot = { snapshot, replacesLog: r.pendingSnapshot?.replacesLog ?? false }
  return snapshot
}
