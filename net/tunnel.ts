// The peer tunnel (/shoal/tunnel/1): a TCP connection to an endpoint that only
// another peer can reach, carried on a libp2p stream to that peer (encrypted
// by the peer connection, Noise inside the private network). The caller sends
// one small header (the target ip and port); the remote peer connects to it
// locally and answers OK or a failure frame BEFORE any client byte travels, so
// the proxy can still try another endpoint; then raw bytes flow both ways,
// spliced with backpressure and half-close (net/splice.ts).
//
// Wire format: net/tunnel-wire.ts. The same stream also hands out the data
// path's key (a version-2 request, net/peer-data.ts): the faster TLS path
// between peers is authorized by this one, which only cluster members reach.
import { connect, type Socket } from 'node:net'
import type { Connection, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { Uint8ArrayList } from 'uint8arraylist'
import type { PeerHost } from './host.js'
import type { TunnelConnection, TunnelDialer } from './proxy-types.js'
import { relaySocketOptions, spliceSocketWithStream } from './splice.js'
import { decodeAnswer, decodeOfferAnswer, decodeRequest, encodeOfferAnswer, encodeTargetRequest, failureAnswer, offerRequestVersion, type DataPathOffer, type TargetRequest } from './tunnel-wire.js'

export { TunnelProtocolError } from './tunnel-wire.js'
export const tunnelProtocol = '/shoal/tunnel/1'
/** Tunnel streams one peer serves at once; the next caller gets TooManyTunnelStreamsError. */
export const tunnelStreamsServedMax = 1024
/** How long the remote peer waits for its local connect to the target. */
export const tunnelConnectTimeoutMs = 3000

export class TooManyTunnelStreamsError extends Error {
  override readonly name = 'TooManyTunnelStreamsError'
}

/** The remote peer could not connect to the target (`code` is the socket error code, e.g. ECONNREFUSED). */
export class TunnelConnectError extends Error {
  override readonly name = 'TunnelConnectError'
  constructor(message: string, readonly code: string) {
    super(message)
  }
}

/** The remote peer's allowTarget() refused the target. */
export class TunnelTargetRefusedError extends Error {
  override readonly name = 'TunnelTargetRefusedError'
}

/** The stream closed before the remote peer answered. */
export class TunnelBrokenError extends Error {
  override readonly name = 'TunnelBrokenError'
}

export interface TunnelServerOptions {
  host: PeerHost
  streamsMax?: number
  connectTimeoutMs?: number
  /** Which targets a caller may reach through this peer (say, only pod addresses); default: any. */
  allowTarget?: (ip: string, port: number, fromPeerId: string) => boolean
  /** Hands out this peer's data path (net/peer-data.ts) to callers; absent: callers keep to the tunnel. */
  dataPath?: { offer(fromPeerId: string): DataPathOffer | null }
}

/** The remote peer has no data path to offer (callers then use the tunnel stream). */
export class NoDataPathError extends Error {
  override readonly name = 'NoDataPathError'
}

/** Serves /shoal/tunnel/1: connects to the asked target locally and splices. */
export class TunnelServer {
  private readonly streamsMax: number
  private readonly live = new Set<{ stream: Stream; socket: Socket | null }>()
  /** Streams that reached their target, since start. */
  connectedTotal = 0
  /** Streams answered with a failure (refused, unreachable, over the bound), since start. */
  failedTotal = 0
  /** Data-path offers handed out, since start. */
  offersTotal = 0

  constructor(private readonly options: TunnelServerOptions) {
    this.streamsMax = options.streamsMax ?? tunnelStreamsServedMax
  }

  get active(): number {
    return this.live.size
  }

  async start(): Promise<void> {
    const streamLimits = { maxInboundStreams: this.streamsMax + 1, maxOutboundStreams: this.streamsMax + 1 }
    await this.options.host.handle(tunnelProtocol, (stream, connection) => this.serve(stream, connection.remotePeer.toString()), streamLimits)
  }

  async stop(): Promise<void> {
    await this.options.host.unhandle(tunnelProtocol)
    for (const pair of this.live) {
      pair.stream.abort(new TunnelBrokenError('this peer stopped serving tunnels'))
      pair.socket?.destroy()
    }
    this.live.clear()
  }

  private serve(stream: Stream, fromPeerId: string): void {
    if (this.live.size >= this.streamsMax) {
      this.fail(stream, new TooManyTunnelStreamsError(`this peer already serves ${this.streamsMax} tunnel streams, its limit`))
      return
    }
    const pair: { stream: Stream; socket: Socket | null } = { stream, socket: null }
    this.live.add(pair)
    const buf = new Uint8ArrayList()
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
      buf.append(evt.data)
      let request: ReturnType<typeof decodeRequest>
      try {
        request = decodeRequest(buf)
      } catch (err) {
        this.live.delete(pair)
        stream.abort(err as Error)
        return
      }
      if (request === null) return
      // Bytes from now on wait in the stream's read buffer until the splice listens.
      stream.removeEventListener('message', onMessage)
      if ('offer' in request) this.answerOffer(pair, fromPeerId)
      else this.connectTarget(pair, request, fromPeerId)
    }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('close', () => this.live.delete(pair), { once: true })
  }

  /** A version-2 request: this peer's data path for the caller, or a failure when it has none. */
  private answerOffer(pair: { stream: Stream; socket: Socket | null }, fromPeerId: string): void {
    this.live.delete(pair)
    const offer = this.options.dataPath?.offer(fromPeerId) ?? null
    if (offer === null) {
      this.fail(pair.stream, new NoDataPathError('this peer offers no direct data path'))
      return
    }
    this.offersTotal++
    pair.stream.send(encodeOfferAnswer(offer))
    pair.stream.close({ signal: AbortSignal.timeout(tunnelConnectTimeoutMs) }).catch((e: Error) => pair.stream.abort(e))
  }

  private connectTarget(pair: { stream: Stream; socket: Socket | null }, request: TargetRequest, fromPeerId: string): void {
    const { stream } = pair
    const { ip, port } = request
    if (this.options.allowTarget !== undefined && !this.options.allowTarget(ip, port, fromPeerId)) {
      this.live.delete(pair)
      this.fail(stream, new TunnelTargetRefusedError(`this peer does not forward to ${ip}:${port}`))
      return
    }
    const socket = connect({ host: ip, port, ...relaySocketOptions, timeout: this.options.connectTimeoutMs ?? tunnelConnectTimeoutMs })
    pair.socket = socket
    const failed = (err: Error & { code?: string }): void => {
      socket.destroy()
      this.live.delete(pair)
      this.fail(stream, new TunnelConnectError(`connecting to ${ip}:${port} failed: ${err.message}`, err.code ?? 'ETIMEDOUT'))
    }
    socket.once('error', failed)
    socket.once('timeout', () => failed(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })))
    socket.once('connect', () => {
      socket.removeListener('error', failed)
      socket.removeAllListeners('timeout')
      socket.setTimeout(0)
      if (stream.status !== 'open') {
        socket.destroy()
        this.live.delete(pair)
        return
      }
      this.connectedTotal++
      stream.send(Uint8Array.of(0))
      if (request.leftover.byteLength > 0) socket.write(request.leftover)
      spliceSocketWithStream(socket, stream, () => this.live.delete(pair))
    })
  }

  private fail(stream: Stream, err: Error): void {
    this.failedTotal++
    try {
      stream.send(failureAnswer(err))
      stream.close({ signal: AbortSignal.timeout(tunnelConnectTimeoutMs) }).catch((e: Error) => stream.abort(e))
    } catch (e) {
      stream.abort(e as Error)
    }
  }
}

class Libp2pTunnelConnection implements TunnelConnection {
  readonly path = 'tunnel'

  constructor(
    private readonly stream: Stream,
    private readonly leftover: Uint8Array,
  ) {}

  spliceWith(socket: Socket): Socket {
    spliceSocketWithStream(socket, this.stream, () => undefined, this.leftover)
    socket.resume()
    return socket
  }

  abort(reason: Error): void {
    this.stream.abort(reason)
  }
}

/** Waits for the remote peer's answer; resolves with it (OK and the bytes after it, or an offer) or rejects with its failure. */
function readAnswer<T>(stream: Stream, signal: AbortSignal, decode: (buf: Uint8ArrayList) => T | Error | null): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const buf = new Uint8ArrayList()
    const done = (): void => {
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onClose)
      signal.removeEventListener('abort', onAbort)
    }
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
      buf.append(evt.data)
      try {
        const answer = decode(buf)
        if (answer === null) return
        done()
        if (answer instanceof Error) reject(answer)
        else resolve(answer)
      } catch (err) {
        done()
        reject(err as Error)
      }
    }
    const onClose = (): void => {
      done()
      reject(new TunnelBrokenError('the tunnel stream closed before the remote peer answered'))
    }
    const onAbort = (): void => {
      done()
      reject(signal.reason instanceof Error ? signal.reason : new TunnelBrokenError('the tunnel dial was aborted'))
    }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('close', onClose)
    signal.addEventListener('abort', onAbort, { once: true })
    if (signal.aborted) onAbort()
  })
}

/** The caller side: ServiceProxy's TunnelDialer on a libp2p host. */
export class TunnelClient implements TunnelDialer {
  constructor(
    private readonly host: PeerHost,
    private readonly streamsMax = tunnelStreamsServedMax,
  ) {}

  async dial(viaPeerId: string, ip: string, port: number, signal: AbortSignal): Promise<TunnelConnection> {
    const stream = await this.host.dialProtocol(peerIdFromString(viaPeerId), tunnelProtocol, { signal, maxOutboundStreams: this.streamsMax + 1 })
    try {
      stream.send(encodeTargetRequest(ip, port))
      const answer = await readAnswer<{ leftover: Uint8Array }>(stream, signal, decodeAnswer)
      return new Libp2pTunnelConnection(stream, answer.leftover)
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }

  /**
   * Asks `viaPeerId` for its data path: the offer, and the address this peer reaches it at
   * (the remote address of the libp2p connection: where its host answers us).
   */
  async requestOffer(viaPeerId: string, signal: AbortSignal): Promise<{ offer: DataPathOffer; address: string }> {
    const connection: Connection = await this.host.dial(peerIdFromString(viaPeerId), { signal })
    const address = connection.remoteAddr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value
    if (address === undefined) throw new NoDataPathError(`peer ${viaPeerId} is reached at ${connection.remoteAddr.toString()}, not an IP address`)
    const stream = await connection.newStream(tunnelProtocol, { signal, maxOutboundStreams: this.streamsMax + 1 })
    try {
      stream.send(Uint8Array.of(offerRequestVersion))
      const offer = await readAnswer<DataPathOffer>(stream, signal, decodeOfferAnswer)
      await stream.close({ signal }).catch(() => undefined)
      return { offer, address }
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }
}
