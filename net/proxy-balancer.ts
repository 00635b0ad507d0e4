// Endpoint choice for one service port: round robin, or ClientIP affinity
// (the same client address gets the same endpoint until it has been idle for
// affinityTimeoutMs, as kube-proxy does). pick() returns an ordered list of
// candidates so a failed connect can move on to the next one.
import type { ProxyEndpoint } from './proxy-types.js'

/** Endpoints one connection tries before giving up (a dead endpoint costs one attempt). */
export const connectAttemptsMax = 4
/** Client addresses remembered per service port for ClientIP affinity; the least recently used goes first. */
export const affinityClientsMax = 10_000

interface AffinityEntry {
  endpointKey: string
  lastUsedMs: number
}

export function endpointKey(e: ProxyEndpoint): string {
  return `${e.ip}:${e.port}@${e.viaPeerId ?? ''}`
}

/** One string for a whole list, to see cheaply whether an update changed anything. */
export function endpointsKey(endpoints: readonly ProxyEndpoint[]): string {
  return endpoints.map(endpointKey).join(',')
}

export interface BalancerSettings {
  sessionAffinity: 'None' | 'ClientIP'
  affinityTimeoutMs: number
}

export class EndpointBalancer {
  private endpoints: ProxyEndpoint[] = []
  private byKey = new Map<string, ProxyEndpoint>()
  private nextIndex = 0
  /** Insertion order is recency order: a use deletes and re-adds. */
  private readonly affinity = new Map<string, AffinityEntry>()

  constructor(
    private settings: BalancerSettings,
    endpoints: readonly ProxyEndpoint[],
    private readonly nowMs: () => number = Date.now,
  ) {
    this.setEndpoints(endpoints)
  }

  get size(): number {
    return this.endpoints.length
  }

  configure(settings: BalancerSettings): void {
    if (settings.sessionAffinity !== 'ClientIP') this.affinity.clear()
    this.settings = settings
  }

  /** New connections go only to these; affinity to a removed endpoint is forgotten. */
  setEndpoints(endpoints: readonly ProxyEndpoint[]): void {
    this.endpoints = [...endpoints]
    this.byKey = new Map(this.endpoints.map((e) => [endpointKey(e), e]))
    if (this.nextIndex >= this.endpoints.length) this.nextIndex = 0
    for (const [client, entry] of this.affinity) if (!this.byKey.has(entry.endpointKey)) this.affinity.delete(client)
  }

  has(endpoint: ProxyEndpoint): boolean {
    return this.byKey.has(endpointKey(endpoint))
  }

  /** Candidates in the order to try: the affine or next round-robin endpoint first, then the others. */
  pick(clientIp: string): ProxyEndpoint[] {
    const count = this.endpoints.length
    if (count === 0) return []
    let first = -1
    const sticky = this.stickyEndpoint(clientIp)
    if (sticky !== undefined) first = this.endpoints.indexOf(sticky)
    if (first < 0) {
      first = this.nextIndex
      this.nextIndex = (this.nextIndex + 1) % count
    }
    const attempts = Math.min(count, connectAttemptsMax)
    const out: ProxyEndpoint[] = []
    for (let k = 0; k < attempts; k++) out.push(this.endpoints[(first + k) % count]!)
    return out
  }

  /** The connection for `clientIp` went to `endpoint`: keep sending it there (ClientIP affinity). */
  connected(clientIp: string, endpoint: ProxyEndpoint): void {
    if (this.settings.sessionAffinity !== 'ClientIP') return
    this.affinity.delete(clientIp)
    if (this.affinity.size >= affinityClientsMax) {
      const oldest = this.affinity.keys().next()
      if (oldest.done !== true) this.affinity.delete(oldest.value)
    }
    this.affinity.set(clientIp, { endpointKey: endpointKey(endpoint), lastUsedMs: this.nowMs() })
  }

  private stickyEndpoint(clientIp: string): ProxyEndpoint | undefined {
    if (this.settings.sessionAffinity !== 'ClientIP') return undefined
    const entry = this.affinity.get(clientIp)
    if (entry === undefined) return undefined
    if (this.nowMs() - entry.lastUsedMs > this.settings.affinityTimeoutMs) {
      this.affinity.delete(clientIp)
      return undefined
    }
    return this.byKey.get(entry.endpointKey)
  }
}
