// What describe prints for each core kind, laid out as kubectl lays it out;
// kinds without a describer of their own get the generic field listing.
import { describeTime, metaOf, writeEvents, writeHeader, type DescribeContext, type Describer, type DescribeWriter } from './describe-common.js'
import { describeNode } from './describe-node.js'
import { describeDeployment } from './describe-deployment.js'
import { isJsonObject, type JsonObject } from './manifests.js'
import type { LabelSelector } from '../api/label-selectors.js'
import { formatLabelSelector } from '../kinds/label-selector.js'
import { resourcePath } from './resources.js'

export interface Container {
  name: string
  image?: string
  command?: string[]
  args?: string[]
  ports?: { containerPort: number; hostPort?: number; protocol?: string }[]
  env?: { name: string; value?: string; valueFrom?: Record<string, { name?: string; key?: string; fieldPath?: string; resource?: string }> }[]
  resources?: { limits?: Record<string, string>; requests?: Record<string, string> }
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[]
}

interface ContainerState {
  running?: { startedAt?: string }
  waiting?: { reason?: string; message?: string }
  terminated?: { reason?: string; exitCode?: number; startedAt?: string; finishedAt?: string; message?: string }
}

export interface ContainerStatus {
  name: string
  containerID?: string
  imageID?: string
  ready?: boolean
  restartCount?: number
  state?: ContainerState
  lastState?: ContainerState
}

export interface PodSpec {
  containers?: Container[]
  initContainers?: Container[]
  nodeName?: string
  nodeSelector?: Record<string, string>
  serviceAccountName?: string
  priority?: number
  volumes?: ({ name: string } & Record<string, unknown>)[]
  tolerations?: { key?: string; operator?: string; value?: string; effect?: string; tolerationSeconds?: number }[]
}

function writeState(w: DescribeWriter, title: string, state: ContainerState | undefined): void {
  if (state?.running !== undefined) {
    w.line(2, `${title}:`, 'Running')
    w.line(3, 'Started:', describeTime(state.running.startedAt))
  } else if (state?.waiting !== undefined) {
    w.line(2, `${title}:`, 'Waiting')
    if (state.waiting.reason !== undefined) w.line(3, 'Reason:', state.waiting.reason)
  } else if (state?.terminated !== undefined) {
    const t = state.terminated
    w.line(2, `${title}:`, 'Terminated')
    if (t.reason !== undefined) w.line(3, 'Reason:', t.reason)
    if (t.message !== undefined) w.line(3, 'Message:', t.message)
    w.line(3, 'Exit Code:', t.exitCode ?? 0)
    w.line(3, 'Started:', describeTime(t.startedAt))
    w.line(3, 'Finished:', describeTime(t.finishedAt))
  } else if (title === 'State') {
    w.line(2, `${title}:`, 'Waiting')
  }
}

function envValue(e: NonNullable<Container['env']>[number]): string {
  if (e.value !== undefined) return e.value
  const [source, ref] = Object.entries(e.valueFrom ?? {})[0] ?? []
  if (ref === undefined) return ''
  if (source === 'fieldRef') return ` (v1:${ref.fieldPath ?? ''})`
  if (source === 'resourceFieldRef') return `${ref.resource ?? ''}`
  return `<set to the key '${ref.key ?? ''}' in ${source === 'secretKeyRef' ? 'secret' : 'config map'} '${ref.name ?? ''}'>`
}

function writeResourceList(w: DescribeWriter, title: string, list: Record<string, string> | undefined): void {
  const entries = Object.entries(list ?? {}).sort(([a], [b]) => a.localeCompare(b))
  if (entries.length === 0) return
  w.line(2, `${title}:`)
  for (const [k, v] of entries) w.line(3, `${k}:`, v)
}

/** Containers: for a pod (with statuses) or a pod template (without). */
export function writeContainers(w: DescribeWriter, containers: Container[], statuses: ContainerStatus[] | null, template: boolean): void {
  w.line(template ? 1 : 0, 'Containers:')
  for (const c of containers) {
    const status = statuses?.find((s) => s.name === c.name)
    w.line(0, template ? `   ${c.name}:` : `  ${c.name}:`)
    if (status !== undefined) w.line(2, 'Container ID:', status.containerID ?? '')
    w.line(2, 'Image:', c.image ?? '')
    if (status !== undefined) w.line(2, 'Image ID:', status.imageID ?? '')
    const ports = c.ports ?? []
    w.line(2, ports.length > 1 ? 'Ports:' : 'Port:', ports.length === 0 ? '<none>' : ports.map((p) => `${p.containerPort}/${p.protocol ?? 'TCP'}`).join(', '))
    w.line(2, ports.length > 1 ? 'Host Ports:' : 'Host Port:', ports.length === 0 ? '<none>' : ports.map((p) => `${p.hostPort ?? 0}/${p.protocol ?? 'TCP'}`).join(', '))
    for (const [title, list] of [['Command', c.command], ['Args', c.args]] as const) {
      if (list === undefined || list.length === 0) continue
      w.line(2, `${title}:`)
      for (const part of list) w.line(3, part)
    }
    if (status !== undefined) {
      writeState(w, 'State', status.state)
      if (status.lastState !== undefined && Object.keys(status.lastState).length > 0) writeState(w, 'Last State', status.lastState)
      w.line(2, 'Ready:', status.ready === true ? 'True' : 'False')
      w.line(2, 'Restart Count:', status.restartCount ?? 0)
    }
    writeResourceList(w, 'Limits', c.resources?.limits)
    writeResourceList(w, 'Requests', c.resources?.requests)
    if ((c.env ?? []).length === 0) w.line(2, 'Environment:', '<none>')
    else {
      w.line(2, 'Environment:')
      for (const e of c.env!) w.line(3, `${e.name}:`, envValue(e))
    }
    if ((c.volumeMounts ?? []).length === 0) w.line(2, 'Mounts:', '<none>')
    else {
      w.line(2, 'Mounts:')
      for (const m of c.volumeMounts!) w.line(3, `${m.mountPath} from ${m.name} (${m.readOnly === true ? 'ro' : 'rw'})`)
    }
  }
}

export function writeVolumes(w: DescribeWriter, level: number, volumes: PodSpec['volumes']): void {
  if ((volumes ?? []).length === 0) return w.line(level, 'Volumes:', '<none>')
  w.line(level, 'Volumes:')
  for (const v of volumes!) {
    w.line(level + 1, `${v.name}:`)
    const [type, source] = Object.entries(v).find(([k]) => k !== 'name') ?? ['', {}]
    w.line(level + 2, 'Type:', type)
    if (isJsonObject(source)) for (const [k, value] of Object.entries(source)) w.line(level + 2, `${k}:`, typeof value === 'string' ? value : JSON.stringify(value))
  }
}

export function tolerationsText(spec: PodSpec): string[] {
  return (spec.tolerations ?? []).map((t) => {
    const base = t.operator === 'Exists' ? (t.key ?? '') + (t.effect ? `:${t.effect}` : '') + ' op=Exists' : `${t.key ?? ''}${t.value ? `=${t.value}` : ''}${t.effect ? `:${t.effect}` : ''}`
    return t.tolerationSeconds === undefined ? base : `${base} for ${t.tolerationSeconds}s`
  })
}

export function writeList(w: DescribeWriter, level: number, title: string, items: string[]): void {
  if (items.length === 0) return w.line(level, `${title}:`, '<none>')
  items.forEach((item, k) => w.line(level, k === 0 ? `${title}:` : '', item))
}

function controllerOf(o: JsonObject): string | undefined {
  const owner = (metaOf(o).ownerReferences ?? []).find((r) => r.controller === true)
  return owner === undefined ? undefined : `${owner.kind}/${owner.name}`
}

const describePod: Describer = async (ctx, o) => {
  const { w } = ctx
  const spec = (o.spec ?? {}) as PodSpec
  const status = (o.status ?? {}) as { phase?: string; reason?: string; message?: string; hostIP?: string; podIP?: string; podIPs?: { ip: string }[]; startTime?: string; qosClass?: string; conditions?: { type: string; status: string }[]; containerStatuses?: ContainerStatus[]; initContainerStatuses?: ContainerStatus[] }
  const meta = metaOf(o)
  w.line(0, 'Name:', meta.name)
  w.line(0, 'Namespace:', meta.namespace)
  if (spec.priority !== undefined) w.line(0, 'Priority:', spec.priority)
  if (spec.serviceAccountName !== undefined) w.line(0, 'Service Account:', spec.serviceAccountName)
  w.line(0, 'Node:', spec.nodeName === undefined ? '<none>' : `${spec.nodeName}/${status.hostIP ?? ''}`)
  if (status.startTime !== undefined) w.line(0, 'Start Time:', describeTime(status.startTime))
  w.map(0, 'Labels', meta.labels)
  w.map(0, 'Annotations', meta.annotations, ': ')
  w.line(0, 'Status:', meta.deletionTimestamp !== undefined ? 'Terminating' : (status.phase ?? 'Pending'))
  if (status.reason !== undefined) w.line(0, 'Reason:', status.reason)
  if (status.message !== undefined) w.line(0, 'Message:', status.message)
  w.line(0, 'IP:', status.podIP ?? '')
  if ((status.podIPs ?? []).length === 0) w.line(0, 'IPs:', '<none>')
  else {
    w.line(0, 'IPs:')
    for (const ip of status.podIPs!) w.line(1, 'IP:', ip.ip)
  }
  const controller = controllerOf(o)
  if (controller !== undefined) w.line(0, 'Controlled By:', controller)
  if ((spec.initContainers ?? []).length > 0) {
    w.line(0, 'Init Containers:')
    writeContainers(w, spec.initContainers!, status.initContainerStatuses ?? [], false)
  }
  writeContainers(w, spec.containers ?? [], status.containerStatuses ?? [], false)
  if ((status.conditions ?? []).length > 0) {
    w.line(0, 'Conditions:')
    w.line(1, 'Type', 'Status')
    for (const c of status.conditions!) w.line(1, `${c.type} `, `${c.status} `)
  }
  writeVolumes(w, 0, spec.volumes)
  w.line(0, 'QoS Class:', status.qosClass ?? '')
  w.map(0, 'Node-Selectors', spec.nodeSelector)
  writeList(w, 0, 'Tolerations', tolerationsText(spec))
  await writeEvents(ctx, o)
}

function selectorText(selector: Record<string, string> | undefined): string {
  const entries = Object.entries(selector ?? {})
  return entries.length === 0 ? '<none>' : entries.map(([k, v]) => `${k}=${v}`).join(',')
}

interface ReplicatedSpec {
  replicas?: number
  template?: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: PodSpec }
}

/** A ReplicationController or a ReplicaSet, as kubectl describes them: `selector` is the selector as text. */
async function describeReplicated(ctx: DescribeContext, o: JsonObject, selector: string, controlled: boolean): Promise<void> {
  const { w } = ctx
  const spec = (o.spec ?? {}) as ReplicatedSpec
  const status = (o.status ?? {}) as { replicas?: number; conditions?: { type: string; status: string; reason?: string }[] }
  const meta = metaOf(o)
  w.line(0, 'Name:', meta.name)
  w.line(0, 'Namespace:', meta.namespace)
  w.line(0, 'Selector:', selector)
  w.map(0, 'Labels', meta.labels)
  w.map(0, 'Annotations', meta.annotations, ': ')
  const controller = controlled ? controllerOf(o) : undefined
  if (controller !== undefined) w.line(0, 'Controlled By:', controller)
  w.line(0, 'Replicas:', `${status.replicas ?? 0} current / ${spec.replicas ?? 1} desired`)
  const phases = await podPhases(ctx, meta.namespace, meta.uid, selector)
  w.line(0, 'Pods Status:', `${phases.Running} Running / ${phases.Pending} Waiting / ${phases.Succeeded} Succeeded / ${phases.Failed} Failed`)
  w.line(0, 'Pod Template:')
  w.map(1, 'Labels', spec.template?.metadata?.labels)
  if (spec.template?.metadata?.annotations !== undefined) w.map(1, 'Annotations', spec.template.metadata.annotations, ': ')
  const podSpec = spec.template?.spec ?? {}
  writeContainers(w, podSpec.containers ?? [], null, true)
  writeVolumes(w, 1, podSpec.volumes)
  w.map(1, 'Node-Selectors', podSpec.nodeSelector)
  writeList(w, 1, 'Tolerations', tolerationsText(podSpec))
  if ((status.conditions ?? []).length > 0) {
    w.line(0, 'Conditions:')
    w.line(1, 'Type', 'Status', 'Reason')
    w.line(1, '----', '------', '------')
    for (const c of status.conditions!) w.line(1, `${c.type} `, c.status, c.reason ?? '')
  }
  await writeEvents(ctx, o)
}

const describeReplicationController: Describer = (ctx, o) => describeReplicated(ctx, o, selectorText(((o.spec ?? {}) as { selector?: Record<string, string> }).selector), false)

const describeReplicaSet: Describer = (ctx, o) => describeReplicated(ctx, o, formatLabelSelector(((o.spec ?? {}) as { selector?: LabelSelector }).selector), true)

/** The pods the selector picks that this controller owns (as kubectl counts them), by phase. */
async function podPhases(ctx: DescribeContext, namespace: string | undefined, uid: string | undefined, selector: string): Promise<Record<'Running' | 'Pending' | 'Succeeded' | 'Failed', number>> {
  const counts = { Running: 0, Pending: 0, Succeeded: 0, Failed: 0 }
  if (selector === '<none>' || selector === '<error>') return counts
  const pods = (await ctx.session.resources()).resolve('pods')
  const list = await ctx.session.json<{ items?: JsonObject[] }>(resourcePath(pods, namespace), { query: { labelSelector: selector } })
  for (const pod of list.items ?? []) {
    const owner = (metaOf(pod).ownerReferences ?? []).find((r) => r.controller === true) as { uid?: string } | undefined
    if (owner?.uid !== uid) continue
    const phase = ((pod.status ?? {}) as { phase?: string }).phase ?? 'Pending'
    if (phase in counts) counts[phase as keyof typeof counts]++
  }
  return counts
}

interface ServicePort {
  name?: string
  port: number
  targetPort?: number | string
  nodePort?: number
  protocol?: string
}

interface EndpointSubset {
  addresses?: { ip: string }[]
  notReadyAddresses?: { ip: string }[]
  ports?: { name?: string; port: number; protocol?: string }[]
}

/** ip:port of the endpoints serving one service port (by name), three at most then "+ N more...". */
function endpointsFor(subsets: EndpointSubset[], portName: string | undefined): string {
  const pairs: string[] = []
  for (const s of subsets) for (const p of s.ports ?? []) if ((p.name ?? '') === (portName ?? '')) for (const a of s.addresses ?? []) pairs.push(`${a.ip}:${p.port}`)
  if (pairs.length === 0) return '<none>'
  return pairs.length > 3 ? `${pairs.slice(0, 3).join(',')} + ${pairs.length - 3} more...` : pairs.join(',')
}

const describeService: Describer = async (ctx, o) => {
  const { w } = ctx
  const spec = (o.spec ?? {}) as { type?: string; selector?: Record<string, string>; clusterIP?: string; clusterIPs?: string[]; ipFamilies?: string[]; ipFamilyPolicy?: string; externalIPs?: string[]; ports?: ServicePort[]; sessionAffinity?: string; externalTrafficPolicy?: string }
  const meta = metaOf(o)
  writeHeader(ctx, o)
  w.line(0, 'Selector:', selectorText(spec.selector))
  w.line(0, 'Type:', spec.type ?? 'ClusterIP')
  if (spec.ipFamilyPolicy !== undefined) w.line(0, 'IP Family Policy:', spec.ipFamilyPolicy)
  w.line(0, 'IP Families:', (spec.ipFamilies ?? []).length === 0 ? '<none>' : spec.ipFamilies!.join(','))
  w.line(0, 'IP:', spec.clusterIP ?? '')
  w.line(0, 'IPs:', (spec.clusterIPs ?? []).length === 0 ? (spec.clusterIP === undefined ? '<none>' : spec.clusterIP) : spec.clusterIPs!.join(','))
  if ((spec.externalIPs ?? []).length > 0) w.line(0, 'External IPs:', spec.externalIPs!.join(','))
  let subsets: EndpointSubset[] = []
  try {
    const endpoints = (await ctx.session.resources()).resolve('endpoints')
    subsets = (await ctx.session.json<{ subsets?: EndpointSubset[] }>(resourcePath(endpoints, meta.namespace, meta.name))).subsets ?? []
  } catch (err) {
    if ((err as Error).name !== 'ServerError' && (err as Error).name !== 'UnknownResourceError') throw err
  }
  for (const p of spec.ports ?? []) {
    const proto = p.protocol ?? 'TCP'
    w.line(0, 'Port:', `${p.name ?? '<unset>'}  ${p.port}/${proto}`)
    w.line(0, 'TargetPort:', `${p.targetPort ?? p.port}/${proto}`)
    if (p.nodePort !== undefined) w.line(0, 'NodePort:', `${p.name ?? '<unset>'}  ${p.nodePort}/${proto}`)
    w.line(0, 'Endpoints:', endpointsFor(subsets, p.name))
  }
  w.line(0, 'Session Affinity:', spec.sessionAffinity ?? 'None')
  if (spec.externalTrafficPolicy !== undefined) w.line(0, 'External Traffic Policy:', spec.externalTrafficPolicy)
  await writeEvents(ctx, o)
}

const describeNamespace: Describer = (ctx, o) => {
  writeHeader(ctx, o, false)
  ctx.w.line(0, 'Status:', ((o.status ?? {}) as { phase?: string }).phase ?? 'Active')
  return Promise.resolve()
}

const describeEndpoints: Describer = async (ctx, o) => {
  const { w } = ctx
  writeHeader(ctx, o)
  w.line(0, 'Subsets:')
  for (const s of (o.subsets ?? []) as EndpointSubset[]) {
    w.line(1, 'Addresses:', (s.addresses ?? []).map((a) => a.ip).join(',') || '<none>')
    w.line(1, 'NotReadyAddresses:', (s.notReadyAddresses ?? []).map((a) => a.ip).join(',') || '<none>')
    w.line(1, 'Ports:')
    w.line(2, 'Name', 'Port', 'Protocol')
    w.line(2, '----', '----', '--------')
    for (const p of s.ports ?? []) w.line(2, p.name ?? '<unset>', p.port, p.protocol ?? 'TCP')
  }
  w.line(0, '')
  await writeEvents(ctx, o)
}

const acronyms: Record<string, string> = { api: 'API', ip: 'IP', ips: 'IPs', uid: 'UID', url: 'URL', id: 'ID', cidr: 'CIDR', dns: 'DNS', tls: 'TLS' }

/** apiVersion → API Version, involvedObject → Involved Object. */
export function fieldTitle(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[ _-]+/)
    .map((word) => acronyms[word.toLowerCase()] ?? word.charAt(0).toUpperCase() + word.slice(1))
    .join(' ')
}

function writeFields(w: DescribeWriter, level: number, value: JsonObject): void {
  for (const key of Object.keys(value).sort()) {
    const v = value[key]
    if (isJsonObject(v)) {
      w.line(level, `${fieldTitle(key)}:`)
      writeFields(w, level + 1, v)
    } else if (Array.isArray(v)) {
      w.line(level, `${fieldTitle(key)}:`)
      for (const item of v) {
        if (isJsonObject(item)) writeFields(w, level + 1, item)
        else w.line(level + 1, String(item))
      }
    } else {
      w.line(level, `${fieldTitle(key)}:`, v === null ? '<nil>' : String(v))
    }
  }
}

/** Any kind: the header, then every field (metadata without what the header showed). */
export const genericDescriber: Describer = async (ctx, o) => {
  writeHeader(ctx, o)
  const metadata = { ...((o.metadata ?? {}) as JsonObject) }
  for (const k of ['name', 'namespace', 'labels', 'annotations', 'managedFields']) delete metadata[k]
  writeFields(ctx.w, 0, { ...o, metadata })
  await writeEvents(ctx, o)
}

/** By kind, and by `Kind.group` outside the core group. */
export const describers: Record<string, Describer> = {
  Pod: describePod,
  ReplicationController: describeReplicationController,
  'ReplicaSet.apps': describeReplicaSet,
  'Deployment.apps': describeDeployment,
  Service: describeService,
  Namespace: describeNamespace,
  Endpoints: describeEndpoints,
  Node: describeNode,
}
