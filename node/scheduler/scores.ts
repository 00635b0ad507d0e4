// How good a feasible node is for a pod, as kube-scheduler scores it (0 to
// 100 per plugin): NodeResourcesFit's LeastAllocated (the
// average free fraction of CPU and memory once the pod is added) and the
// spreading of a controller's pods (SelectorSpread's normalisation: a node
// with fewer of them scores higher). The total is a weighted sum; plan.ts
// gives equal totals to the node whose name sorts first (kube-scheduler picks
// at random), so placements are reproducible.
import type { NodeFacts, PodFacts } from './snapshot.js'

export const maxNodeScore = 100

/** Spreading weighs twice resource balance, as PodTopologySpread's default weight does against NodeResourcesFit's. */
export const scoreWeights = { leastAllocated: 1, spread: 2 } as const

/** leastRequestedScore: the free share of one resource, 0 when the node has none or would be overcommitted. */
function leastRequested(requested: number, capacity: number): number {
  if (capacity <= 0 || requested > capacity) return 0
  return Math.floor(((capacity - requested) * maxNodeScore) / capacity)
}

/** LeastAllocated over CPU and memory (weight 1 each), counting the pod itself. */
export function leastAllocatedScore(pod: PodFacts, node: NodeFacts): number {
  const cpu = leastRequested(node.scoreRequested.milliCpu + pod.scoreRequests.milliCpu, node.allocatable.milliCpu)
  const memory = leastRequested(node.scoreRequested.memory + pod.scoreRequests.memory, node.allocatable.memory)
  return Math.floor((cpu + memory) / 2)
}

/**
 * SelectorSpread: `count` pods of the pod's controller on this node, at most
 * `maxCount` on any feasible node. A pod without a controller spreads nothing:
 * every node scores the maximum. Unlike SelectorSpread the score keeps its
 * fraction: truncated, one pod more on a node stops counting past 100 pods a
 * node (100 / 101 is 0), and big controllers would pile onto the first name.
 */
export function spreadScore(count: number, maxCount: number): number {
  if (maxCount <= 0) return maxNodeScore
  return (maxNodeScore * (maxCount - count)) / maxCount
}

export function totalScore(leastAllocated: number, spread: number): number {
  return leastAllocated * scoreWeights.leastAllocated + spread * scoreWeights.spread
}
