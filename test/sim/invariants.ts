// Raft's safety properties (Figure 3 of the paper), checked after every
// simulated event. A violation throws at once, with the seed in the caller.
import type { RaftNode } from '../../consensus/node.js'
import type { Entry, HardState, NodeId, Ready, Snapshot } from '../../consensus/types.js'
import type { SimNode } from './sim-node.js'

export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation'
}

const decoder = new TextDecoder()

interface CommittedEntry {
  term: number
  /** Term of the leader that first committed it. */
  commitTerm: number
}

interface NodeObservation {
  incarnation: number
  role: string
  term: number
  commitIndex: number
  appliedIndex: number
}

export class InvariantChecker {
  private readonly leaderByTerm = new Map<number, NodeId>()
  /** (index, term) -> identity of the entry and of its predecessor: Log Matching by induction. */
  private readonly entryIdentity = new Map<string, { prevTerm: number; data: string }>()
  readonly committed = new Map<number, CommittedEntry>()
  /** index -> (term, data) of the entry every node applies there. */
  readonly applied = new Map<number, { term: number; data: string }>()
  private readonly snapshots = new Map<number, string>()
  private readonly observed = new Map<NodeId, NodeObservation>()
  checks = 0

  private fail(message: string): never {
    throw new InvariantViolation(message)
  }

  /** After any event that touched `node`. */
  afterEvent(node: SimNode): void {
    this.checks++
    const raft = node.raft
    if (raft === null) return
    const prev = this.observed.get(node.id)
    const sameLife = prev !== undefined && prev.incarnation === node.incarnation
    if (sameLife && raft.commitIndex < prev.commitIndex) {
      this.fail(`${node.id}: commit index went back from ${prev.commitIndex} to ${raft.commitIndex}`)
    }
    if (sameLife && node.appliedIndex < prev.appliedIndex) {
      this.fail(`${node.id}: applied index went back from ${prev.appliedIndex} to ${node.appliedIndex}`)
    }
    if (raft.role === 'leader') this.checkLeader(node, raft, sameLife && prev.role === 'leader' && prev.term === raft.term ? prev : undefined)
    this.observed.set(node.id, {
      incarnation: node.incarnation,
      role: raft.role,
      term: raft.term,
      commitIndex: raft.commitIndex,
      appliedIndex: node.appliedIndex,
    })
  }

  private checkLeader(node: SimNode, raft: RaftNode, wasLeader: NodeObservation | undefined): void {
    const other = this.leaderByTerm.get(raft.term)
    if (other !== undefined && other !== node.id) this.fail(`election safety: ${other} and ${node.id} both lead term ${raft.term}`)
    this.leaderByTerm.set(raft.term, node.id)
    if (wasLeader === undefined) this.checkLeaderCompleteness(node.id, raft)
    // Record what this leader commits, with the term it commits in.
    const from = wasLeader?.commitIndex ?? 0
    for (let i = from + 1; i <= raft.commitIndex; i++) {
      const term = raft.logTerm(i)
      if (term === undefined) continue
      const known = this.committed.get(i)
      if (known === undefined) this.committed.set(i, { term, commitTerm: raft.term })
      else if (known.term !== term) this.fail(`${node.id} (leader, term ${raft.term}) commits entry ${i} of term ${term}, but ${i} was committed with term ${known.term}`)
    }
  }

  /** Leader Completeness: a new leader holds every entry committed in an earlier term. */
  private checkLeaderCompleteness(id: NodeId, raft: RaftNode): void {
    for (const [index, entry] of this.committed) {
      if (entry.commitTerm >= raft.term) continue
      const term = raft.logTerm(index)
      if (term === undefined && index <= raft.commitIndex) continue // compacted into a snapshot
      if (term !== entry.term) {
        this.fail(`leader completeness: ${id} leads term ${raft.term} without entry ${index} (term ${entry.term}) committed in term ${entry.commitTerm}; it has term ${term}`)
      }
    }
  }

  /** Durable state: term never goes back, one vote per term, Log Matching on what was written. */
  onPersist(node: SimNode, rd: Ready, before: HardState): void {
    const after = node.storage.hardState
    if (after.term < before.term) this.fail(`${node.id}: durable term went back from ${before.term} to ${after.term}`)
    if (after.term === before.term && before.vote !== null && after.vote !== before.vote) {
      this.fail(`${node.id}: voted for ${before.vote} and then ${after.vote} in term ${after.term}`)
    }
    for (const e of rd.entries) this.checkLogMatching(node, e)
  }

  private checkLogMatching(node: SimNode, e: Entry): void {
    const prevTerm = e.index === 1 ? 0 : node.storage.term(e.index - 1)
    if (prevTerm === undefined) this.fail(`${node.id}: stored entry ${e.index} has no predecessor`)
    const key = `${e.index}:${e.term}`
    const data = decoder.decode(e.data)
    const known = this.entryIdentity.get(key)
    if (known === undefined) {
      this.entryIdentity.set(key, { prevTerm, data })
      return
    }
    if (known.data !== data) this.fail(`log matching: two different entries at index ${e.index} term ${e.term}`)
    if (known.prevTerm !== prevTerm) {
      this.fail(`log matching: entry ${e.index} term ${e.term} follows term ${prevTerm} on ${node.id} but term ${known.prevTerm} elsewhere`)
    }
  }

  /** State Machine Safety: the same entry is applied at each index everywhere, and only once committed. */
  onApply(node: SimNode, e: Entry): void {
    const data = decoder.decode(e.data)
    const known = this.applied.get(e.index)
    if (known === undefined) this.applied.set(e.index, { term: e.term, data })
    else if (known.term !== e.term || known.data !== data) {
      this.fail(`state machine safety: ${node.id} applies entry ${e.index} term ${e.term}, others applied term ${known.term}`)
    }
    const committed = this.committed.get(e.index)
    if (committed !== undefined && committed.term !== e.term) {
      this.fail(`${node.id} applies entry ${e.index} term ${e.term}, but term ${committed.term} was committed there`)
    }
  }

  /** Every snapshot of index i holds the same state. */
  onSnapshot(node: SimNode, snapshot: Snapshot): void {
    const data = decoder.decode(snapshot.data)
    const index = snapshot.metadata.index
    const known = this.snapshots.get(index)
    if (known === undefined) this.snapshots.set(index, data)
    else if (known !== data) this.fail(`${node.id}: snapshot at ${index} differs from another node's snapshot at ${index}`)
  }

  leaderOf(term: number): NodeId | undefined {
    return this.leaderByTerm.get(term)
  }
}
