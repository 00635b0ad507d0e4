// describe node: the core/v1 Node as kubectl shows it, with the pods bound to
// it and what they request and limit against the node's allocatable resources.
import { humanDuration } from '../kinds/printing.js'
import { describeTime, metaOf, writeEvents, type Describer, type DescribeWriter } from './describe-common.js'
import type { JsonObject } from './manifests.js'
import { addQuantities, formatQuantity, maxQuantity, parseQuantity, percentOf, type Quantity } from './quantity.js'
import { resourcePath } from './resources.js'

interface NodeSpec {
  podCIDR?: string
  podCIDRs?: string[]
  providerID?: string
  unschedulable?: boolean
  taints?: { key: string; value?: string; effect: string }[]
}

interface NodeStatus {
  capacity?: Record<string, string>
  allocatable?: Record<string, string>
  conditions?: { type: string; status: string; lastHeartbeatTime?: string; lastTransitionTime?: string; reason?: string; message?: string }[]
  addresses?: { type: string; address: string }[]
  nodeInfo?: Record<string, string>
}

interface PodResources {
  requests?: Record<string, string>
  limits?: Record<string, string>
}

type ResourceTotals = Map<string, Quantity>

/** nodeInfo keys in the order and wording kubectl prints them. */
const systemInfoFields: [string, string][] = [
  ['machineID', 'Machine ID'],
  ['systemUUID', 'System UUID'],
  ['bootID', 'Boot ID'],
  ['kernelVersion', 'Kernel Version'],
  ['osImage', 'OS Image'],
  ['operatingSystem', 'Operating System'],
  ['architecture', 'Architecture'],
  ['containerRuntimeVersion', 'Container Runtime Version'],
  ['kubeletVersion', 'Kubelet Version'],
  ['kubeProxyVersion', 'Kube-Proxy Version'],
]

function nodeRoles(labels: Record<string, string> | undefined): string {
  const roles = new Set<string>()
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (k.startsWith('node-role.kubernetes.io/')) roles.add(k.slice('node-role.kubernetes.io/'.length))
    else if (k === 'kubernetes.io/role') roles.add(v)
  }
  return roles.size === 0 ? '<none>' : [...roles].filter((r) => r !== '').sort().join(',')
}

function writeResourceMap(w: DescribeWriter, title: string, map: Record<string, string> | undefined): void {
  w.line(0, `${title}:`)
  for (const [k, v] of Object.entries(map ?? {}).sort(([a], [b]) => a.localeCompare(b))) w.line(1, `${k}:`, v)
}

/** A pod's requests or limits: the sum over its containers, at least the largest init container's, as the scheduler counts them. */
function podTotals(pod: JsonObject, which: keyof PodResources): ResourceTotals {
  const spec = (pod.spec ?? {}) as { containers?: { resources?: PodResources }[]; initContainers?: { resources?: PodResources }[] }
  const totals: ResourceTotals = new Map()
  for (const c of spec.containers ?? []) {
    for (const [k, v] of Object.entries(c.resources?.[which] ?? {})) totals.set(k, addQuantities(totals.get(k) ?? parseQuantity('0'), parseQuantity(v)))
  }
  for (const c of spec.initContainers ?? []) {
    for (const [k, v] of Object.entries(c.resources?.[which] ?? {})) totals.set(k, maxQuantity(totals.get(k) ?? parseQuantity('0'), parseQuantity(v)))
  }
  return totals
}

function amount(totals: ResourceTotals, resource: string, allocatable: Record<string, string> | undefined): string {
  const q = totals.get(resource) ?? parseQuantity('0')
  return `${formatQuantity(q)} (${percentOf(q, parseQuantity(allocatable?.[resource] ?? '0'))}%)`
}

function sum(into: ResourceTotals, from: ResourceTotals): void {
  for (const [k, q] of from) into.set(k, addQuantities(into.get(k) ?? parseQuantity('0'), q))
}

async function nodePods(ctx: Parameters<Describer>[0], name: string): Promise<JsonObject[]> {
  const pods = (await ctx.session.resources()).resolve('pods')
  const fieldSelector = `spec.nodeName=${name},status.phase!=Succeeded,status.phase!=Failed`
  return (await ctx.session.json<{ items?: JsonObject[] }>(resourcePath(pods), { query: { fieldSelector } })).items ?? []
}

function writePods(ctx: Parameters<Describer>[0], pods: JsonObject[], allocatable: Record<string, string> | undefined): void {
  const { w } = ctx
  const requested: ResourceTotals = new Map()
  const limited: ResourceTotals = new Map()
  w.line(0, 'Non-terminated Pods:', `(${pods.length} in total)`)
  w.line(1, 'Namespace', 'Name', '', 'CPU Requests', 'CPU Limits', 'Memory Requests', 'Memory Limits', 'Age')
  w.line(1, '---------', '----', '', '------------', '----------', '---------------', '-------------', '---')
  for (const pod of pods) {
    const meta = metaOf(pod)
    const req = podTotals(pod, 'requests')
    const lim = podTotals(pod, 'limits')
    sum(requested, req)
    sum(limited, lim)
    const created = Date.parse(meta.creationTimestamp ?? '')
    const age = Number.isNaN(created) ? '<unknown>' : humanDuration(ctx.nowMs - created)
    w.line(1, meta.namespace ?? '', meta.name ?? '', '', amount(req, 'cpu', allocatable), amount(lim, 'cpu', allocatable), amount(req, 'memory', allocatable), amount(lim, 'memory', allocatable), age)
  }
  w.line(0, 'Allocated resources:')
  w.line(1, '(Total limits may be over 100 percent, i.e., overcommitted.)')
  w.line(1, 'Resource', 'Requests', 'Limits')
  w.line(1, '--------', '--------', '------')
  const extra = [...new Set([...requested.keys(), ...limited.keys()])].filter((r) => !['cpu', 'memory', 'ephemeral-storage'].includes(r)).sort()
  for (const r of ['cpu', 'memory', 'ephemeral-storage', ...extra]) w.line(1, r, amount(requested, r, allocatable), amount(limited, r, allocatable))
}

export const describeNode: Describer = async (ctx, o) => {
  const { w } = ctx
  const meta = metaOf(o)
  const spec = (o.spec ?? {}) as NodeSpec
  const status = (o.status ?? {}) as NodeStatus
  w.line(0, 'Name:', meta.name)
  w.line(0, 'Roles:', nodeRoles(meta.labels))
  w.map(0, 'Labels', meta.labels)
  w.map(0, 'Annotations', meta.annotations, ': ')
  w.line(0, 'CreationTimestamp:', describeTime(meta.creationTimestamp))
  const taints = (spec.taints ?? []).map((t) => `${t.key}${t.value === undefined || t.value === '' ? '' : `=${t.value}`}:${t.effect}`)
  if (taints.length === 0) w.line(0, 'Taints:', '<none>')
  else taints.forEach((t, k) => w.line(0, k === 0 ? 'Taints:' : '', t))
  w.line(0, 'Unschedulable:', spec.unschedulable === true ? 'true' : 'false')
  if ((status.conditions ?? []).length === 0) w.line(0, 'Conditions:', '<none>')
  else {
    w.line(0, 'Conditions:')
    w.line(1, 'Type', 'Status', 'LastHeartbeatTime', 'LastTransitionTime', 'Reason', 'Message')
    w.line(1, '----', '------', '-----------------', '------------------', '------', '-------')
    // kubectl ends each of these cells with a space, which widens the columns by one.
    for (const c of status.conditions!) w.line(1, `${c.type} `, `${c.status} `, `${describeTime(c.lastHeartbeatTime)} `, `${describeTime(c.lastTransitionTime)} `, `${c.reason ?? ''} `, c.message ?? '')
  }
  w.line(0, 'Addresses:')
  for (const a of status.addresses ?? []) w.line(1, `${a.type}:`, a.address)
  writeResourceMap(w, 'Capacity', status.capacity)
  writeResourceMap(w, 'Allocatable', status.allocatable)
  w.line(0, 'System Info:')
  for (const [key, title] of systemInfoFields) w.line(1, `${title}:`, status.nodeInfo?.[key] ?? '')
  if (spec.podCIDR !== undefined) w.line(0, 'PodCIDR:', spec.podCIDR)
  if ((spec.podCIDRs ?? []).length > 0) w.line(0, 'PodCIDRs:', spec.podCIDRs!.join(','))
  if (spec.providerID !== undefined) w.line(0, 'ProviderID:', spec.providerID)
  writePods(ctx, await nodePods(ctx, meta.name ?? ''), status.allocatable)
  await writeEvents(ctx, o)
}
