// What this peer's proxy serves, from the local replica: one entry per
// Service port with a cluster IP, its ready endpoints, and for each endpoint
// whether this peer dials it directly or through the peer that runs it. Pure,
// so it is table-tested; service-routing.ts feeds it to the proxies.
import type { ProxyEndpoint, ProxyServicePort } from '../../net/proxy-types.js'
import type { ApiObject } from '../kinds/meta.js'

interface ServicePortJson {
  name?: string
  port: number
  protocol?: string
  nodePort?: number
}

export type ServiceJson = ApiObject & {
  spec?: {
    type?: string
    clusterIP?: string
    ports?: ServicePortJson[]
    sessionAffinity?: string
    sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } }
  }
}

export type EndpointsJson = ApiObject & {
  subsets?: { addresses?: { ip: string; nodeName?: string }[]; ports?: { name?: string; port: number; protocol?: string }[] }[]
}

export interface EndpointPlacement {
  /** This peer's Node name. */
  nodeName: string
  /** Nodes whose pods this peer reaches directly (its own, and other peers' on the same host). */
  directNodes: ReadonlySet<string>
  /** The libp2p peer of a Node, to tunnel through. */
  peerIdOfNode(nodeName: string): string | undefined
}

/** Kubernetes' default ClientIP affinity: 3 hours. */
export const defaultAffinityTimeoutSeconds = 10_800

/** `default/redis-master:6379/TCP`: stable across updates, so the proxy keeps the entry's listeners. */
export function portIdOf(service: ServiceJson, port: ServicePortJson): string {
  return `${service.metadata.namespace ?? 'default'}/${service.metadata.name ?? ''}:${port.name ?? port.port}/${port.protocol ?? 'TCP'}`
}

function endpointsOf(endpoints: EndpointsJson | undefined, port: ServicePortJson, placement: EndpointPlacement): ProxyEndpoint[] {
  const out: ProxyEndpoint[] = []
  const protocol = port.protocol ?? 'TCP'
  for (const subset of endpoints?.subsets ?? []) {
    // The Endpoints port carries the Service port's name (or none when the Service has one unnamed port).
    const target = (subset.ports ?? []).find((p) => (p.name ?? '') === (port.name ?? '') && (p.protocol ?? 'TCP') === protocol)
    if (target === undefined) continue
    for (const address of subset.addresses ?? []) {
      const node = address.nodeName
      const direct = node === undefined || node === placement.nodeName || placement.directNodes.has(node)
      const viaPeerId = direct ? null : (placement.peerIdOfNode(node) ?? null)
      out.push({ ip: address.ip, port: target.port, viaPeerId })
    }
  }
  return out.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.port - b.port))
}

/** Every Service port with a cluster IP, as the proxies take them. */
export function proxyTable(services: readonly ServiceJson[], endpointsByKey: ReadonlyMap<string, EndpointsJson>, placement: EndpointPlacement): ProxyServicePort[] {
  const out: ProxyServicePort[] = []
  for (const service of services) {
    const spec = service.spec
    const vip = spec?.clusterIP
    if (vip === undefined || vip === '' || vip === 'None' || spec?.type === 'ExternalName') continue
    const endpoints = endpointsByKey.get(`${service.metadata.namespace ?? 'default'}/${service.metadata.name ?? ''}`)
    const affinity = spec?.sessionAffinity === 'ClientIP' ? 'ClientIP' : 'None'
    const timeoutSeconds = spec?.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? defaultAffinityTimeoutSeconds
    for (const port of spec?.ports ?? []) {
      const protocol = port.protocol ?? 'TCP'
      if (protocol !== 'TCP' && protocol !== 'UDP') continue
      const entry: ProxyServicePort = { id: portIdOf(service, port), vip, port: port.port, protocol, sessionAffinity: affinity, affinityTimeoutMs: timeoutSeconds * 1000, endpoints: endpointsOf(endpoints, port, placement) }
      if ((spec?.type === 'NodePort' || spec?.type === 'LoadBalancer') && port.nodePort !== undefined) entry.nodePort = port.nodePort
      out.push(entry)
    }
  }
  return out
}
