// One scheduling pass over every pending pod, in a stable order (creation
// time, then name): each pod goes to its best feasible node, and that node's
// usage and its count of the pod's controller go up before the next pod is
// placed, so a batch of replicas spreads within one pass rather than piling
// onto the node that looked emptiest at the start. Pure: the controller turns
// the result into writes.
import type { ApiObject } from '../kinds/meta.js'
import { fitsUsage, passesStatic, whyNot } from './filters.js'
import { leastAllocatedScore, spreadScore, totalScore } from './scores.js'
import { addPod, isFinished, nodeFacts, podFacts, podSpec, type NodeFacts, type PodFacts } from './snapshot.js'

export interface Binding {
  pod: ApiObject
  nodeName: string
}

export interface Unschedulable {
  pod: ApiObject
  /** The FailedScheduling message: `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were unschedulable.` */
  message: string
}

export interface Plan {
  bindings: Binding[]
  unschedulable: Unschedulable[]
}

/** What kube-scheduler says when there is no node at all. */
export const noNodesMessage = 'no nodes available to schedule pods'

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Oldest first; pods created in the same second by name, then namespace. */
export function pendingOrder(a: ApiObject, b: ApiObject): number {
  return (
    compareText(a.metadata.creationTimestamp ?? '', b.metadata.creationTimestamp ?? '') ||
    compareText(a.metadata.name ?? '', b.metadata.name ?? '') ||
    compareText(a.metadata.namespace ?? '', b.metadata.namespace ?? '')
  )
}

/** Pods of each controller (by uid) on each node (by index). */
class SpreadCounts {
  private readonly byController = new Map<string, Int32Array>()

  constructor(private readonly nodeCount: number) {}

  of(pod: PodFacts): Int32Array | undefined {
    return pod.controllerUid === null ? undefined : this.byController.get(pod.controllerUid)
  }

  add(pod: PodFacts, nodeIndex: number): void {
    if (pod.controllerUid === null) return
    let counts = this.byController.get(pod.controllerUid)
    if (counts === undefined) this.byController.set(pod.controllerUid, (counts = new Int32Array(this.nodeCount)))
    counts[nodeIndex]! += 1
  }
}

/**
 * Bind `pendingPods` onto `nodes`, given the pods already bound (those on no
 * known node, and finished ones, hold nothing).
 */
export function planBindings(nodes: readonly ApiObject[], boundPods: readonly ApiObject[], pendingPods: readonly ApiObject[]): Plan {
  const facts = nodes.map(nodeFacts).sort((a, b) => compareText(a.name, b.name))
  const indexOf = new Map(facts.map((n, k) => [n.name, k]))
  const spread = new SpreadCounts(facts.length)
  for (const pod of boundPods) {
    const k = indexOf.get(podSpec(pod).nodeName ?? '')
    if (k === undefined || isFinished(pod)) continue
    const f = podFacts(pod)
    addPod(facts[k]!, f)
    spread.add(f, k)
  }
  const plan: Plan = { bindings: [], unschedulable: [] }
  const round = new RoundCaches(facts)
  for (const pod of [...pendingPods].sort(pendingOrder)) {
    const f = podFacts(pod)
    const k = round.knownToFail(f) ? null : place(f, facts, round.staticMask(f), spread.of(f), round.feasible)
    if (k === null) {
      plan.unschedulable.push({ pod, message: round.failure(f, plan.bindings.length) })
      continue
    }
    addPod(facts[k]!, f)
    spread.add(f, k)
    plan.bindings.push({ pod, nodeName: facts[k]!.name })
  }
  return plan
}

/**
 * What a round learns once and reuses for pods that ask the same (replicas of
 * one template): which nodes pass the static filters for a selector and
 * tolerations, and which requests already failed. A failure stays a failure
 * for the rest of the round, since placing pods only uses nodes up; its
 * message is worked out again only once more pods were placed.
 */
class RoundCaches {
  private readonly masks = new Map<string, Uint8Array>()
  private readonly failures = new Map<string, { message: string; bindings: number }>()
  /** Scratch space for place(): one slot per node. */
  readonly feasible: Int32Array

  constructor(private readonly nodes: readonly NodeFacts[]) {
    this.feasible = new Int32Array(nodes.length)
  }

  private static staticKey(pod: PodFacts): string {
    return JSON.stringify([pod.nodeSelector, pod.tolerations])
  }

  private static requestKey(pod: PodFacts): string {
    return `${RoundCaches.staticKey(pod)}|${pod.requests.milliCpu}|${pod.requests.memory}|${JSON.stringify(pod.hostPorts)}`
  }

  /** 1 for each node that passes the static filters. */
  staticMask(pod: PodFacts): Uint8Array {
    const key = RoundCaches.staticKey(pod)
    let mask = this.masks.get(key)
    if (mask === undefined) this.masks.set(key, (mask = Uint8Array.from(this.nodes, (node) => (passesStatic(pod, node) ? 1 : 0))))
    return mask
  }

  knownToFail(pod: PodFacts): boolean {
    return this.failures.has(RoundCaches.requestKey(pod))
  }

  /** The FailedScheduling message for a pod that fits nowhere, `bindings` pods into the round. */
  failure(pod: PodFacts, bindings: number): string {
    const key = RoundCaches.requestKey(pod)
    const known = this.failures.get(key)
    if (known !== undefined && known.bindings === bindings) return known.message
    const message = failureMessage(pod, this.nodes)
    this.failures.set(key, { message, bindings })
    return message
  }
}

/** The index of the best feasible node, or null. `feasible` is scratch space, one slot per node. */
function place(pod: PodFacts, nodes: readonly NodeFacts[], staticMask: Uint8Array, counts: Int32Array | undefined, feasible: Int32Array): number | null {
  let feasibleCount = 0
  let maxCount = 0
  for (let k = 0; k < nodes.length; k++) {
    if (staticMask[k] === 0 || !fitsUsage(pod, nodes[k]!)) continue
    feasible[feasibleCount++] = k
    if (counts !== undefined && counts[k]! > maxCount) maxCount = counts[k]!
  }
  let bestIndex = -1
  let bestScore = -1
  // Nodes are in name order and only a strictly higher score wins: ties go to the first name.
  for (let j = 0; j < feasibleCount; j++) {
    const k = feasible[j]!
    const score = totalScore(leastAllocatedScore(pod, nodes[k]!), spreadScore(counts?.[k] ?? 0, maxCount))
    if (score > bestScore) {
      bestScore = score
      bestIndex = k
    }
  }
  return bestIndex < 0 ? null : bestIndex
}

/** FitError.Error(): each reason with the number of nodes that gave it, sorted as strings (count first, as Go's sort.Strings does). */
export function failureMessage(pod: PodFacts, nodes: readonly NodeFacts[]): string {
  if (nodes.length === 0) return noNodesMessage
  const counts = new Map<string, number>()
  for (const node of nodes) for (const reason of whyNot(pod, node) ?? []) counts.set(reason, (counts.get(reason) ?? 0) + 1)
  const histogram = [...counts].map(([reason, n]) => `${n} ${reason}`).sort()
  return `0/${nodes.length} nodes are available: ${histogram.join(', ')}.`
}
