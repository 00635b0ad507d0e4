// Voters are managed automatically. The leader looks at the configuration,
// the registry and gossip, and makes one membership change at a time:
// newcomers join as learners; caught-up learners are promoted until there are
// 3 voters (5 once 5 peers are healthy, up to --voters); a voter dead beyond
// the grace period is replaced by a healthy learner; departed peers are
// removed. Promotions and removals come in pairs, so the count of voters is
// never left even: single-server changes pass through even counts only
// between the two steps of a pair.
import { ConfChangeType, type ConfChange, type NodeId } from '../consensus/types.js'

export interface AutopilotView {
  leaderId: NodeId
  voters: readonly NodeId[]
  learners: readonly NodeId[]
  /** Registered peers that have not left. */
  members: readonly NodeId[]
  /** Peers that left gracefully (or were told to). */
  departed: ReadonlySet<NodeId>
  /** Peers gossip sees alive now. */
  healthy: ReadonlySet<NodeId>
  /** Peers gossip has seen dead for longer than the grace period. */
  deadBeyondGrace: ReadonlySet<NodeId>
  /** Learners whose log has caught up with the commit index. */
  caughtUp: ReadonlySet<NodeId>
  /** The most voters wanted (--voters, default 5). */
  votersMax: number
}

/** The voter count wanted: 3 (or fewer if --voters says so), then the largest odd count the healthy peers allow, up to votersMax. */
export function desiredVoters(healthyMembers: number, votersMax: number): number {
  if (votersMax <= 1) return 1
  let desired = Math.min(3, votersMax % 2 === 0 ? votersMax - 1 : votersMax)
  for (let k = 5; k <= votersMax && k <= healthyMembers; k += 2) desired = k
  return desired
}

export function planNextChange(view: AutopilotView): ConfChange | null {
  const voters = new Set(view.voters)
  const learners = new Set(view.learners)
  const departedMember = [...voters, ...learners].find((id) => view.departed.has(id))
  if (departedMember !== undefined) return { type: ConfChangeType.RemoveNode, nodeId: departedMember }
  const newcomer = view.members.find((id) => !voters.has(id) && !learners.has(id) && !view.departed.has(id))
  if (newcomer !== undefined) return { type: ConfChangeType.AddLearner, nodeId: newcomer }
  return planVoterChange(view, voters)
}

function planVoterChange(view: AutopilotView, voters: ReadonlySet<NodeId>): ConfChange | null {
  const healthyMembers = view.members.filter((id) => view.healthy.has(id)).length
  const desired = desiredVoters(healthyMembers, view.votersMax)
  const candidates = view.learners.filter((id) => view.healthy.has(id) && view.caughtUp.has(id)).sort()
  const dead = [...voters].filter((id) => view.deadBeyondGrace.has(id) && id !== view.leaderId).sort()
  const count = voters.size
  const promote = (): ConfChange => ({ type: ConfChangeType.PromoteLearner, nodeId: candidates[0]! })
  const remove = (id: NodeId): ConfChange => ({ type: ConfChangeType.RemoveNode, nodeId: id })
  // An even count is the middle of a pair: finish it.
  if (count % 2 === 0) {
    if (dead.length > 0) return remove(dead[0]!)
    if (count < desired && candidates.length > 0) return promote()
    if (count > desired) return remove(lowestPriorityVoter(view, voters))
    // Two voters and nobody to promote (a two-peer cluster): wait for a third.
    return null
  }
  // Replace a dead voter: promote a learner now, remove the dead voter next.
  if (dead.length > 0 && candidates.length > 0) return promote()
  // No replacement: shed dead voters two at a time when that leaves enough voters.
  if (dead.length >= 2 && count - 2 >= Math.min(desired, 3)) return remove(dead[0]!)
  // Grow by two when two learners are ready.
  if (count < desired && candidates.length >= 2) return promote()
  // Shrink by two when there are too many and nobody is dead (--voters was lowered, peers left):
  // a dead voter that may come back is kept rather than churned.
  if (count - 2 >= desired && dead.length === 0) return remove(lowestPriorityVoter(view, voters))
  return null
}

/** Which voter to drop when shrinking: a dead one, else an unhealthy one, else the last by id; never the leader. */
function lowestPriorityVoter(view: AutopilotView, voters: ReadonlySet<NodeId>): NodeId {
  const others = [...voters].filter((id) => id !== view.leaderId).sort()
  return others.find((id) => view.deadBeyondGrace.has(id)) ?? others.find((id) => !view.healthy.has(id)) ?? others[others.length - 1]!
}
