// Fault injection for the randomized simulation: crashes and restarts, the
// leader's crash, partitions (symmetric, asymmetric, minority, leader in a
// minority), a lossy, duplicating, reordering network, membership changes
// and leadership transfers, one after another at random.
import { ConfChangeType, type NodeId } from '../../consensus/types.js'
import type { SimCluster } from './cluster.js'
import type { Rng } from './rng.js'

export interface NemesisStats {
  actions: Record<string, number>
}

type Action = (cluster: SimCluster, rng: Rng) => void

const actions: Record<string, Action> = {
  crashRandom(cluster, rng) {
    crashAndRestartLater(cluster, rng, rng.pick(cluster.ids))
  },
  crashLeader(cluster, rng) {
    const leader = cluster.currentLeader()
    if (leader !== undefined) crashAndRestartLater(cluster, rng, leader.id)
  },
  isolateMinority(cluster, rng) {
    const shuffled = rng.shuffle(cluster.ids)
    const minority = shuffled.slice(0, Math.floor((cluster.ids.length - 1) / 2) || 1)
    cluster.network.partition([minority, shuffled.filter((id) => !minority.includes(id))])
  },
  isolateLeader(cluster, rng) {
    const leader = cluster.currentLeader()
    if (leader === undefined) return
    const others = rng.shuffle(cluster.ids.filter((id) => id !== leader.id))
    const withLeader = others.slice(0, rng.int(Math.floor((cluster.ids.length - 1) / 2)))
    cluster.network.partition([[leader.id, ...withLeader], others.filter((id) => !withLeader.includes(id))])
  },
  splitRandom(cluster, rng) {
    const shuffled = rng.shuffle(cluster.ids)
    const cut = 1 + rng.int(cluster.ids.length - 1)
    cluster.network.partition([shuffled.slice(0, cut), shuffled.slice(cut)])
  },
  oneWay(cluster, rng) {
    const [a, b] = rng.shuffle(cluster.ids)
    cluster.network.blockOneWay(a!, b!)
  },
  heal(cluster) {
    cluster.network.heal()
  },
  flakyNetwork(cluster, rng) {
    cluster.network.faults = {
      dropProbability: rng.next() * 0.2,
      duplicateProbability: rng.next() * 0.1,
      delayMinMs: 0.2,
      delayMaxMs: 2 + rng.next() * 20,
      longDelayProbability: rng.next() * 0.1,
      longDelayMaxMs: 200,
    }
  },
  calmNetwork(cluster) {
    cluster.network.faults = { ...cluster.network.faults, dropProbability: 0, duplicateProbability: 0, longDelayProbability: 0, delayMaxMs: 2 }
  },
  changeMembership(cluster, rng) {
    // Bursts exercise the one-change-at-a-time guard.
    const burst = rng.chance(0.3) ? 3 : 1
    for (let k = 0; k < burst; k++) proposeMembershipChange(cluster, rng)
  },
  transferLeadership(cluster, rng) {
    const leader = cluster.currentLeader()
    const raft = leader?.raft
    if (raft == null) return
    const others = raft.status().conf.voters.filter((id) => id !== leader!.id)
    if (others.length === 0) return
    raft.transferLeadership(rng.pick(others))
    leader!.pump()
  },
}

function proposeMembershipChange(cluster: SimCluster, rng: Rng): void {
  const leader = cluster.currentLeader()
  const raft = leader?.raft
  if (raft == null) return
  const { voters, learners } = raft.status().conf
  const outside = cluster.ids.filter((id) => !voters.includes(id) && !learners.includes(id))
  try {
    if (learners.length > 0 && rng.chance(0.6)) raft.proposeConfChange({ type: ConfChangeType.PromoteLearner, nodeId: rng.pick(learners) })
    else if (outside.length > 0 && (voters.length <= cluster.ids.length / 2 || rng.chance(0.5))) {
      raft.proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: rng.pick(outside) })
    } else if (voters.length >= 3) {
      // Not below two voters: a removal from two can strand the survivor (as etcd documents).
      raft.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: rng.pick(voters) })
    }
    leader!.pump()
  } catch {
    // Refused (a change in progress, a learner not caught up): the core said no, nothing changed.
  }
}

function crashAndRestartLater(cluster: SimCluster, rng: Rng, id: NodeId): void {
  const node = cluster.node(id)
  if (!node.alive) return
  node.crash()
  cluster.queue.schedule(20 + rng.next() * 600, () => {
    if (!node.alive) node.start()
  })
}

const weights: [string, number][] = [
  ['crashRandom', 3], ['crashLeader', 2], ['isolateMinority', 2], ['isolateLeader', 2], ['splitRandom', 1],
  ['oneWay', 1], ['heal', 4], ['flakyNetwork', 2], ['calmNetwork', 2], ['changeMembership', 3], ['transferLeadership', 1],
]
const totalWeight = weights.reduce((sum, [, w]) => sum + w, 0)

function pickAction(rng: Rng): string {
  let roll = rng.next() * totalWeight
  for (const [name, w] of weights) {
    roll -= w
    if (roll < 0) return name
  }
  return 'heal'
}

/** Inject a fault every 10..`meanGapMs`*2 ms of virtual time until `untilMs`. */
export function startNemesis(cluster: SimCluster, rng: Rng, untilMs: number, meanGapMs: number): NemesisStats {
  const stats: NemesisStats = { actions: {} }
  const next = (): void => {
    if (cluster.now >= untilMs) return
    const name = pickAction(rng)
    actions[name]!(cluster, rng)
    stats.actions[name] = (stats.actions[name] ?? 0) + 1
    cluster.queue.schedule(10 + rng.next() * 2 * meanGapMs, next)
  }
  cluster.queue.schedule(50 + rng.next() * 200, next)
  return stats
}

/** End of the fault phase: a whole, reliable network and every node running. */
export function healEverything(cluster: SimCluster): void {
  cluster.network.heal()
  cluster.network.faults = { dropProbability: 0, duplicateProbability: 0, delayMinMs: 0.2, delayMaxMs: 2, longDelayProbability: 0, longDelayMaxMs: 0 }
  for (const node of cluster.nodes.values()) if (!node.alive) node.start()
}
