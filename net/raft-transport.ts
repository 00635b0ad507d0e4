// Raft messages between peers over libp2p (/shoal/raft/1): each sender keeps
// long-lived outbound streams per peer, one per lane, carrying length-prefixed
// codec frames. Two lanes, so a heartbeat or a vote never waits behind a
// snapshot chunk: yamux multiplexes them with separate flow control.
import type { Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { CodecError, decodeMessage, encodeMessage } from '../consensus/codec.js'
import type { RaftTransport } from '../consensus/driver.js'
import { MessageType, type Message, type NodeId } from '../consensus/types.js'
import { readFrames, sendFrames } from './frames.js'
import type { PeerHost } from './host.js'

export const raftProtocol = '/shoal/raft/1'

export interface RaftNetworkOptions {
  host: PeerHost
  /** A message for this peer's Raft node. */
  deliver: (m: Message) => void
  /** Messages to this peer may have been lost (Raft's leader then probes again). */
  onUnreachable: (peerId: NodeId) => void
  /** Frames queued per peer and lane; past either bound the oldest are dropped (Raft resends). */
  queuedFramesMax?: number
  queuedBytesMax?: number
  maxFrameBytes?: number
  dialTimeoutMs?: number
  backoffInitialMs?: number
  backoffMaxMs?: number
}

type Lane = 'control' | 'bulk'

const bulkTypes = new Set<MessageType>([MessageType.App, MessageType.Snap])

function laneOf(m: Message): Lane {
  return bulkTypes.has(m.type) && (m.type === MessageType.Snap || (m.entries?.length ?? 0) > 0) ? 'bulk' : 'control'
}

const defaults = {
  queuedFramesMax: 8192,
  queuedBytesMax: 64 * 1024 * 1024,
  maxFrameBytes: 16 * 1024 * 1024,
  dialTimeoutMs: 5000,
  backoffInitialMs: 50,
  backoffMaxMs: 2000,
}

/** One peer, one lane: a queue drained into one outbound stream, redialled with backoff. */
class OutboundLane {
  private queue: Uint8Array[] = []
  private queuedBytes = 0
  private stream: Stream | null = null
  private running = false
  private backoffMs: number
  private retryAt = 0
  private retryTimer: ReturnType<typeof setTimeout> | null = null
  private closed = false

  constructor(
    private readonly peerId: NodeId,
    private readonly net: RaftNetwork,
  ) {
    this.backoffMs = net.config.backoffInitialMs
  }

  enqueue(frame: Uint8Array): void {
    this.queue.push(frame)
    this.queuedBytes += frame.byteLength
    const { queuedFramesMax, queuedBytesMax } = this.net.config
    let dropped = false
    while (this.queue.length > queuedFramesMax || this.queuedBytes > queuedBytesMax) {
      this.queuedBytes -= this.queue.shift()!.byteLength
      dropped = true
    }
    if (dropped) this.net.reportUnreachable(this.peerId)
    if (!this.running) void this.pump()
  }

  private async pump(): Promise<void> {
    this.running = true
    try {
      while (this.queue.length > 0 && !this.closed) {
        const stream = await this.connected()
        if (stream === null) return
        const frames = this.queue
        this.queue = []
        this.queuedBytes = 0
        await sendFrames(stream, frames)
      }
    } catch {
      this.broken()
    } finally {
      this.running = false
    }
  }

  private async connected(): Promise<Stream | null> {
    if (this.stream !== null) return this.stream
    const wait = this.retryAt - Date.now()
    if (wait > 0) {
      // Still backing off: one retry is scheduled; new messages keep queueing (bounded).
      this.retryTimer ??= setTimeout(() => {
        this.retryTimer = null
        if (!this.running) void this.pump()
      }, wait)
      this.retryTimer.unref()
      return null
    }
    const stream = await this.net.host.dialProtocol(peerIdFromString(this.peerId), raftProtocol, {
      signal: AbortSignal.timeout(this.net.config.dialTimeoutMs),
    })
    stream.addEventListener('close', () => {
      if (this.stream === stream) this.broken()
    })
    this.stream = stream
    this.backoffMs = this.net.config.backoffInitialMs
    return stream
  }

  /** The stream failed or would not open: what was queued may be lost; back off before redialling. */
  private broken(): void {
    this.stream?.abort(new Error('raft lane reset'))
    this.stream = null
    this.queue = []
    this.queuedBytes = 0
    this.retryAt = Date.now() + this.backoffMs
    this.backoffMs = Math.min(this.backoffMs * 2, this.net.config.backoffMaxMs)
    this.net.reportUnreachable(this.peerId)
  }

  close(): void {
    this.closed = true
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    this.stream?.close().catch(() => {})
    this.stream = null
  }
}

export class RaftNetwork implements RaftTransport {
  readonly host: PeerHost
  readonly config: typeof defaults
  private readonly lanes = new Map<NodeId, Record<Lane, OutboundLane>>()
  private readonly options: RaftNetworkOptions
  /** Frames from peers that did not decode (a protocol mismatch or a bug), for metrics. */
  malformedFrames = 0

  constructor(options: RaftNetworkOptions) {
    this.options = options
    this.host = options.host
    this.config = {
      queuedFramesMax: options.queuedFramesMax ?? defaults.queuedFramesMax,
      queuedBytesMax: options.queuedBytesMax ?? defaults.queuedBytesMax,
      maxFrameBytes: options.maxFrameBytes ?? defaults.maxFrameBytes,
      dialTimeoutMs: options.dialTimeoutMs ?? defaults.dialTimeoutMs,
      backoffInitialMs: options.backoffInitialMs ?? defaults.backoffInitialMs,
      backoffMaxMs: options.backoffMaxMs ?? defaults.backoffMaxMs,
    }
  }

  async start(): Promise<void> {
    await this.host.handle(raftProtocol, (stream, connection) => {
      const remote = connection.remotePeer.toString()
      readFrames(stream, this.config.maxFrameBytes, {
        onFrame: (frame) => this.receive(frame, remote, stream),
        onClose: () => {},
      })
    }, { maxInboundStreams: 8 })
  }

  private receive(frame: Uint8Array, remote: NodeId, stream: Stream): void {
    let m: Message
    try {
      m = decodeMessage(frame)
    } catch (err) {
      if (!(err instanceof CodecError)) throw err
      this.malformedFrames++
      stream.abort(err)
      return
    }
    // The connection is authenticated by Noise: a peer may only speak for itself.
    if (m.from !== remote) {
      this.malformedFrames++
      stream.abort(new Error(`message claims to be from ${m.from} but came from ${remote}`))
      return
    }
    this.options.deliver(m)
  }

  send(messages: readonly Message[]): void {
    for (const m of messages) {
      let lanes = this.lanes.get(m.to)
      if (lanes === undefined) {
        lanes = { control: new OutboundLane(m.to, this), bulk: new OutboundLane(m.to, this) }
        this.lanes.set(m.to, lanes)
      }
      lanes[laneOf(m)].enqueue(encodeMessage(m))
    }
  }

  reportUnreachable(peerId: NodeId): void {
    this.options.onUnreachable(peerId)
  }

  /** Stop talking to a peer that left the configuration. */
  forget(peerId: NodeId): void {
    const lanes = this.lanes.get(peerId)
    if (lanes === undefined) return
    lanes.control.close()
    lanes.bulk.close()
    this.lanes.delete(peerId)
  }

  async stop(): Promise<void> {
    for (const id of [...this.lanes.keys()]) this.forget(id)
    await this.host.unhandle(raftProtocol)
  }
}
