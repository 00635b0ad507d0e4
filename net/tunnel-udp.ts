// The UDP peer tunnel (/shoal/tunnel-udp/1): one UDP session (one client
// ip:port talking to a service address) to an endpoint only another peer can
// reach, carried on one libp2p stream to that peer. The caller asks for the
// target; the remote peer opens a UDP socket connected to it and answers OK or
// a failure (over its session bound, a refused target) BEFORE any datagram
// travels, so the proxy can pick another endpoint for the session. Then every
// frame either way is exactly one datagram (boundaries kept, empty ones too).
//
// A protocol of its own rather than a mode of /shoal/tunnel/1: the data phase
// is framed datagrams, not a byte splice, so the two share nothing past the
// header; libp2p limits streams per protocol, so UDP sessions (many, short,
// cheap) get a bound that TCP connections do not eat into; and a peer without
// UDP support refuses the protocol cleanly at negotiation.
//
// Wire format, every message a frame (unsigned-varint length, net/frames.ts):
// request [version=1][port u16 BE][ip ASCII]; answer [0] OK or [1][JSON {name,
// message, code}]; then datagrams. UDP has no backpressure: a datagram that
// finds the stream's write buffer over udpTunnelQueuedBytesMax is dropped.
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { isIP, isIPv6 } from 'node:net'
import type { Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { Uint8ArrayList } from 'uint8arraylist'
import { encodeFrames } from './frames.js'
import type { PeerHost } from './host.js'
import type { DatagramTunnel, DatagramTunnelHandlers, UdpTunnelDialer } from './proxy-types.js'
import { RemoteError } from './rpc.js'
import { TunnelBrokenError, TunnelProtocolError, TunnelTargetRefusedError } from './tunnel.js'

export const udpTunnelProtocol = '/shoal/tunnel-udp/1'
/** UDP sessions one peer serves at once (each holds a socket); the next caller gets TooManyUdpTunnelSessionsError. */
export const udpTunnelSessionsServedMax = 1024
/** Largest datagram carried (UDP's own limit); a larger frame is a protocol error. */
export const udpTunnelDatagramBytesMax = 65_535
/**
 * The serving peer closes a session with no datagram either way for this long. Longer than the
 * proxy's own udpSessionIdleMs (30 s), which normally ends sessions first: this one catches callers
 * that vanished without closing.
 */
export const udpTunnelSessionIdleMs = 60_000
/** Bytes a stream may hold unsent before further datagrams are dropped (UDP has no backpressure). */
export const udpTunnelQueuedBytesMax = 256 * 1024
/** What one read may hold: a partial datagram plus one arriving chunk (Yamux's stream window is at most 16 MiB). */
const readBufferBytesMax = 16 * 1024 * 1024 + udpTunnelDatagramBytesMax
/** How long a failure answer or an idle close may take before the stream is reset. */
const closeTimeoutMs = 3000
const version = 1

export class TooManyUdpTunnelSessionsError extends Error {
  override readonly name = 'TooManyUdpTunnelSessionsError'
}

/** Splits a stream into frames, empty ones included (libp2p's decoder skips those; an empty datagram is still one). */
class DatagramDecoder {
  private readonly buffer = new Uint8ArrayList()

  /** The frames completed by `chunk`, in order. */
  decode(chunk: Uint8Array | Uint8ArrayList): Uint8Array[] {
    const frames: Uint8Array[] = []
    this.buffer.append(chunk)
    if (this.buffer.byteLength > readBufferBytesMax) throw new TunnelProtocolError('udp tunnel read buffer over its bound')
    for (;;) {
      let length = 0
      let lengthBytes = 0
      for (let shift = 0; ; shift += 7) {
        if (lengthBytes >= this.buffer.byteLength) return frames
        const byte = this.buffer.get(lengthBytes++)
        length += (byte & 0x7f) * 2 ** shift
        if ((byte & 0x80) === 0) break
        if (lengthBytes >= 3) throw new TunnelProtocolError('udp tunnel frame length too long')
      }
      if (length > udpTunnelDatagramBytesMax) throw new TunnelProtocolError(`udp tunnel frame of ${length} bytes, over ${udpTunnelDatagramBytesMax}`)
      if (this.buffer.byteLength < lengthBytes + length) return frames
      frames.push(this.buffer.subarray(lengthBytes, lengthBytes + length))
      this.buffer.consume(lengthBytes + length)
    }
  }
}

/** Calls onFrame for every frame; a malformed one resets the stream. The remote's close of its side closes ours. */
function readDatagrams(stream: Stream, onFrame: (frame: Uint8Array) => void, onClose: (error: Error | undefined) => void): void {
  const decoder = new DatagramDecoder()
  stream.addEventListener('message', (evt) => {
    try {
      for (const frame of decoder.decode(evt.data)) onFrame(frame)
    } catch (err) {
      stream.abort(err as Error)
    }
  })
  stream.addEventListener('remoteCloseWrite', () => {
    stream.close({ signal: AbortSignal.timeout(closeTimeoutMs) }).catch((e: Error) => stream.abort(e))
  })
  stream.addEventListener('close', (evt) => onClose(evt.error))
}

/** Queues one datagram on the stream, or returns false (closed, too large, or the write buffer is over its bound). */
function sendDatagram(stream: Stream, datagrams: readonly Uint8Array[]): boolean {
  if (stream.writeStatus !== 'writable' || stream.writeBufferLength > udpTunnelQueuedBytesMax) return false
  if (datagrams.some((d) => d.byteLength > udpTunnelDatagramBytesMax)) return false
  stream.send(encodeFrames(datagrams))
  return true
}

function encodeRequest(ip: string, port: number): Uint8Array {
  const ipBytes = Buffer.from(ip, 'ascii')
  const out = Buffer.alloc(3 + ipBytes.byteLength)
  out[0] = version
  out.writeUInt16BE(port, 1)
  ipBytes.copy(out, 3)
  return out
}

function decodeRequest(frame: Uint8Array): { ip: string; port: number } {
  if (frame.byteLength < 4 || frame.byteLength > 3 + 45) throw new TunnelProtocolError('malformed udp tunnel request')
  if (frame[0] !== version) throw new TunnelProtocolError(`unknown udp tunnel version ${frame[0]}`)
  const port = (frame[1]! << 8) | frame[2]!
  const ip = Buffer.from(frame.subarray(3)).toString('ascii')
  if (isIP(ip) === 0 || port === 0) throw new TunnelProtocolError(`bad udp tunnel target ${ip}:${port}`)
  return { ip, port }
}

function failureAnswer(err: Error & { code?: unknown }): Uint8Array {
  const body = Buffer.from(JSON.stringify({ name: err.name, message: err.message, code: typeof err.code === 'string' ? err.code : undefined }))
  return Buffer.concat([Uint8Array.of(1), body])
}

/** null for OK, else the remote's failure. */
function decodeAnswer(frame: Uint8Array): RemoteError | null {
  if (frame.byteLength === 1 && frame[0] === 0) return null
  if (frame[0] !== 1 || frame.byteLength > 4096) throw new TunnelProtocolError('malformed udp tunnel answer')
  const f = JSON.parse(Buffer.from(frame.subarray(1)).toString()) as { name: string; message: string; code?: string }
  return new RemoteError(f.name, f.message, f.code === undefined ? {} : { code: f.code })
}

export interface UdpTunnelServerOptions {
  host: PeerHost
  sessionsMax?: number
  sessionIdleMs?: number
  /** Which targets a caller may reach through this peer; default: any. */
  allowTarget?: (ip: string, port: number, fromPeerId: string) => boolean
}

interface ServedSession {
  stream: Stream
  socket: UdpSocket | null
  state: 'asking' | 'connecting' | 'open' | 'ended'
  lastActiveMs: number
}

/** Serves /shoal/tunnel-udp/1: a connected UDP socket per stream, datagrams framed both ways. */
export class UdpTunnelServer {
  private readonly sessionsMax: number
  private readonly sessionIdleMs: number
  private readonly live = new Set<ServedSession>()
  private sweepTimer: ReturnType<typeof setInterval> | null = null
  /** Sessions opened, since start. */
  openedTotal = 0
  /** Sessions refused (over the bound, target refused, malformed), since start. */
  refusedTotal = 0
  /** Sessions closed for idleness, since start. */
  idleClosedTotal = 0
  /** Datagrams dropped (the stream full, or one arriving before the socket was ready), since start. */
  droppedTotal = 0

  constructor(private readonly options: UdpTunnelServerOptions) {
    this.sessionsMax = options.sessionsMax ?? udpTunnelSessionsServedMax
    this.sessionIdleMs = options.sessionIdleMs ?? udpTunnelSessionIdleMs
  }

  get active(): number {
    return this.live.size
  }

  async start(): Promise<void> {
    const streamLimits = { maxInboundStreams: this.sessionsMax + 1, maxOutboundStreams: this.sessionsMax + 1 }
    await this.options.host.handle(udpTunnelProtocol, (stream, connection) => this.serve(stream, connection.remotePeer.toString()), streamLimits)
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(50, Math.min(this.sessionIdleMs / 2, 5000)))
    this.sweepTimer.unref()
  }

  async stop(): Promise<void> {
    await this.options.host.unhandle(udpTunnelProtocol)
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer)
    for (const session of [...this.live]) {
      session.stream.abort(new TunnelBrokenError('this peer stopped serving udp tunnels'))
      this.end(session)
    }
  }

  private serve(stream: Stream, fromPeerId: string): void {
    if (this.live.size >= this.sessionsMax) {
      this.refuse(stream, new TooManyUdpTunnelSessionsError(`this peer already serves ${this.sessionsMax} udp tunnel sessions, its limit`))
      return
    }
    const session: ServedSession = { stream, socket: null, state: 'asking', lastActiveMs: Date.now() }
    this.live.add(session)
    readDatagrams(
      stream,
      (frame) => {
        if (session.state === 'open') this.toTarget(session, frame)
        else if (session.state === 'asking') this.open(session, frame, fromPeerId)
        else this.droppedTotal++
      },
      () => this.end(session),
    )
  }

  private open(session: ServedSession, frame: Uint8Array, fromPeerId: string): void {
    let target: { ip: string; port: number }
    try {
      target = decodeRequest(frame)
    } catch (err) {
      this.refusedTotal++
      this.end(session)
      session.stream.abort(err as Error)
      return
    }
    if (this.options.allowTarget !== undefined && !this.options.allowTarget(target.ip, target.port, fromPeerId)) {
      this.end(session)
      this.refuse(session.stream, new TunnelTargetRefusedError(`this peer does not forward to ${target.ip}:${target.port}`))
      return
    }
    session.state = 'connecting'
    const socket = createSocket(isIPv6(target.ip) ? 'udp6' : 'udp4')
    session.socket = socket
    // A refused target (ICMP port unreachable on the connected socket) ends the session;
    // the caller's next datagram picks an endpoint again.
    socket.on('error', (err) => {
      if (session.state === 'ended') return
      this.end(session)
      session.stream.abort(err)
    })
    socket.on('message', (reply) => {
      session.lastActiveMs = Date.now()
      if (!sendDatagram(session.stream, [reply])) this.droppedTotal++
    })
    // Connected: only the target's datagrams arrive, and its refusals are reported.
    socket.connect(target.port, target.ip, () => {
      if (session.state !== 'connecting' || session.stream.writeStatus !== 'writable') return void this.end(session)
      session.state = 'open'
      this.openedTotal++
      session.stream.send(encodeFrames([Uint8Array.of(0)]))
    })
  }

  private toTarget(session: ServedSession, datagram: Uint8Array): void {
    session.lastActiveMs = Date.now()
    session.socket?.send(datagram)
  }

  /** Forget the session and close its socket (the stream is closed or reset by the caller, or closed already). */
  private end(session: ServedSession): void {
    if (session.state === 'ended') return
    session.state = 'ended'
    this.live.delete(session)
    try {
      session.socket?.close()
    } catch {
      // Closed already.
    }
  }

  private refuse(stream: Stream, err: Error): void {
    this.refusedTotal++
    try {
      stream.send(encodeFrames([failureAnswer(err)]))
      stream.close({ signal: AbortSignal.timeout(closeTimeoutMs) }).catch((e: Error) => stream.abort(e))
    } catch (e) {
      stream.abort(e as Error)
    }
  }

  private sweep(): void {
    const idleBeforeMs = Date.now() - this.sessionIdleMs
    for (const session of [...this.live]) {
      if (session.lastActiveMs >= idleBeforeMs) continue
      this.idleClosedTotal++
      this.end(session)
      session.stream.close({ signal: AbortSignal.timeout(closeTimeoutMs) }).catch((e: Error) => session.stream.abort(e))
    }
  }
}

class Libp2pDatagramTunnel implements DatagramTunnel {
  constructor(private readonly stream: Stream) {}

  send(datagrams: readonly Uint8Array[]): boolean {
    return sendDatagram(this.stream, datagrams)
  }

  close(): void {
    if (this.stream.status !== 'open') return
    this.stream.close({ signal: AbortSignal.timeout(closeTimeoutMs) }).catch((e: Error) => this.stream.abort(e))
  }
}

/** The caller side: ServiceProxy's UdpTunnelDialer on a libp2p host. */
export class UdpTunnelClient implements UdpTunnelDialer {
  constructor(
    private readonly host: PeerHost,
    private readonly sessionsMax = udpTunnelSessionsServedMax,
  ) {}

  async dialDatagrams(viaPeerId: string, ip: string, port: number, handlers: DatagramTunnelHandlers, signal: AbortSignal): Promise<DatagramTunnel> {
    const stream = await this.host.dialProtocol(peerIdFromString(viaPeerId), udpTunnelProtocol, { signal, maxOutboundStreams: this.sessionsMax + 1 })
    return new Promise<DatagramTunnel>((resolve, reject) => {
      let state: 'waiting' | 'open' | 'failed' = 'waiting'
      const settle = (err: Error | null): void => {
        if (state !== 'waiting') return
        state = err === null ? 'open' : 'failed'
        signal.removeEventListener('abort', onAbort)
        if (err === null) return resolve(new Libp2pDatagramTunnel(stream))
        stream.abort(err)
        reject(err)
      }
      const onAbort = (): void => settle(signal.reason instanceof Error ? signal.reason : new TunnelBrokenError('the udp tunnel dial was aborted'))
      readDatagrams(
        stream,
        (frame) => {
          if (state === 'open') return handlers.onDatagram(frame)
          if (state === 'failed') return
          let failure: Error | null
          try {
            failure = decodeAnswer(frame)
          } catch (err) {
            failure = err as Error
          }
          settle(failure)
        },
        (error) => {
          if (state === 'open') handlers.onClose(error)
          else settle(new TunnelBrokenError('the udp tunnel stream closed before the remote peer answered'))
        },
      )
      signal.addEventListener('abort', onAbort, { once: true })
      if (signal.aborted) return onAbort()
      try {
        stream.send(encodeFrames([encodeRequest(ip, port)]))
      } catch (err) {
        settle(err as Error)
      }
    })
  }
}
