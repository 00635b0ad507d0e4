// The peer tunnel (/shoal/tunnel/1): a TCP connection to an endpoint that only
// another peer can reach, carried on a libp2p stream to that peer (encrypted
// by the peer connection, Noise inside the private network). The caller sends
// one small header (the target ip and port); the remote peer connects to it
// locally and answers OK or a failure frame BEFORE any client byte travels, so
// the proxy can still try another endpoint; then raw bytes flow both ways,
// spliced with backpressure and half-close (net/splice.ts).
//
// Wire format. Request: [version=1][ip length u8][ip ASCII][port u16 BE].
// Answer: [0] for OK, or [1][length u16 BE][JSON {name, message, code}].
import { connect, isIP, type Socket } from 'node:net'
import type { Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { Uint8ArrayList } from 'uint8arraylist'
import type { PeerHost } from './host.js'
import type { TunnelConnection, TunnelDialer } from './proxy-types.js'
import { RemoteError } from './rpc.js'
import { relaySocketOptions, spliceSocketWithStream } from './splice.js'

export const tunnelProtocol = '/shoal/tunnel/1'
/** Tunnel streams one peer serves at once; the next caller gets TooManyTunnelStreamsError. */
export const tunnelStreamsServedMax = 1024
/** How long the remote peer waits for its local connect to the target. */
export const tunnelConnectTimeoutMs = 3000
/** Longest request header (version, length, an IPv6 address, port); more is a protocol error. */
const requestBytesMax = 2 + 45 + 2
/** Longest failure answer a caller reads. */
const answerBytesMax = 4096
const version = 1

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

export class TunnelProtocolError extends Error {
  override readonly name = 'TunnelProtocolError'
}

function encodeRequest(ip: string, port: number): Uint8Array {
  const ipBytes = Buffer.from(ip, 'ascii')
  const out = Buffer.alloc(2 + ipBytes.byteLength + 2)
  out[0] = version
  out[1] = ipBytes.byteLength
  ipBytes.copy(out, 2)
  out.writeUInt16BE(port, 2 + ipBytes.byteLength)
  return out
}

/** The request and what followed it, or null while incomplete; throws on a malformed one. */
function decodeRequest(buf: Uint8ArrayList): { ip: string; port: number; leftover: Uint8Array } | null {
  if (buf.byteLength < 2) return null
  if (buf.get(0) !== version) throw new TunnelProtocolError(`unknown tunnel version ${buf.get(0)}`)
  const ipLength = buf.get(1)
  if (ipLength > requestBytesMax - 4) throw new TunnelProtocolError('tunnel request too long')
  if (buf.byteLength < 2 + ipLength + 2) return null
  const bytes = buf.subarray()
  const ip = Buffer.from(bytes.subarray(2, 2 + ipLength)).toString('ascii')
  const port = (bytes[2 + ipLength]! << 8) | bytes[3 + ipLength]!
  if (isIP(ip) === 0 || port === 0) throw new TunnelProtocolError(`bad tunnel target ${ip}:${port}`)
  return { ip, port, leftover: bytes.subarray(4 + ipLength) }
}

function failureAnswer(err: Error & { code?: unknown }): Uint8Array {
  const body = Buffer.from(JSON.stringify({ name: err.name, message: err.message, code: typeof err.code === 'string' ? err.code : undefined }))
  const out = Buffer.alloc(3 + body.byteLength)
  out[0] = 1
  out.writeUInt16BE(body.byteLength, 1)
  body.copy(out, 3)
  return out
}

/** OK (with what followed it), a failure, or null while incomplete. */
function decodeAnswer(buf: Uint8ArrayList): { leftover: Uint8Array } | RemoteError | null {
  if (buf.byteLength < 1) return null
  const bytes = buf.subarray()
  if (bytes[0] === 0) return { leftover: bytes.subarray(1) }
  if (bytes[0] !== 1) throw new TunnelProtocolError(`unknown tunnel answer ${bytes[0]}`)
  if (bytes.byteLength < 3) return null
  const length = (bytes[1]! << 8) | bytes[2]!
  if (length > answerBytesMax) throw new TunnelProtocolError('tunnel failure answer too long')
  if (bytes.byteLength < 3 + length) return null
  const f = JSON.parse(Buffer.from(bytes.subarray(3, 3 + length)).toString()) as { name: string; message: string; code?: string }
  return new RemoteError(f.name, f.message, f.code === undefined ? {} : { code: f.code })
}

export interface TunnelServerOptions {
  host: PeerHost
  streamsMax?: number
  connectTimeoutMs?: number
  /** Which targets a caller may reach through this peer (say, only pod addresses); default: any. */
  allowTarget?: (ip: string, port: number, fromPeerId: string) => boolean
}

/** Serves /shoal/tunnel/1: connects to the asked target locally and splices. */
export class TunnelServer {
  private readonly streamsMax: number
  private readonly live = new Set<{ stream: Stream; socket: Socket | null }>()
  /** Streams that reached their target, since start. */
  connectedTotal = 0
  /** Streams answered with a failure (refused, unreachable, over the bound), since start. */
  failedTotal = 0

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
      this.connectTarget(pair, request, fromPeerId)
    }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('close', () => this.live.delete(pair), { once: true })
  }

  private connectTarget(pair: { stream: Stream; socket: Socket | null }, request: { ip: string; port: number; leftover: Uint8Array }, fromPeerId: string): void {
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
  constructor(
    private readonly stream: Stream,
    private readonly leftover: Uint8Array,
  ) {}

  spliceWith(socket: Socket): void {
    spliceSocketWithStream(socket, this.stream, () => undefined, this.leftover)
  }

  abort(reason: Error): void {
    this.stream.abort(reason)
  }
}

/** Waits for the remote peer's answer; resolves with the bytes after it or rejects with its failure. */
function readAnswer(stream: Stream, signal: AbortSignal): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const buf = new Uint8ArrayList()
    const done = (): void => {
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onClose)
      signal.removeEventListener('abort', onAbort)
    }
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
      buf.append(evt.data)
      try {
        const answer = decodeAnswer(buf)
        if (answer === null) return
        done()
        if (answer instanceof Error) reject(answer)
        else resolve(answer.leftover)
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
      stream.send(encodeRequest(ip, port))
      const leftover = await readAnswer(stream, signal)
      return new Libp2pTunnelConnection(stream, leftover)
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }
}
