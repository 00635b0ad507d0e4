// The userspace service proxy: for every service port, accept on VIP:port (and
// on each NodePort address), pick a ready endpoint, connect (directly, or
// through the peer that can reach it: net/tunnel.ts), and splice both ways.
// UDP goes per client session, through net/tunnel-udp.ts for remote endpoints.
// apply() takes the whole desired table and changes only what changed: an
// unchanged entry costs a string comparison, an endpoint change swaps the
// balancer's list under the same listeners (kube-proxy's userspace mode rebuilt
// everything and took minutes with thousands of services).
import { createServer, type Server, type Socket } from 'node:net'
import { EndpointBalancer, endpointsKey } from './proxy-balancer.js'
import type { ProxyApplyResult, ProxyEndpoint, ProxyServicePort, TunnelDialer, UdpTunnelDialer } from './proxy-types.js'
import { adoptAcceptedSocket, connectRelayUpstream, relaySocketOptions, spliceSockets, type RelaySocket } from './splice.js'
import { UdpForwarder, type UdpForwarderOptions } from './udp-proxy.js'

/** How long one endpoint may take to accept before the next is tried. */
export const proxyConnectTimeoutMs = 2000
/** Client connections relayed at once; past it, new clients are reset. */
export const proxyConnectionsMax = 16_384

export interface ServiceProxyOptions {
  /** Reaches endpoints behind other peers; null: such endpoints are skipped. */
  tunnel: TunnelDialer | null
  /** Reaches UDP endpoints behind other peers; absent or null: such endpoints are skipped for UDP. */
  udpTunnel?: UdpTunnelDialer | null
  /** Host addresses NodePort services are also served on. */
  nodePortAddresses: string[]
  connectTimeoutMs?: number
  connectionsMax?: number
  udp?: UdpForwarderOptions
}

type Listener = { kind: 'tcp'; address: string; port: number; server: Server } | { kind: 'udp'; address: string; port: number; forwarder: UdpForwarder }

interface Entry {
  spec: ProxyServicePort
  /** What the listeners depend on; a change reopens them. */
  listenKey: string
  endpointsKey: string
  balancer: EndpointBalancer
  listeners: Listener[]
  /** A listener could not bind: the next apply() reopens this entry. */
  failed: boolean
}

function listenKeyOf(spec: ProxyServicePort): string {
  return `${spec.protocol}|${spec.vip}|${spec.port}|${spec.nodePort ?? ''}`
}

function resetSocket(socket: Socket): void {
  if (socket.destroyed) return
  if (typeof socket.resetAndDestroy === 'function' && socket.readyState !== 'closed') socket.resetAndDestroy()
  else socket.destroy()
}

/** A direct TCP connection to `endpoint`, rejected on error, timeout or abort. */
function connectDirect(endpoint: ProxyEndpoint, timeoutMs: number, signal: AbortSignal): Promise<RelaySocket> {
  return new Promise<RelaySocket>((resolve, reject) => {
    const upstream = connectRelayUpstream(endpoint.ip, endpoint.port)
    const socket = upstream.socket
    const fail = (err: Error): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      reject(err)
    }
    const onAbort = (): void => fail(new Error('the client went away'))
    const timer = setTimeout(() => fail(new Error(`connecting to ${endpoint.ip}:${endpoint.port} timed out after ${timeoutMs} ms`)), timeoutMs)
    socket.once('error', fail)
    signal.addEventListener('abort', onAbort, { once: true })
    socket.once('connect', () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      socket.removeListener('error', fail)
      resolve(upstream)
    })
  })
}

export class ServiceProxy {
  private readonly entries = new Map<string, Entry>()
  /** Every relay socket (client and upstream side), for close() and bufferedBytes(). */
  private readonly sockets = new Set<Socket>()
  private clientCount = 0
  private readonly connectTimeoutMs: number
  private readonly connectionsMax: number
  /** Clients reset because no endpoint accepted (or there was none), since start. */
  rejectedTotal = 0
  /** Endpoint connects that failed and moved on to the next endpoint, since start. */
  failedConnectsTotal = 0
  /** Connections to endpoints behind other peers over the direct peer-to-peer data path, since start. */
  directPeerConnectsTotal = 0
  /** Connections to endpoints behind other peers over /shoal/tunnel/1 streams, since start. */
  tunnelConnectsTotal = 0

  constructor(private readonly options: ServiceProxyOptions) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? proxyConnectTimeoutMs
    this.connectionsMax = options.connectionsMax ?? proxyConnectionsMax
  }

  /** Client connections being relayed now. */
  get connections(): number {
    return this.clientCount
  }

  /** Bytes queued in relay sockets' write buffers (what the proxy itself holds). */
  bufferedBytes(): number {
    let total = 0
    for (const s of this.sockets) total += s.writableLength
    return total
  }

  /** UDP sessions open (or opening) on one entry, over all its addresses. */
  udpSessionsOf(id: string): number {
    let total = 0
    for (const l of this.entries.get(id)?.listeners ?? []) if (l.kind === 'udp') total += l.forwarder.sessionCount
    return total
  }

  /** The listening objects of one entry (net.Server or dgram socket), for diagnostics and tests. */
  listenersOf(id: string): object[] {
    return (this.entries.get(id)?.listeners ?? []).map((l) => (l.kind === 'tcp' ? l.server : l.forwarder.socket))
  }

  /** Apply the whole desired table, incrementally. Resolves once new listeners are bound (or failed). */
  async apply(ports: readonly ProxyServicePort[]): Promise<ProxyApplyResult> {
    const result: ProxyApplyResult = { opened: 0, closed: 0, updated: 0, unchanged: 0, failed: [] }
    const wanted = new Set<string>()
    const binding: Promise<void>[] = []
    for (const spec of ports) {
      if (wanted.has(spec.id)) continue
      wanted.add(spec.id)
      const entry = this.entries.get(spec.id)
      if (entry !== undefined && entry.listenKey === listenKeyOf(spec) && !entry.failed) {
        if (this.update(entry, spec)) result.updated++
        else result.unchanged++
        continue
      }
      if (entry !== undefined) {
        this.closeEntry(entry)
        result.closed++
      }
      binding.push(this.openEntry(spec, result))
      result.opened++
    }
    for (const [id, entry] of this.entries) {
      if (wanted.has(id)) continue
      this.closeEntry(entry)
      this.entries.delete(id)
      result.closed++
    }
    await Promise.all(binding)
    return result
  }

  /** Close every listener and every relayed connection. */
  async close(): Promise<void> {
    for (const entry of this.entries.values()) this.closeEntry(entry)
    this.entries.clear()
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
  }

  /** Endpoints or affinity changed in place; true when anything did. */
  private update(entry: Entry, spec: ProxyServicePort): boolean {
    let changed = false
    if (spec.sessionAffinity !== entry.spec.sessionAffinity || spec.affinityTimeoutMs !== entry.spec.affinityTimeoutMs) {
      entry.balancer.configure({ sessionAffinity: spec.sessionAffinity, affinityTimeoutMs: spec.affinityTimeoutMs })
      changed = true
    }
    const key = endpointsKey(spec.endpoints)
    if (key !== entry.endpointsKey) {
      entry.balancer.setEndpoints(spec.endpoints)
      entry.endpointsKey = key
      for (const l of entry.listeners) if (l.kind === 'udp') l.forwarder.endpointsChanged()
      changed = true
    }
    entry.spec = spec
    return changed
  }

  private async openEntry(spec: ProxyServicePort, result: ProxyApplyResult): Promise<void> {
    const entry: Entry = {
      spec,
      listenKey: listenKeyOf(spec),
      endpointsKey: endpointsKey(spec.endpoints),
      balancer: new EndpointBalancer({ sessionAffinity: spec.sessionAffinity, affinityTimeoutMs: spec.affinityTimeoutMs }, spec.endpoints),
      listeners: [],
      failed: false,
    }
    this.entries.set(spec.id, entry)
    const addresses: Array<[string, number]> = [[spec.vip, spec.port]]
    if (spec.nodePort !== undefined) for (const a of this.options.nodePortAddresses) addresses.push([a, spec.nodePort])
    const bound = await Promise.allSettled(addresses.map(([address, port]) => this.listen(entry, address, port)))
    bound.forEach((outcome, k) => {
      if (outcome.status === 'fulfilled') return
      entry.failed = true
      const [address, port] = addresses[k]!
      result.failed.push({ id: spec.id, address, port, error: outcome.reason as Error })
    })
  }

  private listen(entry: Entry, address: string, port: number): Promise<void> {
    if (entry.spec.protocol === 'UDP') {
      const forwarder = new UdpForwarder(address, port, entry.balancer, this.options.udpTunnel ?? null, { tunnelOpenTimeoutMs: this.connectTimeoutMs, ...this.options.udp })
      entry.listeners.push({ kind: 'udp', address, port, forwarder })
      return forwarder.listen()
    }
    const server = createServer({ ...relaySocketOptions, pauseOnConnect: true }, (client) => this.accept(entry, client))
    entry.listeners.push({ kind: 'tcp', address, port, server })
    return new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: address, port, exclusive: true }, () => {
        server.removeListener('error', reject)
        server.on('error', () => undefined)
        resolve()
      })
    })
  }

  /** Stop listening; connections already relayed finish on their own. */
  private closeEntry(entry: Entry): void {
    for (const l of entry.listeners) {
      if (l.kind === 'tcp') l.server.close()
      else l.forwarder.close()
    }
    entry.listeners = []
  }

  private track(socket: Socket): void {
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
  }

  private accept(entry: Entry, client: Socket): void {
    // A client reset before the splice must not crash the peer; the splice adds its own handlers.
    client.on('error', () => undefined)
    const candidates = entry.balancer.pick(client.remoteAddress ?? '')
    if (candidates.length === 0 || this.clientCount >= this.connectionsMax) {
      this.rejectedTotal++
      resetSocket(client)
      return
    }
    this.clientCount++
    this.track(client)
    void this.connectUpstream(entry, client, candidates)
  }

  /** Try the candidates in order; the first that connects is spliced with the client. */
  private async connectUpstream(entry: Entry, client: Socket, candidates: ProxyEndpoint[]): Promise<void> {
    const gone = new AbortController()
    const onClientClose = (): void => gone.abort(new Error('the client went away'))
    client.once('close', onClientClose)
    let relayed: Socket | null = null
    for (const endpoint of candidates) {
      // Removed while an earlier candidate was tried: new connections never go there.
      if (gone.signal.aborted || client.destroyed) break
      if (!entry.balancer.has(endpoint)) continue
      try {
        relayed = await this.connectOne(entry, client, endpoint, gone.signal, () => client.removeListener('close', onClientClose))
        break
      } catch {
        if (!gone.signal.aborted) this.failedConnectsTotal++
      }
    }
    client.removeListener('close', onClientClose)
    if (relayed === null) {
      this.clientCount--
      if (!client.destroyed) this.rejectedTotal++
      resetSocket(client)
      return
    }
    relayed.once('close', () => this.clientCount--)
  }

  /** Connect to one endpoint and splice; resolves with the client's socket as relayed, or null if the client left. */
  private async connectOne(entry: Entry, client: Socket, endpoint: ProxyEndpoint, gone: AbortSignal, connected: () => void): Promise<Socket | null> {
    const clientIp = client.remoteAddress ?? ''
    if (endpoint.viaPeerId === null) {
      const upstream = await connectDirect(endpoint, this.connectTimeoutMs, gone)
      if (client.destroyed) {
        upstream.socket.destroy()
        return null
      }
      connected()
      this.track(upstream.socket)
      entry.balancer.connected(clientIp, endpoint)
      const relayClient = adoptAcceptedSocket(client)
      relayClient.socket.on('error', () => undefined)
      this.track(relayClient.socket)
      spliceSockets(relayClient, upstream, () => undefined)
      return relayClient.socket
    }
    if (this.options.tunnel === null) throw new Error(`endpoint ${endpoint.ip}:${endpoint.port} is behind peer ${endpoint.viaPeerId} and this proxy has no tunnel`)
    const signal = AbortSignal.any([gone, AbortSignal.timeout(this.connectTimeoutMs)])
    const tunnel = await this.options.tunnel.dial(endpoint.viaPeerId, endpoint.ip, endpoint.port, signal)
    if (client.destroyed) {
      tunnel.abort(new Error('the client went away'))
      return null
    }
    connected()
    entry.balancer.connected(clientIp, endpoint)
    if (tunnel.path === 'direct') this.directPeerConnectsTotal++
    else this.tunnelConnectsTotal++
    const relayed = tunnel.spliceWith(client)
    if (relayed !== client) {
      relayed.on('error', () => undefined)
      this.track(relayed)
    }
    return relayed
  }
}
