// What the scheduler knows about nodes and pods, read out of the API objects
// once per round: quantities parsed exactly (millicores, bytes), taints,
// tolerations and host ports normalised, and each node's usage summed from
// the pods already bound to it. Filters and scores then only compare numbers.
import { quantityMilliValue, quantityValue } from '../kinds/quantity.js'
import type { ApiObject } from '../kinds/meta.js'

export interface Resources {
  milliCpu: number
  /** Bytes. */
  memory: number
}

export interface Taint {
  key: string
  value: string
  effect: string
}

export interface Toleration {
  key: string
  operator: string
  value: string
  effect: string
}

export interface HostPort {
  port: number
  protocol: string
  /** '0.0.0.0' when the pod did not name one: every address. */
  hostIP: string
}

export interface PodFacts {
  object: ApiObject
  /** What NodeResourcesFit's filter counts: the requests as written (a missing request is the limit, else 0). */
  requests: Resources
  /** What scoring counts: a container without a CPU or memory request counts Kubernetes' defaults (100m, 200Mi). */
  scoreRequests: Resources
  nodeSelector: Record<string, string>
  tolerations: Toleration[]
  hostPorts: HostPort[]
  /** The uid of the controller that owns the pod (its ownerReference with controller: true), if any. */
  controllerUid: string | null
}

export interface NodeFacts {
  name: string
  labels: Record<string, string>
  unschedulable: boolean
  /** The node's taints that keep pods off (NoSchedule and NoExecute). */
  taints: Taint[]
  /** Set unless the Ready condition is True: the taint Kubernetes' node lifecycle puts on such a node. */
  notReadyTaint: Taint | null
  allocatable: Resources & { pods: number }
  requested: Resources & { pods: number }
  scoreRequested: Resources
  /** `protocol/port` -> host IPs bound by pods on the node. */
  ports: Map<string, Set<string>>
}

/** Kubernetes' scoring defaults for a container that requests no CPU or memory (schedutil.DefaultMilliCPURequest, DefaultMemoryRequest). */
export const defaultMilliCpuRequest = 100
export const defaultMemoryRequest = 200 * 1024 * 1024

export const notReadyTaintKey = 'node.kubernetes.io/not-ready'
export const unreachableTaintKey = 'node.kubernetes.io/unreachable'
export const unschedulableTaintKey = 'node.kubernetes.io/unschedulable'

const finishedPhases = new Set(['Succeeded', 'Failed'])

type ResourceMap = Record<string, string | number>
interface ContainerView {
  resources?: { requests?: ResourceMap; limits?: ResourceMap }
  ports?: { containerPort?: number; hostPort?: number; hostIP?: string; protocol?: string }[]
}
interface PodSpecView {
  nodeName?: string
  containers?: ContainerView[]
  initContainers?: ContainerView[]
  overhead?: ResourceMap
  nodeSelector?: Record<string, string>
  tolerations?: Partial<Toleration>[]
  hostNetwork?: boolean
}
interface NodeView {
  spec?: { unschedulable?: boolean; taints?: Partial<Taint>[] }
  status?: { allocatable?: ResourceMap; conditions?: { type?: string; status?: string }[] }
}

export function podSpec(pod: ApiObject): PodSpecView {
  return (pod.spec ?? {}) as PodSpecView
}

export function podPhase(pod: ApiObject): string | undefined {
  return (pod.status as { phase?: string } | undefined)?.phase
}

/** A pod that ran to completion holds no resources. */
export function isFinished(pod: ApiObject): boolean {
  return finishedPhases.has(podPhase(pod) ?? '')
}

/** Distinct quantity texts remembered (replicas repeat the same few); past it the memo starts over. */
const quantityMemoMax = 10_000
const milliMemo = new Map<string | number, number>()
const wholeMemo = new Map<string | number, number>()

/** A quantity that does not parse counts as 0 (the API validates them; a bad one must not stop every round). */
function memoized(memo: Map<string | number, number>, parse: (q: string | number) => number, q: string | number | undefined): number {
  if (q === undefined) return 0
  let value = memo.get(q)
  if (value !== undefined) return value
  try {
    value = parse(q)
  } catch {
    value = 0
  }
  if (memo.size >= quantityMemoMax) memo.clear()
  memo.set(q, value)
  return value
}

function milli(q: string | number | undefined): number {
  return memoized(milliMemo, quantityMilliValue, q)
}

function whole(q: string | number | undefined): number {
  return memoized(wholeMemo, quantityValue, q)
}

function containerRequest(c: ContainerView, resource: string): string | number | undefined {
  return c.resources?.requests?.[resource] ?? c.resources?.limits?.[resource]
}

/** Kubernetes' pod request: the containers' sum, at least the largest init container's, plus the overhead. */
function podRequests(spec: PodSpecView, withDefaults: boolean): Resources {
  const of = (c: ContainerView): Resources => {
    const cpu = containerRequest(c, 'cpu')
    const memory = containerRequest(c, 'memory')
    return {
      milliCpu: cpu === undefined && withDefaults ? defaultMilliCpuRequest : milli(cpu),
      memory: memory === undefined && withDefaults ? defaultMemoryRequest : whole(memory),
    }
  }
  const sum: Resources = { milliCpu: 0, memory: 0 }
  for (const c of spec.containers ?? []) {
    const r = of(c)
    sum.milliCpu += r.milliCpu
    sum.memory += r.memory
  }
  for (const c of spec.initContainers ?? []) {
    const r = of(c)
    sum.milliCpu = Math.max(sum.milliCpu, r.milliCpu)
    sum.memory = Math.max(sum.memory, r.memory)
  }
  sum.milliCpu += milli(spec.overhead?.cpu)
  sum.memory += whole(spec.overhead?.memory)
  return sum
}

function hostPortsOf(spec: PodSpecView): HostPort[] {
  const out: HostPort[] = []
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    for (const p of c.ports ?? []) {
      // On the host's network a container port is a host port (Kubernetes defaults hostPort to it).
      const port = p.hostPort ?? (spec.hostNetwork === true ? p.containerPort : undefined)
      if (port === undefined || port <= 0) continue
      out.push({ port, protocol: p.protocol ?? 'TCP', hostIP: p.hostIP === undefined || p.hostIP === '' ? '0.0.0.0' : p.hostIP })
    }
  }
  return out
}

export function podFacts(pod: ApiObject): PodFacts {
  const spec = podSpec(pod)
  const controller = pod.metadata.ownerReferences?.find((o) => o.controller === true)
  return {
    object: pod,
    requests: podRequests(spec, false),
    scoreRequests: podRequests(spec, true),
    nodeSelector: spec.nodeSelector ?? {},
    tolerations: (spec.tolerations ?? []).map((t) => ({ key: t.key ?? '', operator: t.operator ?? 'Equal', value: t.value ?? '', effect: t.effect ?? '' })),
    hostPorts: hostPortsOf(spec),
    controllerUid: controller?.uid ?? null,
  }
}

export function nodeFacts(node: ApiObject): NodeFacts {
  const { spec, status } = node as ApiObject & NodeView
  const ready = status?.conditions?.find((c) => c.type === 'Ready')?.status
  const allocatable = status?.allocatable ?? {}
  return {
    name: node.metadata.name ?? '',
    labels: node.metadata.labels ?? {},
    unschedulable: spec?.unschedulable === true,
    taints: (spec?.taints ?? [])
      .map((t) => ({ key: t.key ?? '', value: t.value ?? '', effect: t.effect ?? '' }))
      .filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute'),
    notReadyTaint: ready === 'True' ? null : { key: ready === 'False' ? notReadyTaintKey : unreachableTaintKey, value: '', effect: 'NoSchedule' },
    allocatable: { milliCpu: milli(allocatable.cpu), memory: whole(allocatable.memory), pods: whole(allocatable.pods) },
    requested: { milliCpu: 0, memory: 0, pods: 0 },
    scoreRequested: { milliCpu: 0, memory: 0 },
    ports: new Map(),
  }
}

/** Count a pod against the node it is bound to (or about to be). */
export function addPod(node: NodeFacts, pod: PodFacts): void {
  node.requested.milliCpu += pod.requests.milliCpu
  node.requested.memory += pod.requests.memory
  node.requested.pods += 1
  node.scoreRequested.milliCpu += pod.scoreRequests.milliCpu
  node.scoreRequested.memory += pod.scoreRequests.memory
  for (const p of pod.hostPorts) {
    const key = `${p.protocol}/${p.port}`
    let ips = node.ports.get(key)
    if (ips === undefined) node.ports.set(key, (ips = new Set()))
    ips.add(p.hostIP)
  }
}
