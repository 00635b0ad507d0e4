// The peer data path, caller side: the service proxy's TunnelDialer for
// endpoints behind other peers. It asks the peer once, on /shoal/tunnel/1,
// for its data path (a TLS port and a pre-shared key for us, cached per
// peer), then opens one TLS 1.3 connection per client connection to that
// peer's host (the address its libp2p connection comes from) and sends the
// target there (net/peer-data.ts). When the peer offers none (an older peer)
// or the connection fails (a firewall, a restarted peer), the connection goes
// through the tunnel stream instead, said once in the log, and the peer is
// tried directly again after directPathRetryAfterMs.
import { connect, type Socket } from 'node:net'
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { Uint8ArrayList } from 'uint8arraylist'
import { peerDataTlsOptions } from './peer-data.js'
import type { TunnelConnection, TunnelDialer } from './proxy-types.js'
import { RemoteError } from './rpc.js'
import { adoptAcceptedSocket, dataEventRelay, relaySocketOptions, resetSocket, spliceSockets } from './splice.js'
import { TunnelBrokenError } from './tunnel.js'
import { decodeAnswer, encodeTargetRequest, type DataPathOffer } from './tunnel-wire.js'

/** How long a TCP connect plus TLS handshake to a peer may take before the tunnel is used instead. */
export const directConnectTimeoutMs = 1000
/** How long asking a peer for its offer (on /shoal/tunnel/1) may take. */
export const offerRequestTimeoutMs = 2000
/** After the direct path to a peer failed, its connections use the tunnel this long before it is tried again. */
export const directPathRetryAfterMs = 30_000

/** The tunnel side this dialer falls back to and asks for offers (net/tunnel.ts's TunnelClient). */
export interface OfferingTunnel extends TunnelDialer {
  requestOffer(viaPeerId: string, signal: AbortSignal): Promise<{ offer: DataPathOffer; address: string }>
}

export interface PeerDataDialerOptions {
  tunnel: OfferingTunnel
  log: (line: string) => void
  connectTimeoutMs?: number
  retryAfterMs?: number
}

type Route = { offer: DataPathOffer; address: string }

class DirectConnection implements TunnelConnection {
  readonly path = 'direct'

  constructor(
    private readonly tls: TLSSocket,
    private readonly leftover: Uint8Array,
  ) {}

  spliceWith(client: Socket): Socket {
    const relayClient = adoptAcceptedSocket(client)
    if (this.leftover.byteLength > 0) relayClient.socket.write(this.leftover)
    spliceSockets(relayClient, dataEventRelay(this.tls), () => undefined)
    return relayClient.socket
  }

  abort(): void {
    resetSocket(this.tls)
  }
}

/** `promise`, or the signal's reason if it aborts first. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'))
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'))
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/** A TLS connection to the route, resolved after the handshake; rejects on error, timeout or abort. */
function connectTls(route: Route, timeoutMs: number, signal: AbortSignal): Promise<TLSSocket> {
  return new Promise<TLSSocket>((resolve, reject) => {
    const raw = connect({ host: route.address, port: route.offer.port, ...relaySocketOptions })
    // allowHalfOpen reaches the TLSSocket (Node's tls.connect passes it on; its types omit it). Its
    // highWaterMark stays Node's: 256 KiB here as well as on the server's side measured 3-5 times slower.
    const options: ConnectionOptions & { allowHalfOpen: boolean } = {
      socket: raw,
      ...peerDataTlsOptions,
      allowHalfOpen: true,

      pskCallback: () => ({ psk: Buffer.from(route.offer.key), identity: route.offer.identity }),
      checkServerIdentity: () => undefined,
    }
    const tls = tlsConnect(options)
    const done = (err: Error | null): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      raw.removeListener('error', done)
      tls.removeListener('error', done)
      if (err === null) return resolve(tls)
      tls.destroy()
      raw.destroy()
      reject(err)
    }
    const onAbort = (): void => done(signal.reason instanceof Error ? signal.reason : new Error('aborted'))
    const timer = setTimeout(() => done(new Error(`no TLS handshake within ${timeoutMs} ms`)), timeoutMs)
    raw.once('error', done)
    tls.once('error', done)
    tls.once('secureConnect', () => done(null))
    signal.addEventListener('abort', onAbort, { once: true })
    if (signal.aborted) onAbort()
  })
}

/** Sends the target request and reads the answer: the bytes after an OK, or the remote failure. */
function requestTarget(tls: TLSSocket, ip: string, port: number, signal: AbortSignal): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const buf = new Uint8ArrayList()
    const done = (err: Error | null, leftover?: Uint8Array): void => {
      tls.removeListener('data', onData)
      tls.removeListener('close', onClose)
      tls.removeListener('error', onError)
      signal.removeEventListener('abort', onAbort)
      tls.pause()
      if (err === null) resolve(leftover!)
      else reject(err)
    }
    const onData = (chunk: Buffer): void => {
      buf.append(chunk)
      try {
        const answer = decodeAnswer(buf)
        if (answer === null) return
        if (answer instanceof RemoteError) done(answer)
        else done(null, answer.leftover)
      } catch (err) {
        done(err as Error)
      }
    }
    const onClose = (): void => done(new TunnelBrokenError('the data connection closed before the remote peer answered'))
    const onError = (err: Error): void => done(err)
    const onAbort = (): void => done(signal.reason instanceof Error ? signal.reason : new Error('aborted'))
    tls.on('data', onData)
    tls.once('close', onClose)
    tls.once('error', onError)
    signal.addEventListener('abort', onAbort, { once: true })
    tls.write(encodeTargetRequest(ip, port))
  })
}

export class PeerDataDialer implements TunnelDialer {
  /** Per peer: its route, being asked for or known. At most one per peer of the cluster. */
  private readonly routes = new Map<string, Promise<Route>>()
  /** Per peer whose direct path failed: until when its connections take the tunnel. */
  private readonly tunnelOnlyUntil = new Map<string, number>()
  /** Peers whose current path (direct or tunnel) the log has told. */
  private readonly told = new Map<string, 'direct' | 'tunnel'>()

  constructor(private readonly o: PeerDataDialerOptions) {}

  async dial(viaPeerId: string, ip: string, port: number, signal: AbortSignal): Promise<TunnelConnection> {
    if ((this.tunnelOnlyUntil.get(viaPeerId) ?? 0) > Date.now()) return this.viaTunnel(viaPeerId, ip, port, signal)
    let tls: TLSSocket
    try {
      tls = await this.connectPeer(viaPeerId, signal)
    } catch (err) {
      if (signal.aborted) throw err
      this.fallBack(viaPeerId, (err as Error).message)
      return this.viaTunnel(viaPeerId, ip, port, signal)
    }
    try {
      const leftover = await requestTarget(tls, ip, port, signal)
      this.tell(viaPeerId, 'direct', `endpoints behind peer ${viaPeerId} are reached over its direct TLS data path (${tls.remoteAddress ?? '?'}:${tls.remotePort ?? '?'})`)
      return new DirectConnection(tls, leftover)
    } catch (err) {
      resetSocket(tls)
      throw err
    }
  }

  private viaTunnel(viaPeerId: string, ip: string, port: number, signal: AbortSignal): Promise<TunnelConnection> {
    return this.o.tunnel.dial(viaPeerId, ip, port, signal)
  }

  /** A TLS connection to the peer's data path; a cached route that fails is asked for again once. */
  private async connectPeer(viaPeerId: string, signal: AbortSignal): Promise<TLSSocket> {
    const timeoutMs = this.o.connectTimeoutMs ?? directConnectTimeoutMs
    const cached = this.routes.get(viaPeerId)
    const route = await untilAborted(cached ?? this.ask(viaPeerId), signal)
    try {
      return await connectTls(route, timeoutMs, signal)
    } catch (err) {
      if (signal.aborted) throw err
      if (this.routes.get(viaPeerId) === cached) this.routes.delete(viaPeerId)
      // A restarted peer has a new port or new keys: ask once more before giving up on it.
      if (cached === undefined) throw err
      return connectTls(await untilAborted(this.ask(viaPeerId), signal), timeoutMs, signal)
    }
  }

  /** Asks the peer for its offer, shared by the connections waiting for it: on a deadline of its own, not one client's. */
  private ask(viaPeerId: string): Promise<Route> {
    const asked = this.o.tunnel.requestOffer(viaPeerId, AbortSignal.timeout(offerRequestTimeoutMs))
    this.routes.set(viaPeerId, asked)
    asked.catch(() => {
      if (this.routes.get(viaPeerId) === asked) this.routes.delete(viaPeerId)
    })
    return asked
  }

  private fallBack(viaPeerId: string, reason: string): void {
    const retryAfterMs = this.o.retryAfterMs ?? directPathRetryAfterMs
    this.tunnelOnlyUntil.set(viaPeerId, Date.now() + retryAfterMs)
    this.tell(viaPeerId, 'tunnel', `no direct data path to peer ${viaPeerId} (${reason}); its endpoints are reached through /shoal/tunnel/1, the direct path is tried again in ${retryAfterMs / 1000} s`)
  }

  /** Logs a peer's path when it changes, so a fallback is said once, not per connection. */
  private tell(viaPeerId: string, path: 'direct' | 'tunnel', line: string): void {
    if (this.told.get(viaPeerId) === path) return
    this.told.set(viaPeerId, path)
    this.o.log(`service proxy: ${line}`)
  }
}
