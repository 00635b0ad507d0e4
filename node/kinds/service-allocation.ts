// A Service's cluster IP and node ports, allocated when its create or update
// is applied: from state every replica shares (the cluster's service CIDR
// setting and the Services already stored), so every peer allocates the same
// address, and two creates racing through different peers can never get the
// same one: the later entry sees the earlier one's address taken. Releasing is
// deleting the Service: an address is taken exactly while a Service holds it.
import type { AllocationContext, AllocationResult } from './kind.js'
import type { ApiObject } from './meta.js'

/** The cluster setting that holds the service CIDR, written once at bootstrap. */
export const serviceCidrSettingKey = 'shoal.serviceCidr'
/** Loopback: every 127/8 address reaches lo on Linux, so the proxy listens there with no privileges. */
export const defaultServiceCidr = '127.77.0.0/16'
export const nodePortRange = { min: 30000, max: 32767 } as const

interface ServicePortSpec {
  name?: string
  port?: number
  protocol?: string
  nodePort?: number
}

interface ServiceSpec {
  type?: string
  clusterIP?: string
  clusterIPs?: string[]
  ipFamilies?: string[]
  ipFamilyPolicy?: string
  ports?: ServicePortSpec[]
}

type ServiceObject = ApiObject & { spec?: ServiceSpec }

export class CidrError extends Error {
  override readonly name = 'CidrError'
}

export interface Ipv4Range {
  /** The network address as a number. */
  base: number
  size: number
  text: string
}

export function ipv4ToNumber(ip: string): number | null {
  const parts = ip.split('.')
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return null
  return parts.reduce((n, p) => n * 256 + Number(p), 0)
}

export function numberToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.')
}

export function parseCidr(text: string): Ipv4Range {
  const [ip, bitsText] = text.split('/')
  const bits = Number(bitsText)
  const address = ipv4ToNumber(ip ?? '')
  if (address === null || !Number.isInteger(bits) || bits < 8 || bits > 30) throw new CidrError(`"${text}" is not an IPv4 CIDR between /8 and /30 (for example 10.96.0.0/16)`)
  const size = 2 ** (32 - bits)
  return { base: address - (address % size), size, text }
}

function isServiceWithIp(spec: ServiceSpec | undefined): boolean {
  return spec?.type !== 'ExternalName' && spec?.clusterIP !== 'None'
}

function wantsNodePorts(spec: ServiceSpec | undefined): boolean {
  return spec?.type === 'NodePort' || spec?.type === 'LoadBalancer'
}

function invalid(field: string, value: string, why: string): AllocationResult {
  return { invalid: `${field}: Invalid value: ${value}: ${why}`, field }
}

/** What the other Services hold: cluster IPs and protocol/nodePort pairs. */
function taken(ctx: AllocationContext, self: ServiceObject): { ips: Set<string>; nodePorts: Set<string> } {
  const ips = new Set<string>()
  const nodePorts = new Set<string>()
  for (const o of ctx.existing()) {
    if (o.metadata.uid === self.metadata.uid) continue
    const spec = (o as ServiceObject).spec
    if (spec?.clusterIP !== undefined && spec.clusterIP !== 'None') ips.add(spec.clusterIP)
    for (const p of spec?.ports ?? []) if (p.nodePort !== undefined) nodePorts.add(`${p.protocol ?? 'TCP'}/${p.nodePort}`)
  }
  return { ips, nodePorts }
}

/** A free address, scanning from a point the entry's index picks (the same on every replica), skipping the network and broadcast addresses. */
function freeIp(range: Ipv4Range, used: Set<string>, index: number): string | null {
  const usable = range.size - 2
  const start = (index * 2654435761) % usable
  for (let k = 0; k < usable; k++) {
    const ip = numberToIpv4(range.base + 1 + ((start + k) % usable))
    if (!used.has(ip)) return ip
  }
  return null
}

function freeNodePort(protocol: string, used: Set<string>, index: number): number | null {
  const span = nodePortRange.max - nodePortRange.min + 1
  const start = (index * 40503) % span
  for (let k = 0; k < span; k++) {
    const port = nodePortRange.min + ((start + k) % span)
    if (!used.has(`${protocol}/${port}`)) return port
  }
  return null
}

function allocateClusterIp(spec: ServiceSpec, old: ServiceSpec | undefined, range: Ipv4Range, used: Set<string>, index: number): AllocationResult | null {
  const oldIp = old?.clusterIP
  if (old !== undefined && isServiceWithIp(old) && oldIp !== undefined) {
    if (spec.clusterIP === undefined || spec.clusterIP === '') spec.clusterIP = oldIp
    else if (spec.clusterIP !== oldIp) return invalid('spec.clusterIPs[0]', JSON.stringify(spec.clusterIP), 'may not change once set')
  }
  const wanted = spec.clusterIP
  if (wanted === undefined || wanted === '') {
    const ip = freeIp(range, used, index)
    if (ip === null) return invalid('spec.clusterIPs', '[]', `failed to allocate a service IP: range ${range.text} is full`)
    spec.clusterIP = ip
  } else if (wanted !== oldIp) {
    const n = ipv4ToNumber(wanted)
    if (n === null) return invalid('spec.clusterIPs[0]', JSON.stringify(wanted), 'must be a valid IP address')
    if (n <= range.base || n >= range.base + range.size - 1) return invalid('spec.clusterIPs', `["${wanted}"]`, `failed to allocate IP ${wanted}: the provided IP (${wanted}) is not in the valid range. The range of valid IPs is ${range.text}`)
    if (used.has(wanted)) return invalid('spec.clusterIPs', `["${wanted}"]`, `failed to allocate IP ${wanted}: provided IP is already allocated`)
  }
  spec.clusterIPs = [spec.clusterIP ?? '']
  spec.ipFamilies = ['IPv4']
  spec.ipFamilyPolicy ??= 'SingleStack'
  return null
}

function allocateNodePorts(spec: ServiceSpec, old: ServiceSpec | undefined, used: Set<string>, index: number): AllocationResult | null {
  const ports = spec.ports ?? []
  for (const [k, p] of ports.entries()) {
    const protocol = p.protocol ?? 'TCP'
    // An update that leaves a port's nodePort out keeps the one it had.
    p.nodePort ??= wantsNodePorts(old) ? old?.ports?.find((o) => o.port === p.port && (o.protocol ?? 'TCP') === protocol)?.nodePort : undefined
    if (p.nodePort === undefined) {
      const port = freeNodePort(protocol, used, index + k)
      if (port === null) return invalid(`spec.ports[${k}].nodePort`, '0', 'failed to allocate a node port: the range 30000-32767 is full')
      p.nodePort = port
    } else if (p.nodePort < nodePortRange.min || p.nodePort > nodePortRange.max) {
      return invalid(`spec.ports[${k}].nodePort`, String(p.nodePort), `provided port is not in the valid range. The range of valid ports is ${nodePortRange.min}-${nodePortRange.max}`)
    } else if (used.has(`${protocol}/${p.nodePort}`)) {
      return invalid(`spec.ports[${k}].nodePort`, String(p.nodePort), 'provided port is already allocated')
    }
    used.add(`${protocol}/${p.nodePort}`)
  }
  return null
}

/** KindDefinition.allocate for Services. */
export function allocateService(object: ApiObject, old: ApiObject | null, ctx: AllocationContext): AllocationResult {
  const service = structuredClone(object) as ServiceObject
  const spec = (service.spec ??= {})
  const oldSpec = (old as ServiceObject | null)?.spec
  let range: Ipv4Range
  try {
    range = parseCidr(ctx.setting(serviceCidrSettingKey) ?? defaultServiceCidr)
  } catch (err) {
    return { invalid: `spec.clusterIP: Internal error: the cluster's service CIDR is unusable: ${(err as Error).message}`, field: 'spec.clusterIP' }
  }
  const used = taken(ctx, service)
  if (isServiceWithIp(spec)) {
    const refused = allocateClusterIp(spec, oldSpec, range, used.ips, ctx.index)
    if (refused !== null) return refused
  } else if (spec.clusterIP === 'None') {
    spec.clusterIPs = ['None']
  }
  if (wantsNodePorts(spec)) {
    const refused = allocateNodePorts(spec, oldSpec, used.nodePorts, ctx.index)
    if (refused !== null) return refused
  } else {
    for (const p of spec.ports ?? []) delete p.nodePort
  }
  return { object: service }
}
