// Cluster DNS records from this peer's replica of the store, after
// Kubernetes' DNS spec (github.com/kubernetes/dns docs/specification.md):
// NAME.NS.svc.ZONE -> the clusterIP, or a headless service's ready endpoint
// addresses; _PORT._PROTO.NAME.NS.svc.ZONE -> SRV for named ports;
// HOSTNAME.NAME.NS.svc.ZONE for a headless service's endpoints; PTR for those
// addresses. Kept from a scan at start and then the store's change feed, one
// object at a time (thousands of services must not mean a rebuild per change).
import type { Answer, RecordType } from 'dns-packet'
import { isIPv4, isIPv6 } from 'node:net'
import type { DnsAnswer, DnsQuestion, DnsResolver } from '../../net/dns-server.js'
import { namespaceKind } from '../kinds/cluster.js'
import type { ApiObject } from '../kinds/meta.js'
import { endpointsKind, serviceKind } from '../kinds/network.js'
import type { ObjectStore } from '../store/object-store.js'
import type { WatchEvent } from '../store/watch.js'

export interface DnsRecordsOptions {
  store: ObjectStore
  /** The cluster domain (Kubernetes' `--cluster-domain`). */
  clusterDomain?: string
  /** TTL of every record, and of negative answers (the SOA minimum). */
  ttlSeconds?: number
  /** The store is rescanned this often: a snapshot install replaces objects without change events. 0: never. */
  resyncEveryMs?: number
}

/** The schema version of the spec we follow (its `dns-version` TXT record). */
const dnsSchemaVersion = '1.0.0'

interface PortEntry {
  name: string
  port: number
  protocol: string
}

interface ServiceEntry {
  name: string
  namespace: string
  /** The VIP, or null for headless (clusterIP None) and not yet allocated ones. */
  clusterIP: string | null
  headless: boolean
  ports: PortEntry[]
}

interface EndpointAddressEntry {
  ip: string
  /** The address's hostname, or its IP with dashes (a stable system-assigned name, as CoreDNS makes). */
  hostname: string
}

type EndpointsEntry = { addresses: EndpointAddressEntry[]; ports: PortEntry[] }[]

interface ServiceView {
  spec?: { clusterIP?: string; ports?: { name?: string; port?: number; protocol?: string }[] }
}

interface EndpointsView {
  subsets?: { addresses?: { ip?: string; hostname?: string }[]; ports?: { name?: string; port?: number; protocol?: string }[] }[]
}

const forward: DnsAnswer = { kind: 'forward' }

export class DnsRecords implements DnsResolver {
  readonly zone: string
  private readonly zoneSuffix: string
  private readonly ttl: number
  private readonly services = new Map<string, ServiceEntry>()
  private readonly endpoints = new Map<string, EndpointsEntry>()
  private readonly namespaces = new Set<string>()
  private readonly servicesByIp = new Map<string, Set<string>>()
  private readonly endpointsByIp = new Map<string, Set<string>>()
  /** The last object applied per kind/namespace/name: a rescan skips what has not changed. */
  private readonly applied = new Map<string, ApiObject>()
  /** The SOA serial: bumped on every change. */
  private serial = 1
  private stopWatch: (() => void) | null = null
  private resyncTimer: ReturnType<typeof setInterval> | null = null

  constructor(private readonly o: DnsRecordsOptions) {
    this.zone = (o.clusterDomain ?? 'cluster.local').toLowerCase().replace(/^\.|\.$/g, '')
    this.zoneSuffix = `.${this.zone}`
    this.ttl = o.ttlSeconds ?? 5
  }

  start(): void {
    this.rescan()
    this.stopWatch = this.o.store.watches.watchFrom(this.o.store.appliedIndex, (e) => this.onEvent(e))
    const every = this.o.resyncEveryMs ?? 10_000
    if (every > 0) {
      this.resyncTimer = setInterval(() => this.rescan(), every)
      this.resyncTimer.unref()
    }
  }

  stop(): void {
    this.stopWatch?.()
    this.stopWatch = null
    if (this.resyncTimer !== null) clearInterval(this.resyncTimer)
    this.resyncTimer = null
  }

  /** Everything from the store again; objects unchanged since they were applied cost a map lookup. */
  rescan(): void {
    const seen = new Set<string>()
    for (const def of [namespaceKind, serviceKind, endpointsKind]) {
      for (const o of this.o.store.list(def)) {
        const key = appliedKey(o)
        seen.add(key)
        if (this.applied.get(key) !== o) this.put(o)
      }
    }
    for (const [key, o] of [...this.applied]) if (!seen.has(key)) this.remove(o)
  }

  private onEvent(e: WatchEvent): void {
    const o = e.object
    if (o.apiVersion !== 'v1' || (o.kind !== 'Service' && o.kind !== 'Endpoints' && o.kind !== 'Namespace')) return
    if (e.type === 'DELETED') this.remove(o)
    else this.put(o)
  }

  private put(o: ApiObject): void {
    if (this.applied.has(appliedKey(o))) this.remove(o)
    this.applied.set(appliedKey(o), o)
    this.serial = (this.serial + 1) % 0x1_0000_0000
    const key = objectKey(o)
    if (o.kind === 'Namespace') this.namespaces.add(o.metadata.name ?? '')
    else if (o.kind === 'Service') {
      const entry = serviceEntry(o)
      this.services.set(key, entry)
      if (entry.clusterIP !== null) indexIp(this.servicesByIp, entry.clusterIP, key)
    } else {
      const entry = endpointsEntry(o)
      this.endpoints.set(key, entry)
      for (const subset of entry) for (const a of subset.addresses) indexIp(this.endpointsByIp, a.ip, key)
    }
  }

  private remove(o: ApiObject): void {
    const old = this.applied.get(appliedKey(o))
    if (old === undefined) return
    this.applied.delete(appliedKey(o))
    this.serial = (this.serial + 1) % 0x1_0000_0000
    const key = objectKey(old)
    if (old.kind === 'Namespace') this.namespaces.delete(old.metadata.name ?? '')
    else if (old.kind === 'Service') {
      const ip = this.services.get(key)?.clusterIP
      if (ip !== undefined && ip !== null) unindexIp(this.servicesByIp, ip, key)
      this.services.delete(key)
    } else {
      for (const subset of this.endpoints.get(key) ?? []) for (const a of subset.addresses) unindexIp(this.endpointsByIp, a.ip, key)
      this.endpoints.delete(key)
    }
  }

  resolve(q: DnsQuestion): DnsAnswer {
    const name = q.name.toLowerCase().replace(/\.$/, '')
    if (name === this.zone) return this.apex(q)
    if (name.endsWith(this.zoneSuffix)) return this.inZone(q, name.slice(0, -this.zoneSuffix.length).split('.'))
    if (name.endsWith('.in-addr.arpa')) return this.reverse(q, name)
    // NAME.NAMESPACE, for clients that apply no search list; any other two-label name (example.com) is not ours.
    const labels = name.split('.')
    const service = labels.length === 2 ? this.services.get(`${labels[1]}/${labels[0]}`) : undefined
    return service === undefined ? forward : records(this.serviceAddresses(q, service))
  }

  private apex(q: DnsQuestion): DnsAnswer {
    if (q.type === 'SOA') return records([this.soa()])
    if (q.type === 'NS') return records([{ name: this.zone, type: 'NS', ttl: this.ttl, data: `ns.dns.${this.zone}` }])
    return this.noData()
  }

  private inZone(q: DnsQuestion, rel: string[]): DnsAnswer {
    if (rel.length === 1 && rel[0] === 'dns-version') return q.type === 'TXT' ? records([{ name: q.name, type: 'TXT', ttl: this.ttl, data: dnsSchemaVersion }]) : this.noData()
    if (rel[rel.length - 1] !== 'svc') return this.nxDomain()
    if (rel.length === 1) return this.noData()
    if (rel.length === 2) return this.namespaces.has(rel[0]!) ? this.noData() : this.nxDomain()
    const service = this.services.get(`${rel[rel.length - 2]}/${rel[rel.length - 3]}`)
    if (service === undefined || rel.length > 5) return this.nxDomain()
    if (rel.length === 3) {
      const answers = this.serviceAddresses(q, service)
      return answers.length > 0 ? records(answers) : this.noData()
    }
    if (rel.length === 5) return this.srv(q, service, rel[0]!, rel[1]!)
    const first = rel[0]!
    // _PROTO.NAME.NS.svc.ZONE exists (with no records) when a named port uses that protocol.
    if (first.startsWith('_')) return service.ports.some((p) => p.name !== '' && `_${p.protocol}` === first) ? this.noData() : this.nxDomain()
    if (!service.headless) return this.nxDomain()
    const ips = this.readyAddresses(service).filter((a) => a.hostname === first)
    if (ips.length === 0) return this.nxDomain()
    const answers = addressRecords(q.name, q.type, ips.map((a) => a.ip), this.ttl)
    return answers.length > 0 ? records(answers) : this.noData()
  }

  private srv(q: DnsQuestion, service: ServiceEntry, portLabel: string, protoLabel: string): DnsAnswer {
    const matches = (p: PortEntry): boolean => p.name !== '' && `_${p.name}` === portLabel && `_${p.protocol}` === protoLabel
    if (!service.ports.some(matches)) return this.nxDomain()
    if (q.type !== 'SRV') return this.noData()
    const answers: Answer[] = []
    const additionals: Answer[] = []
    const serviceName = `${service.name}.${service.namespace}.svc.${this.zone}`
    if (!service.headless) {
      for (const p of service.ports.filter(matches)) answers.push(this.srvRecord(q.name, p.port, serviceName))
      if (service.clusterIP !== null) additionals.push(...addressRecords(serviceName, isIPv6(service.clusterIP) ? 'AAAA' : 'A', [service.clusterIP], this.ttl))
    } else {
      // Each subset pairs its addresses with its ports (the target ports resolved per pod).
      for (const subset of this.endpoints.get(`${service.namespace}/${service.name}`) ?? []) {
        for (const p of subset.ports.filter(matches)) {
          for (const a of subset.addresses) {
            const target = `${a.hostname}.${serviceName}`
            answers.push(this.srvRecord(q.name, p.port, target))
            additionals.push(...addressRecords(target, isIPv6(a.ip) ? 'AAAA' : 'A', [a.ip], this.ttl))
          }
        }
      }
    }
    return answers.length > 0 ? { kind: 'records', rcode: 'NOERROR', answers, authorities: [], additionals } : this.noData()
  }

  private srvRecord(name: string, port: number, target: string): Answer {
    return { name, type: 'SRV', ttl: this.ttl, data: { priority: 0, weight: 100, port, target } }
  }

  /** A or AAAA: the VIP, or for a headless service each ready endpoint address once. */
  private serviceAddresses(q: DnsQuestion, service: ServiceEntry): Answer[] {
    if (q.type !== 'A' && q.type !== 'AAAA') return []
    const ips = service.headless ? [...new Set(this.readyAddresses(service).map((a) => a.ip))] : service.clusterIP === null ? [] : [service.clusterIP]
    return addressRecords(q.name, q.type, ips, this.ttl)
  }

  private readyAddresses(service: ServiceEntry): EndpointAddressEntry[] {
    return (this.endpoints.get(`${service.namespace}/${service.name}`) ?? []).flatMap((s) => s.addresses)
  }

  /** PTR for a VIP or a headless service's endpoint; other addresses are not ours. */
  private reverse(q: DnsQuestion, name: string): DnsAnswer {
    const octets = name.slice(0, -'.in-addr.arpa'.length).split('.')
    if (octets.length !== 4) return forward
    const ip = octets.reverse().join('.')
    const targets = new Set<string>()
    for (const key of this.servicesByIp.get(ip) ?? []) {
      const s = this.services.get(key)
      if (s !== undefined) targets.add(`${s.name}.${s.namespace}.svc.${this.zone}`)
    }
    for (const key of this.endpointsByIp.get(ip) ?? []) {
      const s = this.services.get(key)
      if (s === undefined || !s.headless) continue
      for (const a of this.readyAddresses(s)) if (a.ip === ip) targets.add(`${a.hostname}.${s.name}.${s.namespace}.svc.${this.zone}`)
    }
    if (targets.size === 0) return forward
    if (q.type !== 'PTR') return records([])
    return records([...targets].map((t): Answer => ({ name: q.name, type: 'PTR', ttl: this.ttl, data: t })))
  }

  private soa(): Answer {
    return {
      name: this.zone,
      type: 'SOA',
      ttl: this.ttl,
      data: { mname: `ns.dns.${this.zone}`, rname: `hostmaster.${this.zone}`, serial: this.serial, refresh: 7200, retry: 1800, expire: 86400, minimum: this.ttl },
    }
  }

  /** The name exists but has no record of the asked type; the SOA lets resolvers cache that (RFC 2308). */
  private noData(): DnsAnswer {
    return { kind: 'records', rcode: 'NOERROR', answers: [], authorities: [this.soa()], additionals: [] }
  }

  private nxDomain(): DnsAnswer {
    return { kind: 'records', rcode: 'NXDOMAIN', answers: [], authorities: [this.soa()], additionals: [] }
  }
}

function records(answers: Answer[]): DnsAnswer {
  return { kind: 'records', rcode: 'NOERROR', answers, authorities: [], additionals: [] }
}

function addressRecords(name: string, type: RecordType, ips: string[], ttl: number): Answer[] {
  const family = type === 'A' ? isIPv4 : type === 'AAAA' ? isIPv6 : () => false
  return ips.filter((ip) => family(ip)).map((ip): Answer => ({ name, type: type as 'A' | 'AAAA', ttl, data: ip }))
}

function objectKey(o: ApiObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`
}

function appliedKey(o: ApiObject): string {
  return `${o.kind}/${objectKey(o)}`
}

function indexIp(index: Map<string, Set<string>>, ip: string, key: string): void {
  let set = index.get(ip)
  if (set === undefined) index.set(ip, (set = new Set()))
  set.add(key)
}

function unindexIp(index: Map<string, Set<string>>, ip: string, key: string): void {
  const set = index.get(ip)
  set?.delete(key)
  if (set?.size === 0) index.delete(ip)
}

function ports(list: { name?: string; port?: number; protocol?: string }[] | undefined): PortEntry[] {
  return (list ?? []).filter((p) => p.port !== undefined).map((p) => ({ name: (p.name ?? '').toLowerCase(), port: p.port!, protocol: (p.protocol ?? 'TCP').toLowerCase() }))
}

function serviceEntry(o: ApiObject): ServiceEntry {
  const spec = (o as ApiObject & ServiceView).spec
  const ip = spec?.clusterIP
  const headless = ip === 'None'
  return { name: o.metadata.name ?? '', namespace: o.metadata.namespace ?? '', clusterIP: headless || ip === undefined || ip === '' ? null : ip, headless, ports: ports(spec?.ports) }
}

function endpointsEntry(o: ApiObject): EndpointsEntry {
  return ((o as ApiObject & EndpointsView).subsets ?? []).map((s) => ({
    addresses: (s.addresses ?? []).filter((a) => a.ip !== undefined && a.ip !== '').map((a) => ({ ip: a.ip!, hostname: (a.hostname ?? a.ip!.replace(/[.:]/g, '-')).toLowerCase() })),
    ports: ports(s.ports),
  }))
}
