// core/v1 Namespace, Node and Event, and the registry of every kind Shoal serves.
import { s } from '../api/schema.js'
import { KindRegistry, type KindDefinition } from './kind.js'
import { topLevel, type ApiObject } from './meta.js'
import { endpointsKind, serviceKind } from './network.js'
import { age } from './printing.js'
import { podKind, replicationControllerKind } from './workloads.js'
import { replicaSetKind } from './replica-set.js'
import { deploymentKind } from './deployment.js'

export const namespaceKind: KindDefinition = {
  group: '',
  version: 'v1',
  kind: 'Namespace',
  plural: 'namespaces',
  singular: 'namespace',
  shortNames: ['ns'],
  categories: [],
  namespaced: false,
  nameRule: 'label',
  schema: topLevel({ spec: s.object({ finalizers: s.array(s.string()) }), status: s.object({ phase: s.string({ enum: ['Active', 'Terminating'] }), conditions: s.array(s.any()) }) }),
  subresources: { status: true },
  fieldSelectors: ['status.phase'],
  columns: [
    { name: 'Name', type: 'string', priority: 0, description: 'Name', value: (o) => o.metadata.name ?? '' },
    { name: 'Status', type: 'string', priority: 0, description: 'Phase', value: (o) => ((o.status ?? {}) as { phase?: string }).phase ?? 'Active' },
    { name: 'Age', type: 'string', priority: 0, description: 'Time since creation', value: (o, c) => age(o.metadata.creationTimestamp, c.nowMs) },
  ],
  initialStatus: () => ({ phase: 'Active' }),
}

interface NodeView {
  spec?: { unschedulable?: boolean; taints?: { key: string; effect: string }[] }
  status?: {
    conditions?: { type: string; status: string }[]
    addresses?: { type: string; address: string }[]
    nodeInfo?: { kubeletVersion?: string; osImage?: string; kernelVersion?: string; containerRuntimeVersion?: string }
  }
}

/** STATUS of a node: Ready, NotReady or Unknown, plus SchedulingDisabled when cordoned. */
export function nodeStatusText(o: ApiObject): string {
  const { spec, status } = o as ApiObject & NodeView
  const ready = status?.conditions?.find((c) => c.type === 'Ready')
  // As kubectl prints it: anything but Ready=True is NotReady; Unknown only when there is no Ready condition.
  const text = ready === undefined ? 'Unknown' : ready.status === 'True' ? 'Ready' : 'NotReady'
  return spec?.unschedulable === true ? `${text},SchedulingDisabled` : text
}

function nodeRoles(o: ApiObject): string {
  const roles = Object.keys(o.metadata.labels ?? {})
    .filter((k) => k.startsWith('node-role.kubernetes.io/'))
    .map((k) => k.slice('node-role.kubernetes.io/'.length))
  return roles.length === 0 ? '<none>' : roles.sort().join(',')
}

function nodeAddress(o: ApiObject, type: string): string {
  return (o as ApiObject & NodeView).status?.addresses?.find((a) => a.type === type)?.address ?? '<none>'
}

const resourceList = s.map(s.quantity())

export const nodeKind: KindDefinition = {
  group: '',
  version: 'v1',
  kind: 'Node',
  plural: 'nodes',
  singular: 'node',
  shortNames: ['no'],
  categories: [],
  namespaced: false,
  nameRule: 'subdomain',
  schema: topLevel({
    spec: s.object({
      podCIDR: s.string(),
      podCIDRs: s.array(s.string()),
      providerID: s.string(),
      unschedulable: s.boolean(),
      taints: s.array(s.object({ key: s.string(), value: s.string(), effect: s.string({ enum: ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] }), timeAdded: s.string() }, ['key', 'effect'])),
    }),
    status: s.object({
      capacity: resourceList,
      allocatable: resourceList,
      phase: s.string(),
      conditions: s.array(s.object({ type: s.string(), status: s.string(), lastHeartbeatTime: s.string(), lastTransitionTime: s.string(), reason: s.string(), message: s.string() }, ['type', 'status'])),
      addresses: s.array(s.object({ type: s.string(), address: s.string() }, ['type', 'address'])),
      daemonEndpoints: s.any(),
      nodeInfo: s.map(s.string()),
      images: s.array(s.any()),
    }),
  }),
  subresources: { status: true },
  fieldSelectors: ['spec.unschedulable'],
  columns: [
    { name: 'Name', type: 'string', priority: 0, description: 'Name', value: (o) => o.metadata.name ?? '' },
    { name: 'Status', type: 'string', priority: 0, description: 'Ready condition', value: nodeStatusText },
    { name: 'Roles', type: 'string', priority: 0, description: 'Roles', value: nodeRoles },
    { name: 'Age', type: 'string', priority: 0, description: 'Time since creation', value: (o, c) => age(o.metadata.creationTimestamp, c.nowMs) },
    { name: 'Version', type: 'string', priority: 0, description: 'Peer version', value: (o) => (o as ApiObject & NodeView).status?.nodeInfo?.kubeletVersion ?? '' },
    { name: 'Internal-IP', type: 'string', priority: 1, description: 'Internal address', value: (o) => nodeAddress(o, 'InternalIP') },
    { name: 'External-IP', type: 'string', priority: 1, description: 'External address', value: (o) => nodeAddress(o, 'ExternalIP') },
    { name: 'OS-Image', type: 'string', priority: 1, description: 'OS image', value: (o) => (o as ApiObject & NodeView).status?.nodeInfo?.osImage ?? '<unknown>' },
    { name: 'Kernel-Version', type: 'string', priority: 1, description: 'Kernel', value: (o) => (o as ApiObject & NodeView).status?.nodeInfo?.kernelVersion ?? '<unknown>' },
    { name: 'Container-Runtime', type: 'string', priority: 1, description: 'Runtime', value: (o) => (o as ApiObject & NodeView).status?.nodeInfo?.containerRuntimeVersion ?? '<unknown>' },
  ],
}

interface EventView {
  involvedObject?: { kind?: string; name?: string; fieldPath?: string }
  reason?: string
  message?: string
  type?: string
  count?: number
  lastTimestamp?: string
  firstTimestamp?: string
  eventTime?: string
  source?: { component?: string; host?: string }
}

function eventField(o: ApiObject): EventView {
  return o as ApiObject & EventView
}

export const eventKind: KindDefinition = {
  group: '',
  version: 'v1',
  kind: 'Event',
  plural: 'events',
  singular: 'event',
  shortNames: ['ev'],
  categories: [],
  namespaced: true,
  nameRule: 'subdomain',
  schema: topLevel({
    involvedObject: s.object({ kind: s.string(), namespace: s.string(), name: s.string(), uid: s.string(), apiVersion: s.string(), resourceVersion: s.string(), fieldPath: s.string() }),
    reason: s.string(),
    message: s.string(),
    source: s.object({ component: s.string(), host: s.string() }),
    firstTimestamp: s.string(),
    lastTimestamp: s.string(),
    count: s.integer(),
    type: s.string(),
    eventTime: s.string(),
    series: s.any(),
    action: s.string(),
    related: s.any(),
    reportingComponent: s.string(),
    reportingInstance: s.string(),
  }),
  subresources: { status: false },
  fieldSelectors: ['involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'],
  columns: [
    { name: 'Last Seen', type: 'string', priority: 0, description: 'Time since last seen', value: (o, c) => age(eventField(o).lastTimestamp ?? eventField(o).eventTime, c.nowMs) },
    { name: 'Type', type: 'string', priority: 0, description: 'Normal or Warning', value: (o) => eventField(o).type ?? 'Normal' },
    { name: 'Reason', type: 'string', priority: 0, description: 'Reason', value: (o) => eventField(o).reason ?? '' },
    { name: 'Object', type: 'string', priority: 0, description: 'The object', value: (o) => `${(eventField(o).involvedObject?.kind ?? '').toLowerCase()}/${eventField(o).involvedObject?.name ?? ''}` },
    { name: 'Message', type: 'string', priority: 0, description: 'Message', value: (o) => eventField(o).message ?? '' },
    { name: 'Source', type: 'string', priority: 1, description: 'Source', value: (o) => [eventField(o).source?.component, eventField(o).source?.host].filter(Boolean).join(', ') },
    { name: 'Count', type: 'integer', priority: 1, description: 'Occurrences', value: (o) => eventField(o).count ?? 1 },
  ],
}

/** Every kind Shoal serves. Later issues register apps/v1 kinds here too. */
export function coreKinds(): KindRegistry {
  const registry = new KindRegistry()
  for (const kind of [namespaceKind, nodeKind, podKind, replicationControllerKind, serviceKind, endpointsKind, eventKind, replicaSetKind, deploymentKind]) registry.register(kind)
  return registry
}
