// The peer data path, server side: a TLS 1.3 listener (one port per peer)
// that connects callers to endpoints this peer reaches, as /shoal/tunnel/1
// does, but with one encryption layer run by OpenSSL on the socket instead of
// pnet + Noise + Yamux in JavaScript (net/README.md has the figures).
//
// Authentication is a pre-shared key per calling peer, handed out only on a
// /shoal/tunnel/1 stream (net/tunnel.ts, a version-2 request): only cluster
// members reach that. A connection without a key we issued fails the TLS
// handshake and reaches nothing. After the handshake the caller sends the
// target request of net/tunnel-wire.ts; we connect and answer OK or a failure
// before any client byte travels, then splice with backpressure and half-close.
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { createServer, type Server, type TLSSocket } from 'node:tls'
import { Uint8ArrayList } from 'uint8arraylist'
import { connectRelayUpstream, dataEventRelay, relayHighWaterMarkBytes, resetSocket, spliceSockets } from './splice.js'
import { TunnelConnectError, TunnelTargetRefusedError, TooManyTunnelStreamsError } from './tunnel.js'
import { decodeTargetRequest, failureAnswer, type DataPathOffer, type TargetRequest } from './tunnel-wire.js'

/** TLS 1.3 with AES-128-GCM (AES-NI): a PSK's hash must be the suite's, SHA-256. */
export const peerDataTlsOptions = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256' } as const
/** Connections in their TLS handshake, header or target connect at once; past it, new ones are dropped. */
export const peerDataPendingMax = 256
/** Spliced connections at once; past it, callers get TooManyTunnelStreamsError. */
export const peerDataConnectionsMax = 16_384
/** From accept to the target request read: a caller slower than this is dropped. */
export const peerDataHandshakeTimeoutMs = 5000
/** How long we wait for our local connect to the target. */
export const peerDataConnectTimeoutMs = 3000
/** Keys issued at once (one per calling peer); past it the oldest is forgotten and its peer asks again. */
export const peerDataKeysMax = 4096
const keyBytes = 32

export interface PeerDataServerOptions {
  /** Where to listen: this peer's host address (or 0.0.0.0). */
  host: string
  /** 0 or absent: any free port (announced through the offer). */
  port?: number
  allowTarget?: (ip: string, port: number, fromPeerId: string) => boolean
  pendingMax?: number
  connectionsMax?: number
  handshakeTimeoutMs?: number
  connectTimeoutMs?: number
}

/** The peer whose key a TLS socket's handshake used (set in the PSK callback). */
const callerOf = new WeakMap<TLSSocket, string>()

interface IssuedKey {
  identity: string
  key: Buffer
  peerId: string
}

export class PeerDataServer {
  private readonly byIdentity = new Map<string, IssuedKey>()
  private readonly byPeer = new Map<string, IssuedKey>()
  private readonly sockets = new Set<Socket>()
  private pendingCount = 0
  private spliced = 0
  /** Connections spliced to their target, since start. */
  connectedTotal = 0
  /** Connections dropped before a target: failed handshakes (no or a wrong key), timeouts, over the pending bound. */
  droppedTotal = 0
  /** Target requests answered with a failure, since start. */
  failedTotal = 0

  private constructor(
    private readonly server: Server,
    private readonly options: PeerDataServerOptions,
  ) {}

  static async start(options: PeerDataServerOptions): Promise<PeerDataServer> {
    let self: PeerDataServer | null = null
    const server = createServer({
      ...peerDataTlsOptions,
      allowHalfOpen: true,
      highWaterMark: relayHighWaterMarkBytes,
      handshakeTimeout: options.handshakeTimeoutMs ?? peerDataHandshakeTimeoutMs,
      pskCallback: (socket, identity) => {
        const issued = self?.byIdentity.get(identity)
        if (issued === undefined) return null
        callerOf.set(socket, issued.peerId)
        return issued.key
      },
    })
    self = new PeerDataServer(server, options)
    const it = self
    server.on('connection', (raw: Socket) => it.accepted(raw))
    server.on('secureConnection', (tls: TLSSocket) => it.secured(tls))
    // With a listener here Node leaves the socket open (a handshake timeout would hold it forever): close it.
    server.on('tlsClientError', (_err: Error, tls: TLSSocket) => {
      it.droppedTotal++
      resetSocket(tls)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: options.host, port: options.port ?? 0 }, () => {
        server.removeListener('error', reject)
        server.on('error', () => undefined)
        resolve()
      })
    })
    return self
  }

  get port(): number {
    const address = this.server.address()
    return typeof address === 'object' && address !== null ? address.port : 0
  }

  /** Connections in handshake, header or connect now. */
  get pending(): number {
    return this.pendingCount
  }

  /** Connections spliced now. */
  get active(): number {
    return this.spliced
  }

  /** The offer for `fromPeerId` (the same key while it stays issued). */
  offer(fromPeerId: string): DataPathOffer {
    let issued = this.byPeer.get(fromPeerId)
    if (issued === undefined) {
      if (this.byPeer.size >= peerDataKeysMax) this.forget(this.byPeer.values().next().value!)
      issued = { identity: randomBytes(12).toString('hex'), key: randomBytes(keyBytes), peerId: fromPeerId }
      this.byPeer.set(fromPeerId, issued)
      this.byIdentity.set(issued.identity, issued)
    }
    return { port: this.port, identity: issued.identity, key: issued.key }
  }

  /** Forgets `peerId`'s key: its connections from now on fail the handshake until it asks again. */
  revoke(peerId: string): void {
    const issued = this.byPeer.get(peerId)
    if (issued !== undefined) this.forget(issued)
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
    await closed
  }

  private forget(issued: IssuedKey): void {
    this.byPeer.delete(issued.peerId)
    this.byIdentity.delete(issued.identity)
  }

  /** A TCP connection before its handshake: counted against the pending bound. */
  private accepted(raw: Socket): void {
    raw.on('error', () => undefined)
    // TLS records (16 KiB) are smaller than loopback's MSS: with Nagle each would wait for an ACK.
    raw.setNoDelay(true)
    if (this.pendingCount >= (this.options.pendingMax ?? peerDataPendingMax)) {
      this.droppedTotal++
      raw.destroy()
      return
    }
    this.pendingCount++
    this.sockets.add(raw)
    let pending = true
    const settle = (): void => {
      if (!pending) return
      pending = false
      this.pendingCount--
    }
    ;(raw as Socket & { settlePending?: () => void }).settlePending = settle
    raw.once('close', () => {
      settle()
      this.sockets.delete(raw)
    })
  }

  /** After the handshake: read the target request within the handshake timeout. */
  private secured(tls: TLSSocket): void {
    const raw = (tls as TLSSocket & { _parent?: Socket })._parent
    const settle = (raw as (Socket & { settlePending?: () => void }) | undefined)?.settlePending ?? (() => undefined)
    tls.on('error', () => undefined)
    const fromPeerId = callerOf.get(tls) ?? ''
    tls.setTimeout(this.options.handshakeTimeoutMs ?? peerDataHandshakeTimeoutMs, () => {
      this.droppedTotal++
      resetSocket(tls)
    })
    const buf = new Uint8ArrayList()
    const onData = (chunk: Buffer): void => {
      buf.append(chunk)
      let request: TargetRequest | null
      try {
        request = decodeTargetRequest(buf)
      } catch {
        this.droppedTotal++
        resetSocket(tls)
        return
      }
      if (request === null) return
      tls.removeListener('data', onData)
      tls.pause()
      tls.setTimeout(0)
      this.connectTarget(tls, request, fromPeerId, settle)
    }
    tls.on('data', onData)
    tls.once('close', settle)
  }

  private connectTarget(tls: TLSSocket, request: TargetRequest, fromPeerId: string, settle: () => void): void {
    const { ip, port } = request
    const refuse = (err: Error): void => {
      this.failedTotal++
      settle()
      tls.end(failureAnswer(err))
    }
    if (this.spliced >= (this.options.connectionsMax ?? peerDataConnectionsMax)) return refuse(new TooManyTunnelStreamsError(`this peer already splices ${this.spliced} data connections, its limit`))
    if (this.options.allowTarget !== undefined && !this.options.allowTarget(ip, port, fromPeerId)) return refuse(new TunnelTargetRefusedError(`this peer does not forward to ${ip}:${port}`))
    const upstream = connectRelayUpstream(ip, port)
    const target = upstream.socket
    const timer = setTimeout(() => failed(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), this.options.connectTimeoutMs ?? peerDataConnectTimeoutMs)
    const failed = (err: Error & { code?: string }): void => {
      clearTimeout(timer)
      target.destroy()
      refuse(new TunnelConnectError(`connecting to ${ip}:${port} failed: ${err.message}`, err.code ?? 'ETIMEDOUT'))
    }
    target.once('error', failed)
    target.once('connect', () => {
      clearTimeout(timer)
      target.removeListener('error', failed)
      settle()
      if (tls.destroyed) return void target.destroy()
      this.connectedTotal++
      this.spliced++
      this.sockets.add(target)
      tls.write(Uint8Array.of(0))
      if (request.leftover.byteLength > 0) target.write(request.leftover)
      spliceSockets(dataEventRelay(tls), upstream, () => {
        this.spliced--
        this.sockets.delete(target)
      })
    })
  }
}
