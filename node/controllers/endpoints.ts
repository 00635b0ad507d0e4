// The Endpoints controller, run by the leader: for every Service with a
// selector, an Endpoints object of the same name listing the matching pods
// that have an IP (ready ones in `addresses`, the others in
// `notReadyAddresses`), with the target ports resolved per pod, grouped as
// Kubernetes' RepackSubsets groups them (pods offering the same ports share a
// subset). Endpoints it made carry an annotation, so it deletes them when the
// Service goes or loses its selector, and leaves Endpoints users manage alone.
import { prepareCreate } from '../api/prepare.js'
import { matches, selectorFromMap } from '../api/selectors.js'
import type { KindDefinition } from '../kinds/kind.js'
import type { ApiObject } from '../kinds/meta.js'
import { refOf, type StoreCommand } from '../store/commands.js'
import type { ControlContext } from '../control/controllers.js'
import type { Controller } from '../control/leader-loop.js'
import { submitInBatches } from './batches.js'
import { podsByNamespace } from './store-scan.js'

/** Marks the Endpoints this controller manages (Kubernetes has no such mark; it owns every Endpoints of a selector Service). */
export const managedByAnnotation = 'shoal.io/managed-by'
export const managedByValue = 'endpoints-controller'
/** Kubernetes labels the Endpoints of a headless Service so. */
const headlessLabel = 'service.kubernetes.io/headless'

interface ServicePortView {
  name?: string
  port: number
  targetPort?: number | string
  protocol?: string
  appProtocol?: string
}

export type ServiceObject = ApiObject & {
  spec?: { selector?: Record<string, string>; ports?: ServicePortView[]; clusterIP?: string; publishNotReadyAddresses?: boolean }
}

interface ContainerPortView {
  name?: string
  containerPort: number
  protocol?: string
}

export type EndpointsPod = ApiObject & {
  spec?: { nodeName?: string; hostname?: string; subdomain?: string; restartPolicy?: string; containers?: { ports?: ContainerPortView[] }[] }
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] }
}

export interface EndpointAddress {
  ip: string
  hostname?: string
  nodeName?: string
  targetRef: { kind: 'Pod'; name: string; namespace: string; uid: string }
}

export interface EndpointPort {
  name?: string
  port: number
  protocol: string
  appProtocol?: string
}

export interface EndpointSubset {
  addresses?: EndpointAddress[]
  notReadyAddresses?: EndpointAddress[]
  ports?: EndpointPort[]
}

export type EndpointsObject = ApiObject & { subsets?: EndpointSubset[] }

export function hasSelector(service: ServiceObject): boolean {
  return Object.keys(service.spec?.selector ?? {}).length > 0
}

export function isManaged(endpoints: ApiObject): boolean {
  return endpoints.metadata.annotations?.[managedByAnnotation] === managedByValue
}

/** Kubernetes' ShouldPodBeInEndpoints: it has an IP, is not being deleted, and will not stay finished. */
export function shouldPodBeInEndpoints(pod: EndpointsPod): boolean {
  if ((pod.status?.podIP ?? '') === '') return false
  if (pod.metadata.deletionTimestamp !== undefined) return false
  const phase = pod.status?.phase
  if (pod.spec?.restartPolicy === 'Never') return phase !== 'Failed' && phase !== 'Succeeded'
  if (pod.spec?.restartPolicy === 'OnFailure') return phase !== 'Succeeded'
  return true
}

/** Kubernetes' FindPort: a number as it is, a name through the pod's container ports of the same protocol; undefined when the pod has none. */
export function findPort(pod: EndpointsPod, servicePort: ServicePortView): number | undefined {
  const target = servicePort.targetPort ?? servicePort.port
  if (typeof target === 'number') return target
  const protocol = servicePort.protocol ?? 'TCP'
  for (const container of pod.spec?.containers ?? []) {
    for (const p of container.ports ?? []) if (p.name === target && (p.protocol ?? 'TCP') === protocol) return p.containerPort
  }
  return undefined
}

function isReady(pod: EndpointsPod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
}

function addressOf(service: ServiceObject, pod: EndpointsPod): EndpointAddress {
  const address: EndpointAddress = { ip: pod.status?.podIP ?? '', targetRef: { kind: 'Pod', name: pod.metadata.name ?? '', namespace: pod.metadata.namespace ?? '', uid: pod.metadata.uid ?? '' } }
  if (pod.spec?.hostname !== undefined && pod.spec.subdomain === service.metadata.name) address.hostname = pod.spec.hostname
  if ((pod.spec?.nodeName ?? '') !== '') address.nodeName = pod.spec?.nodeName
  return address
}

function endpointPortOf(servicePort: ServicePortView, port: number): EndpointPort {
  return {
    ...((servicePort.name ?? '') === '' ? {} : { name: servicePort.name }),
    port,
    protocol: servicePort.protocol ?? 'TCP',
    ...(servicePort.appProtocol === undefined ? {} : { appProtocol: servicePort.appProtocol }),
  }
}

/**
 * How `service`'s ports resolve: numbers once for every pod, names per pod.
 * In name order (a Service's port names are unique), so a pod's resolved
 * ports come out sorted and pods offering the same ports share one key.
 */
function portResolver(service: ServiceObject): (pod: EndpointsPod) => { ports: EndpointPort[]; key: string } | null {
  const servicePorts = [...(service.spec?.ports ?? [])].sort((a, b) => compare(a.name ?? '', b.name ?? '') || a.port - b.port)
  if (servicePorts.length === 0) {
    // A headless Service without ports lists its pods with no ports; one with a cluster IP lists nothing.
    const none = { ports: [], key: '' }
    return () => (service.spec?.clusterIP === 'None' ? none : null)
  }
  const fixed = servicePorts.map((sp) => (typeof (sp.targetPort ?? sp.port) === 'number' ? endpointPortOf(sp, Number(sp.targetPort ?? sp.port)) : null))
  if (fixed.every((p) => p !== null)) {
    const all = { ports: fixed as EndpointPort[], key: (fixed as EndpointPort[]).map(portKey).join('\u0002') }
    return () => all
  }
  return (pod) => {
    const ports: EndpointPort[] = []
    servicePorts.forEach((sp, k) => {
      const number = fixed[k]?.port ?? findPort(pod, sp)
      if (number !== undefined) ports.push(fixed[k] ?? endpointPortOf(sp, number))
    })
    return ports.length === 0 ? null : { ports, key: ports.map(portKey).join('\u0002') }
  }
}

/** The subsets `service` should have, from the pods of its namespace. */
export function desiredSubsets(service: ServiceObject, pods: readonly EndpointsPod[]): EndpointSubset[] {
  const selector = selectorFromMap(service.spec?.selector)
  const tolerateUnready = service.spec?.publishNotReadyAddresses === true
  const resolve = portResolver(service)
  const groups = new Map<string, { ports: EndpointPort[]; ready: EndpointAddress[]; notReady: EndpointAddress[] }>()
  for (const pod of pods) {
    if (pod.metadata.namespace !== service.metadata.namespace || !matches(selector, pod.metadata.labels) || !shouldPodBeInEndpoints(pod)) continue
    const resolved = resolve(pod)
    if (resolved === null) continue
    let group = groups.get(resolved.key)
    if (group === undefined) groups.set(resolved.key, (group = { ports: resolved.ports, ready: [], notReady: [] }))
    ;(tolerateUnready || isReady(pod) ? group.ready : group.notReady).push(addressOf(service, pod))
  }
  return normalizeSubsets([...groups.values()].map((g) => ({ addresses: g.ready, notReadyAddresses: g.notReady, ports: g.ports })))
}

function portOrder(a: EndpointPort, b: EndpointPort): number {
  return compare(a.name ?? '', b.name ?? '') || a.port - b.port || compare(a.protocol, b.protocol)
}

function addressOrder(a: EndpointAddress, b: EndpointAddress): number {
  return compare(a.ip, b.ip) || compare(a.targetRef?.uid ?? '', b.targetRef?.uid ?? '')
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function portKey(p: EndpointPort): string {
  return `${p.name ?? ''}\u0001${p.port}\u0001${p.protocol}\u0001${p.appProtocol ?? ''}`
}

function addressKey(a: EndpointAddress): string {
  const t = a.targetRef
  return `${a.ip}\u0001${a.hostname ?? ''}\u0001${a.nodeName ?? ''}\u0001${t === undefined ? '' : `${t.kind}/${t.namespace}/${t.name}/${t.uid}`}`
}

/** One string for a subset's content (what this controller writes: ips, names, node names, target refs, ports), to compare and order by. */
function subsetKey(s: EndpointSubset): string {
  return [(s.addresses ?? []).map(addressKey).join('\u0002'), (s.notReadyAddresses ?? []).map(addressKey).join('\u0002'), (s.ports ?? []).map(portKey).join('\u0002')].join('\u0003')
}

/** Subsets in one order (addresses by ip, ports by name, subsets by content), empty lists left out as Kubernetes' JSON leaves them out. */
export function normalizeSubsets(subsets: readonly EndpointSubset[] | undefined): EndpointSubset[] {
  const keyed = (subsets ?? []).flatMap((s) => {
    const subset: EndpointSubset = {}
    if ((s.addresses ?? []).length > 0) subset.addresses = [...s.addresses!].sort(addressOrder)
    if ((s.notReadyAddresses ?? []).length > 0) subset.notReadyAddresses = [...s.notReadyAddresses!].sort(addressOrder)
    if ((s.ports ?? []).length > 0) subset.ports = [...s.ports!].sort(portOrder)
    return subset.addresses === undefined && subset.notReadyAddresses === undefined ? [] : [{ subset, key: subsetKey(subset) }]
  })
  return keyed.sort((a, b) => compare(a.key, b.key)).map((k) => k.subset)
}

/** One string for all of `subsets`, in normalized order: equal strings, equal Endpoints. */
export function subsetsKey(subsets: readonly EndpointSubset[] | undefined): string {
  return normalizeSubsets(subsets).map(subsetKey).join('\u0004')
}

export function sameSubsets(a: readonly EndpointSubset[] | undefined, b: readonly EndpointSubset[] | undefined): boolean {
  return subsetsKey(a) === subsetsKey(b)
}

/** The Service's labels, and the headless mark for a headless Service (as Kubernetes labels its Endpoints). */
export function endpointsLabels(service: ServiceObject): Record<string, string> {
  const labels: Record<string, string> = { ...(service.metadata.labels ?? {}) }
  if (service.spec?.clusterIP === 'None') labels[headlessLabel] = ''
  return labels
}

function sameLabels(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const entries = Object.entries(a ?? {})
  return entries.length === Object.keys(b).length && entries.every(([k, v]) => b[k] === v)
}

/** Stored Endpoints whose subsets key is remembered (a cache: it only saves work). */
const storedKeysMax = 10_000

export class EndpointsController implements Controller {
  readonly name = 'endpoints'
  /** Endpoints uid -> the key of its subsets at a resourceVersion: stored Endpoints rarely change, so most rounds need not normalize them again. */
  private readonly storedKeys = new Map<string, { resourceVersion: string; key: string }>()
  private readonly kinds: { service: KindDefinition; endpoints: KindDefinition; pod: KindDefinition }

  constructor(private readonly ctx: ControlContext) {
    const def = (kind: string): KindDefinition => {
      const d = ctx.kinds.byKind('v1', kind)
      if (d === undefined) throw new Error(`the ${kind} kind is not registered`)
      return d
    }
    this.kinds = { service: def('Service'), endpoints: def('Endpoints'), pod: def('Pod') }
  }

  async round(): Promise<void> {
    const commands = this.changes()
    // A conflict or a failed entry is retried by the next round.
    if (commands.length > 0) await submitInBatches(this.ctx.submitter, commands)
  }

  /** The writes that bring every Endpoints in line with its Service; none when all are. */
  changes(): StoreCommand[] {
    const { store } = this.ctx
    const key = (o: ApiObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`
    const services = new Map((store.list(this.kinds.service) as ServiceObject[]).map((s) => [key(s), s]))
    const endpoints = new Map((store.list(this.kinds.endpoints) as EndpointsObject[]).map((e) => [key(e), e]))
    // The one pass over the pods, only when a Service needs them.
    const pods = [...services.values()].some(hasSelector) ? podsByNamespace<EndpointsPod>(store) : new Map<string, EndpointsPod[]>()
    const commands: StoreCommand[] = []
    for (const [k, service] of services) {
      if (!hasSelector(service)) continue
      const command = this.sync(service, desiredSubsets(service, pods.get(service.metadata.namespace ?? '') ?? []), endpoints.get(k))
      if (command !== null) commands.push(command)
    }
    for (const [k, ep] of endpoints) {
      const service = services.get(k)
      if (isManaged(ep) && (service === undefined || !hasSelector(service))) {
        commands.push({ op: 'obj.delete', ref: refOf(ep), ...(ep.metadata.uid === undefined ? {} : { expectUid: ep.metadata.uid }), propagation: 'Background' })
      }
    }
    return commands
  }

  private sync(service: ServiceObject, subsets: EndpointSubset[], existing: EndpointsObject | undefined): StoreCommand | null {
    const labels = endpointsLabels(service)
    if (existing === undefined) {
      const body = { metadata: { name: service.metadata.name, namespace: service.metadata.namespace, ...(Object.keys(labels).length > 0 ? { labels } : {}), annotations: { [managedByAnnotation]: managedByValue } }, ...(subsets.length > 0 ? { subsets } : {}) }
      return { op: 'obj.create', object: prepareCreate(this.kinds.endpoints, body, service.metadata.namespace, 'Strict', this.ctx.nowIso()).object }
    }
    if (isManaged(existing) && this.storedKey(existing) === subsetsKey(subsets) && sameLabels(existing.metadata.labels, labels)) return null
    // A Service with a selector owns its Endpoints, as in Kubernetes: hand-made ones are taken over.
    const updated: EndpointsObject = { ...existing, metadata: { ...existing.metadata, labels, annotations: { ...(existing.metadata.annotations ?? {}), [managedByAnnotation]: managedByValue } } }
    if (Object.keys(labels).length === 0) delete updated.metadata.labels
    if (subsets.length > 0) updated.subsets = subsets
    else delete updated.subsets
    return { op: 'obj.update', object: updated, ...(existing.metadata.resourceVersion === undefined ? {} : { expectResourceVersion: existing.metadata.resourceVersion }) }
  }

  private storedKey(endpoints: EndpointsObject): string {
    const uid = endpoints.metadata.uid ?? ''
    const resourceVersion = endpoints.metadata.resourceVersion ?? ''
    const known = this.storedKeys.get(uid)
    if (known !== undefined && known.resourceVersion === resourceVersion) return known.key
    if (this.storedKeys.size >= storedKeysMax) this.storedKeys.clear()
    const key = subsetsKey(endpoints.subsets)
    this.storedKeys.set(uid, { resourceVersion, key })
    return key
  }
}
