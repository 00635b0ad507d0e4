// UDP for one service address: a socket on VIP:port (or a NodePort address);
// each client (ip:port) gets a session socket to its chosen endpoint, and
// what the endpoint answers goes back to the client from the service address.
// Sessions end after udpSessionIdleMs without traffic, or at once when their
// endpoint is removed (so a client's next datagram goes to a live endpoint).
// Endpoints behind another peer are not reached over UDP (the tunnel carries
// TCP only): they are skipped while a local one exists, else the datagram is dropped.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import type { EndpointBalancer } from './proxy-balancer.js'
import type { ProxyEndpoint } from './proxy-types.js'

/** Client sessions one service address keeps; past it, the least recently active one is closed. */
export const udpSessionsMax = 4096
/** A session with no datagram either way for this long is closed (conntrack's UDP timeout is 30 s). */
export const udpSessionIdleMs = 30_000

interface UdpSession {
  socket: UdpSocket
  endpoint: ProxyEndpoint
  lastActiveMs: number
}

export interface UdpForwarderOptions {
  sessionsMax?: number
  sessionIdleMs?: number
}

export class UdpForwarder {
  readonly socket: UdpSocket
  /** Keyed by client ip:port; insertion order is recency order (a datagram re-inserts). */
  private readonly sessions = new Map<string, UdpSession>()
  private readonly sessionsMax: number
  private readonly sessionIdleMs: number
  private sweepTimer: ReturnType<typeof setInterval> | null = null
  /** Datagrams dropped: no endpoint, or only endpoints behind other peers. */
  droppedTotal = 0

  constructor(
    readonly address: string,
    readonly port: number,
    private readonly balancer: EndpointBalancer,
    options: UdpForwarderOptions = {},
  ) {
    this.sessionsMax = options.sessionsMax ?? udpSessionsMax
    this.sessionIdleMs = options.sessionIdleMs ?? udpSessionIdleMs
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
    for (const [key, session] of this.sessions) if (!this.balancer.has(session.endpoint)) this.endSession(key)
  }

  private fromClient(msg: Buffer, client: RemoteInfo): void {
    const key = `${client.address}:${client.port}`
    let session = this.sessions.get(key)
    if (session === undefined) {
      const created = this.openSession(key, client)
      if (created === null) {
        this.droppedTotal++
        return
      }
      session = created
    } else {
      this.sessions.delete(key)
      this.sessions.set(key, session)
    }
    session.lastActiveMs = Date.now()
    session.socket.send(msg, session.endpoint.port, session.endpoint.ip)
  }

  private openSession(key: string, client: RemoteInfo): UdpSession | null {
    const endpoint = this.balancer.pick(client.address).find((e) => e.viaPeerId === null)
    if (endpoint === undefined) return null
    if (this.sessions.size >= this.sessionsMax) {
      const oldest = this.sessions.keys().next()
      if (oldest.done !== true) this.endSession(oldest.value)
    }
    this.balancer.connected(client.address, endpoint)
    const socket = createSocket(isIPv6(endpoint.ip) ? 'udp6' : 'udp4')
    const session: UdpSession = { socket, endpoint, lastActiveMs: Date.now() }
    socket.on('message', (reply, from) => {
      if (from.port !== endpoint.port) return
      session.lastActiveMs = Date.now()
      this.socket.send(reply, client.port, client.address)
    })
    // A refused endpoint (ICMP port unreachable) ends the session; the next datagram picks again.
    socket.on('error', () => this.endSession(key, session))
    this.sessions.set(key, session)
    return session
  }

  /** Ends the session for `key` (only if it is still `expected`, when given). */
  private endSession(key: string, expected?: UdpSession): void {
    const session = this.sessions.get(key)
    if (session === undefined || (expected !== undefined && session !== expected)) return
    this.sessions.delete(key)
    try {
      session.socket.close()
    } catch {
      // Closed already.
    }
  }

  private sweep(): void {
    const idleBeforeMs = Date.now() - this.sessionIdleMs
    for (const [key, session] of this.sessions) if (session.lastActiveMs < idleBeforeMs) this.endSession(key)
  }
}
