// core/v1 Service and Endpoints.
import { s, type FieldCause } from '../api/schema.js'
import type { KindDefinition } from './kind.js'
import { dns1123Label, dns1123LabelHint, topLevel, type ApiObject } from './meta.js'
import { age, renderLabelMap } from './printing.js'
import { allocateService } from './service-allocation.js'

interface ServicePort {
  name?: string
  port?: number
  targetPort?: number | string
  nodePort?: number
  protocol?: string
}

interface ServiceView {
  spec?: { type?: string; clusterIP?: string; externalIPs?: string[]; ports?: ServicePort[]; selector?: Record<string, string>; sessionAffinity?: string }
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } }
}

/** PORT(S) as kubectl shows it: 80:30001/TCP,443/TCP. */
export function servicePortsText(o: ApiObject): string {
  const ports = (o as ApiObject & ServiceView).spec?.ports ?? []
  if (ports.length === 0) return '<none>'
  return ports.map((p) => `${p.port}${p.nodePort !== undefined ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`).join(',')
}

function externalIpText(o: ApiObject): string {
  const { spec, status } = o as ApiObject & ServiceView
  const ips = [...(spec?.externalIPs ?? []), ...(status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? i.hostname ?? '')]
  if (ips.length > 0) return ips.join(',')
  return spec?.type === 'LoadBalancer' ? '<pending>' : '<none>'
}

function validateService(o: ApiObject): FieldCause[] {
  const { spec } = o as ApiObject & ServiceView
  const causes: FieldCause[] = []
  const ports = spec?.ports ?? []
  // Headless and ExternalName services may have no ports (`kubectl create service externalname` sends none).
  if (ports.length === 0 && spec?.clusterIP !== 'None' && spec?.type !== 'ExternalName') causes.push({ reason: 'FieldValueRequired', field: 'spec.ports', message: 'Required value' })
  const names = new Set<string>()
  const nodePorts = new Set<string>()
  ports.forEach((p, k) => {
    const nodePortKey = `${p.nodePort}/${p.protocol ?? 'TCP'}`
    if (p.nodePort !== undefined && nodePorts.has(nodePortKey)) causes.push({ reason: 'FieldValueDuplicate', field: `spec.ports[${k}].nodePort`, message: `Duplicate value: ${p.nodePort}` })
    if (p.nodePort !== undefined) nodePorts.add(nodePortKey)
    if (ports.length > 1 && (p.name === undefined || p.name === '')) causes.push({ reason: 'FieldValueRequired', field: `spec.ports[${k}].name`, message: 'Required value' })
    if (p.name !== undefined && names.has(p.name)) causes.push({ reason: 'FieldValueDuplicate', field: `spec.ports[${k}].name`, message: `Duplicate value: "${p.name}"` })
    if (p.name !== undefined) names.add(p.name)
    if (p.nodePort !== undefined && spec?.type !== 'NodePort' && spec?.type !== 'LoadBalancer') {
      causes.push({ reason: 'FieldValueForbidden', field: `spec.ports[${k}].nodePort`, message: 'Forbidden: may not be used when `type` is \'ClusterIP\'' })
    }
  })
  return causes
}

const servicePort = s.object(
  {
    name: s.string({ pattern: dns1123Label, patternHint: dns1123LabelHint, maxLength: 63 }),
    protocol: s.string({ enum: ['TCP', 'UDP', 'SCTP'] }),
    appProtocol: s.string(),
    port: s.integer({ minimum: 1, maximum: 65535 }),
    targetPort: s.intOrString(),
    nodePort: s.integer({ minimum: 1, maximum: 65535 }),
  },
  ['port'],
)

export const serviceKind: KindDefinition = {
  group: '',
  version: 'v1',
  kind: 'Service',
  plural: 'services',
  singular: 'service',
  shortNames: ['svc'],
  categories: ['all'],
  namespaced: true,
  nameRule: 'label',
  schema: topLevel({
    spec: s.object({
      type: s.string({ enum: ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] }),
      ports: s.array(servicePort),
      selector: s.map(s.string()),
      clusterIP: s.string(),
      clusterIPs: s.array(s.string()),
      externalIPs: s.array(s.string()),
      externalName: s.string(),
      sessionAffinity: s.string({ enum: ['None', 'ClientIP'] }),
      sessionAffinityConfig: s.any(),
      externalTrafficPolicy: s.string(),
      internalTrafficPolicy: s.string(),
      ipFamilies: s.array(s.string()),
      ipFamilyPolicy: s.string(),
      loadBalancerIP: s.string(),
      loadBalancerSourceRanges: s.array(s.string()),
      publishNotReadyAddresses: s.boolean(),
      healthCheckNodePort: s.integer(),
      allocateLoadBalancerNodePorts: s.boolean(),
    }),
    status: s.object({ loadBalancer: s.any(), conditions: s.array(s.any()) }),
  }),
  subresources: { status: true },
  fieldSelectors: ['spec.clusterIP', 'spec.type'],
  columns: [
    { name: 'Name', type: 'string', priority: 0, description: 'Name', value: (o) => o.metadata.name ?? '' },
    { name: 'Type', type: 'string', priority: 0, description: 'Service type', value: (o) => (o as ApiObject & ServiceView).spec?.type ?? 'ClusterIP' },
    { name: 'Cluster-IP', type: 'string', priority: 0, description: 'The virtual IP', value: (o) => (o as ApiObject & ServiceView).spec?.clusterIP ?? '<none>' },
    { name: 'External-IP', type: 'string', priority: 0, description: 'External addresses', value: externalIpText },
    { name: 'Port(s)', type: 'string', priority: 0, description: 'Ports', value: servicePortsText },
    { name: 'Age', type: 'string', priority: 0, description: 'Time since creation', value: (o, c) => age(o.metadata.creationTimestamp, c.nowMs) },
    { name: 'Selector', type: 'string', priority: 1, description: 'Selector', value: (o) => renderLabelMap((o as ApiObject & ServiceView).spec?.selector) },
  ],
  defaults: (o) => {
    const spec = ((o.spec ??= {}) as NonNullable<ServiceView['spec']> & Record<string, unknown>)
    spec.type ??= 'ClusterIP'
    spec.sessionAffinity ??= 'None'
    for (const p of spec.ports ?? []) {
      p.protocol ??= 'TCP'
      p.targetPort ??= p.port
    }
  },
  validate: validateService,
  allocate: allocateService,
}

const endpointAddress = s.object({ ip: s.string(), hostname: s.string(), nodeName: s.string(), targetRef: s.any() }, ['ip'])
const endpointPort = s.object({ name: s.string(), port: s.integer({ minimum: 1, maximum: 65535 }), protocol: s.string({ enum: ['TCP', 'UDP', 'SCTP'] }), appProtocol: s.string() }, ['port'])

interface EndpointsView {
  subsets?: { addresses?: { ip: string }[]; ports?: { port: number }[] }[]
}

function endpointsText(o: ApiObject): string {
  const pairs: string[] = []
  for (const subset of (o as ApiObject & EndpointsView).subsets ?? []) {
    for (const a of subset.addresses ?? []) for (const p of subset.ports ?? []) pairs.push(`${a.ip}:${p.port}`)
  }
  if (pairs.length === 0) return '<none>'
  return pairs.length > 3 ? `${pairs.slice(0, 3).join(',')} + ${pairs.length - 3} more...` : pairs.join(',')
}

export const endpointsKind: KindDefinition = {
  group: '',
  version: 'v1',
  kind: 'Endpoints',
  plural: 'endpoints',
  singular: 'endpoints',
  shortNames: ['ep'],
  categories: [],
  namespaced: true,
  nameRule: 'label',
  schema: topLevel({ subsets: s.array(s.object({ addresses: s.array(endpointAddress), notReadyAddresses: s.array(endpointAddress), ports: s.array(endpointPort) })) }),
  subresources: { status: false },
  fieldSelectors: [],
  columns: [
    { name: 'Name', type: 'string', priority: 0, description: 'Name', value: (o) => o.metadata.name ?? '' },
    { name: 'Endpoints', type: 'string', priority: 0, description: 'Endpoints', value: endpointsText },
    { name: 'Age', type: 'string', priority: 0, description: 'Time since creation', value: (o, c) => age(o.metadata.creationTimestamp, c.nowMs) },
  ],
  defaults: (o) => {
    for (const subset of (o.subsets as { ports?: { protocol?: string }[] }[] | undefined) ?? []) for (const p of subset.ports ?? []) p.protocol ??= 'TCP'
  },
}
