// Who is in the configuration (voters, learners), what the leader knows of
// each one's log, and the quorum arithmetic over them.
import { InvalidConfChangeError } from './errors.js'
import { Progress } from './progress.js'
import { ConfChangeType, type ConfChange, type ConfState, type NodeId } from './types.js'

export type VoteResult = 'won' | 'lost' | 'pending'

/** The configuration after `change`, or an InvalidConfChangeError saying why it is not allowed. */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  const voters = new Set(conf.voters)
  const learners = new Set(conf.learners)
  const id = change.nodeId
  switch (change.type) {
    case ConfChangeType.AddLearner:
      if (voters.has(id) || learners.has(id)) throw new InvalidConfChangeError(`${id} is already a member`)
      learners.add(id)
      break
    case ConfChangeType.AddVoter:
      if (voters.has(id)) throw new InvalidConfChangeError(`${id} is already a voter`)
      learners.delete(id)
      voters.add(id)
      break
    case ConfChangeType.PromoteLearner:
      if (!learners.has(id)) throw new InvalidConfChangeError(`${id} is not a learner`)
      learners.delete(id)
      voters.add(id)
      break
    case ConfChangeType.RemoveNode:
      if (!voters.has(id) && !learners.has(id)) throw new InvalidConfChangeError(`${id} is not a member`)
      voters.delete(id)
      learners.delete(id)
      if (voters.size === 0) throw new InvalidConfChangeError(`removing ${id} would leave no voters`)
      break
  }
  return { voters: [...voters].sort(), learners: [...learners].sort() }
}

export class ProgressTracker {
  voters = new Set<NodeId>()
  learners = new Set<NodeId>()
  readonly progress = new Map<NodeId, Progress>()
  private readonly votes = new Map<NodeId, boolean>()

  constructor(
    conf: ConfState,
    private readonly inflightMessagesMax: number,
  ) {
    this.setConf(conf, 1)
  }

  /** Install a configuration; new members start probing from `nextIndex`. */
  setConf(conf: ConfState, nextIndex: number): void {
    this.voters = new Set(conf.voters)
    this.learners = new Set(conf.learners)
    for (const id of this.progress.keys()) {
      if (!this.voters.has(id) && !this.learners.has(id)) this.progress.delete(id)
    }
    for (const id of [...this.voters, ...this.learners]) {
      const existing = this.progress.get(id)
      if (existing === undefined) {
        this.progress.set(id, new Progress(nextIndex, this.inflightMessagesMax, this.learners.has(id)))
      } else {
        existing.isLearner = this.learners.has(id)
      }
    }
  }

  confState(): ConfState {
    return { voters: [...this.voters].sort(), learners: [...this.learners].sort() }
  }

  isVoter(id: NodeId): boolean {
    return this.voters.has(id)
  }

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1
  }

  /** The largest index a quorum of voters has in its durable log. */
  committedIndex(): number {
    const matches: number[] = []
    for (const id of this.voters) matches.push(this.progress.get(id)?.match ?? 0)
    if (matches.length === 0) return 0
    matches.sort((a, b) => b - a)
    return matches[this.quorum() - 1]!
  }

  resetVotes(): void {
    this.votes.clear()
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted)
  }

  tallyVotes(): VoteResult {
    let granted = 0
    let rejected = 0
    for (const id of this.voters) {
      const v = this.votes.get(id)
      if (v === true) granted++
      else if (v === false) rejected++
    }
    const q = this.quorum()
    if (granted >= q) return 'won'
    if (rejected > this.voters.size - q) return 'lost'
    return 'pending'
  }

  /** CheckQuorum: did a quorum of voters (counting `self`) speak since the last check? */
  quorumActive(self: NodeId): boolean {
    let active = 0
    for (const id of this.voters) {
      if (id === self || this.progress.get(id)?.recentActive === true) active++
    }
    return active >= this.quorum()
  }

  resetRecentActive(self: NodeId): void {
    for (const [id, pr] of this.progress) pr.recentActive = id === self
  }
}
