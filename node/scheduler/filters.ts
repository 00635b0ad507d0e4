// Whether a pod may go on a node, as kube-scheduler's default Filter plugins
// decide it, in their order (NodeUnschedulable, TaintToleration, NodeAffinity,
// NodePorts, NodeResourcesFit), each failure worded as Kubernetes 1.32 words
// it in a FailedScheduling event. A node that is not Ready fails as it does in
// Kubernetes, through the not-ready or unreachable taint its lifecycle
// controller would have put on it; here no toleration lets a pod past it.
import { unschedulableTaintKey, type HostPort, type NodeFacts, type PodFacts, type Taint, type Toleration } from './snapshot.js'

export const reasonUnschedulable = 'node(s) were unschedulable'
export const reasonSelector = "node(s) didn't match Pod's node affinity/selector"
export const reasonPorts = "node(s) didn't have free ports for the requested pod ports"
export const reasonTooManyPods = 'Too many pods'
export const reasonCpu = 'Insufficient cpu'
export const reasonMemory = 'Insufficient memory'

export function reasonTaint(taint: Taint): string {
  return `node(s) had untolerated taint {${taint.key}: ${taint.value}}`
}

/** One filter: null when the node passes, else why not (one reason, or several for resources). */
export type Filter = (pod: PodFacts, node: NodeFacts) => string[] | null

/** v1.Toleration.ToleratesTaint. */
export function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect !== '' && t.effect !== taint.effect) return false
  if (t.key !== '' && t.key !== taint.key) return false
  if (t.operator === 'Exists') return true
  if (t.operator === 'Equal' || t.operator === '') return t.value === taint.value
  return false
}

function tolerated(pod: PodFacts, taint: Taint): boolean {
  return pod.tolerations.some((t) => tolerates(t, taint))
}

export const unschedulableFilter: Filter = (pod, node) => {
  if (!node.unschedulable) return null
  // A pod that tolerates the unschedulable taint may still go there (DaemonSet pods do).
  return tolerated(pod, { key: unschedulableTaintKey, value: '', effect: 'NoSchedule' }) ? null : [reasonUnschedulable]
}

export const taintFilter: Filter = (pod, node) => {
  const untolerated = node.taints.find((taint) => !tolerated(pod, taint))
  if (untolerated !== undefined) return [reasonTaint(untolerated)]
  return node.notReadyTaint === null ? null : [reasonTaint(node.notReadyTaint)]
}

export const selectorFilter: Filter = (pod, node) => {
  for (const key in pod.nodeSelector) if (node.labels[key] !== pod.nodeSelector[key]) return [reasonSelector]
  return null
}

/** HostPortInfo.CheckConflict: the same protocol and port on the same address, or on 0.0.0.0 (every address). */
export function portConflicts(used: ReadonlyMap<string, ReadonlySet<string>>, p: HostPort): boolean {
  const ips = used.get(`${p.protocol}/${p.port}`)
  if (ips === undefined || ips.size === 0) return false
  return p.hostIP === '0.0.0.0' || ips.has(p.hostIP) || ips.has('0.0.0.0')
}

export const portsFilter: Filter = (pod, node) => (pod.hostPorts.some((p) => portConflicts(node.ports, p)) ? [reasonPorts] : null)

/** NodeResourcesFit's fitsRequest: the pod count, then CPU and memory against allocatable minus what is bound. */
export const resourcesFilter: Filter = (pod, node) => {
  const reasons: string[] = []
  if (node.requested.pods + 1 > node.allocatable.pods) reasons.push(reasonTooManyPods)
  const { milliCpu, memory } = pod.requests
  if (milliCpu > 0 && milliCpu > node.allocatable.milliCpu - node.requested.milliCpu) reasons.push(reasonCpu)
  if (memory > 0 && memory > node.allocatable.memory - node.requested.memory) reasons.push(reasonMemory)
  return reasons.length === 0 ? null : reasons
}

/** Filters that depend on the node alone, not on what is bound to it: their verdict holds for a whole round. */
export const staticFilters: readonly Filter[] = [unschedulableFilter, taintFilter, selectorFilter]
/** Filters on what is bound to the node, which changes as a round places pods. */
export const usageFilters: readonly Filter[] = [portsFilter, resourcesFilter]
/** In kube-scheduler's order (the static ones come first there too): a node is reported by the first filter it fails. */
export const filters: readonly Filter[] = [...staticFilters, ...usageFilters]

/** The usage filters' verdict without building reasons: the hot path of a round. */
export function fitsUsage(pod: PodFacts, node: NodeFacts): boolean {
  const { requested, allocatable } = node
  if (requested.pods + 1 > allocatable.pods) return false
  const { milliCpu, memory } = pod.requests
  if (milliCpu > 0 && milliCpu > allocatable.milliCpu - requested.milliCpu) return false
  if (memory > 0 && memory > allocatable.memory - requested.memory) return false
  for (const p of pod.hostPorts) if (portConflicts(node.ports, p)) return false
  return true
}

/** Whether the node passes the static filters. */
export function passesStatic(pod: PodFacts, node: NodeFacts): boolean {
  for (const f of staticFilters) if (f(pod, node) !== null) return false
  return true
}

/** Why the pod cannot go on the node, or null when it can. */
export function whyNot(pod: PodFacts, node: NodeFacts): string[] | null {
  for (const f of filters) {
    const reasons = f(pod, node)
    if (reasons !== null) return reasons
  }
  return null
}
