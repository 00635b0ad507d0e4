// UDP for one service address: a socket on VIP:port (or a NodePort address);
// each client (ip:port) gets a session to its chosen endpoint, a socket of its
// own for a local endpoint or a /shoal/tunnel-udp/1 stream for one behind
// another peer (net/tunnel-udp.ts), and what the endpoint answers goes back to
// the client from the service address. Sessions end after udpSessionIdleMs
// without traffic, when their endpoint is removed, or when the tunnel closes
// (so a client's next datagram goes to a live endpoint). A tunnel the remote
// peer refuses (down, over its bound) moves the session to the next endpoint;
// datagrams that arrive meanwhile wait, up to udpPendingDatagramsMax.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import type { EndpointBalancer } from './proxy-balancer.js'
import type { ProxyEndpoint, UdpTunnelDialer } from './proxy-types.js'

/** Client sessions one service address keeps; past it, the least recently active one is closed. */
export const udpSessionsMax = 4096
/** A session with no datagram either way for this long is closed (conntrack's UDP timeout is 30 s). */
export const udpSessionIdleMs = 30_000
/** Datagrams one session holds while its tunnel opens; later ones are dropped. */
export const udpPendingDatagramsMax = 64
/** How long one tunnel may take to open before the next endpoint is tried. */
export const udpTunnelOpenTimeoutMs = 2000

/** Where a session's datagrams go: a local socket or a tunnel. */
interface Upstream {
  send(datagrams: Buffer[]): void
  close(): void
}

interface UdpSession {
  client: { address: string; port: number }
  /** null while the session is opening. */
  upstream: Upstream | null
  endpoint: ProxyEndpoint | null
  pending: Buffer[]
  lastActiveMs: number
  ended: boolean
  /** Aborts a tunnel dial in flight when the session ends. */
  readonly opening: AbortController
}

export interface UdpForwarderOptions {
  sessionsMax?: number
  sessionIdleMs?: number
  tunnelOpenTimeoutMs?: number
}

export class UdpForwarder {
  readonly socket: UdpSocket
  /** Keyed by client ip:port; insertion order is recency order (a datagram re-inserts). */
  private readonly sessions = new Map<string, UdpSession>()
  private readonly sessionsMax: number
  private readonly sessionIdleMs: number
  private readonly tunnelOpenTimeoutMs: number
  private sweepTimer: ReturnType<typeof setInterval> | null = null
  /** Datagrams dropped: no endpoint reachable, or too many waiting for a tunnel. */
  droppedTotal = 0
  /** Tunnels that failed to open and moved the session on to the next endpoint. */
  failedOpensTotal = 0

  constructor(
    readonly address: string,
    readonly port: number,
    private readonly balancer: EndpointBalancer,
    private readonly tunnel: UdpTunnelDialer | null,
    options: UdpForwarderOptions = {},
  ) {
    this.sessionsMax = options.sessionsMax ?? udpSessionsMax
    this.sessionIdleMs = options.sessionIdleMs ?? udpSessionIdleMs
    this.tunnelOpenTimeoutMs = options.tunnelOpenTimeoutMs ?? udpTunnelOpenTimeoutMs
    this.socket = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4', reuseAddr: false })
    this.socket.on('message', (msg, rinfo) => this.fromClient(msg, rinfo))
  }

  get sessionCount(): number {
    return this.sessions.size
  }

  listen(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.socket.once('error', reject)
      this.socket.bind({ address: this.address, port: this.port, exclusive: true }, () => {
        this.socket.removeListener('error', reject)
        // Errors after bind (ICMP unreachable from a client, say) must not crash the peer.
        this.socket.on('error', () => undefined)
        const sweepMs = Math.max(50, Math.min(this.sessionIdleMs / 2, 5000))
        this.sweepTimer = setInterval(() => this.sweep(), sweepMs)
        this.sweepTimer.unref()
        resolve()
      })
    })
  }

  close(): void {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer)
    for (const key of [...this.sessions.keys()]) this.endSession(key)
    try {
      this.socket.close()
    } catch {
      // Never bound, or closed already.
    }
  }

  /** The balancer's endpoints changed: sessions to removed endpoints end now. */
  endpointsChanged(): void {
    for (const [key, session] of this.sessions) if (session.endpoint !== null && !this.balancer.has(session.endpoint)) this.endSession(key)
  }

  private fromClient(msg: Buffer, client: RemoteInfo): void {
    const key = `${client.address}:${client.port}`
    let session = this.sessions.get(key)
    if (session === undefined) {
      session = this.openSession(key, client)
      if (session === undefined) {
        this.droppedTotal++
        return
      }
    } else {
      this.sessions.delete(key)
      this.sessions.set(key, session)
    }
    session.lastActiveMs = Date.now()
    if (session.upstream !== null) session.upstream.send([msg])
    else if (session.pending.length < udpPendingDatagramsMax) session.pending.push(msg)
    else this.droppedTotal++
  }

  /** A new session, opening (synchronously for a local endpoint); undefined when no endpoint is reachable. */
  private openSession(key: string, client: RemoteInfo): UdpSession | undefined {
    const candidates = this.balancer.pick(client.address).filter((e) => e.viaPeerId === null || this.tunnel !== null)
    if (candidates.length === 0) return undefined
    if (this.sessions.size >= this.sessionsMax) {
      const oldest = this.sessions.keys().next()
      if (oldest.done !== true) this.endSession(oldest.value)
    }
    const session: UdpSession = {
      client: { address: client.address, port: client.port },
      upstream: null,
      endpoint: null,
      pending: [],
      lastActiveMs: Date.now(),
      ended: false,
      opening: new AbortController(),
    }
    this.sessions.set(key, session)
    void this.connect(key, session, candidates)
    return session
  }

  /** Try the candidates in order; the first that opens carries the session and what waited for it. */
  private async connect(key: string, session: UdpSession, candidates: ProxyEndpoint[]): Promise<void> {
    for (const endpoint of candidates) {
      if (session.ended) return
      // Removed while an earlier candidate was tried: new sessions never go there.
      if (!this.balancer.has(endpoint)) continue
      let upstream: Upstream
      try {
        // A local endpoint opens without awaiting, so its first datagram goes out at once.
        upstream = endpoint.viaPeerId === null ? this.openDirect(key, session, endpoint) : await this.openTunnel(key, session, endpoint, endpoint.viaPeerId)
      } catch {
        if (!session.ended) this.failedOpensTotal++
        continue
      }
      if (session.ended || !this.balancer.has(endpoint)) {
        upstream.close()
        if (session.ended) return
        continue
      }
      session.upstream = upstream
      session.endpoint = endpoint
      this.balancer.connected(session.client.address, endpoint)
      if (session.pending.length > 0) upstream.send(session.pending)
      session.pending = []
      return
    }
    this.droppedTotal += session.pending.length
    this.endSession(key, session)
  }

  private openDirect(key: string, session: UdpSession, endpoint: ProxyEndpoint): Upstream {
    const socket = createSocket(isIPv6(endpoint.ip) ? 'udp6' : 'udp4')
    socket.on('message', (reply, from) => {
      if (from.port === endpoint.port) this.toClient(session, reply)
    })
    // A refused endpoint (ICMP port unreachable) ends the session; the next datagram picks again.
    socket.on('error', () => this.endSession(key, session))
    return {
      send: (datagrams) => {
        for (const d of datagrams) socket.send(d, endpoint.port, endpoint.ip)
      },
      close: () => {
        try {
          socket.close()
        } catch {
          // Closed already.
        }
      },
    }
  }

  private async openTunnel(key: string, session: UdpSession, endpoint: ProxyEndpoint, viaPeerId: string): Promise<Upstream> {
    const signal = AbortSignal.any([session.opening.signal, AbortSignal.timeout(this.tunnelOpenTimeoutMs)])
    const handlers = { onDatagram: (reply: Uint8Array) => this.toClient(session, reply), onClose: () => this.endSession(key, session) }
    const tunnel = await this.tunnel!.dialDatagrams(viaPeerId, endpoint.ip, endpoint.port, handlers, signal)
    return {
      send: (datagrams) => {
        if (!tunnel.send(datagrams)) this.droppedTotal += datagrams.length
      },
      close: () => tunnel.close(),
    }
  }

  private toClient(session: UdpSession, reply: Uint8Array): void {
    if (session.ended) return
    session.lastActiveMs = Date.now()
    this.socket.send(reply, session.client.port, session.client.address)
  }

  /** Ends the session for `key` (only if it is still `expected`, when given). */
  private endSession(key: string, expected?: UdpSession): void {
    const session = this.sessions.get(key)
    if (session === undefined || (expected !== undefined && session !== expected)) return
    this.sessions.delete(key)
    session.ended = true
    session.pending = []
    session.opening.abort(new Error('the udp session ended'))
    session.upstream?.close()
  }

  private sweep(): void {
    const idleBeforeMs = Date.now() - this.sessionIdleMs
    for (const [key, session] of this.sessions) if (session.lastActiveMs < idleBeforeMs) this.endSession(key)
  }
}
