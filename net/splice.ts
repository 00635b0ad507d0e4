// Moving bytes both ways between two connections, as a TCP relay must:
// backpressure (a side whose peer cannot take more is paused, so the relay
// buffers at most a socket's high-water mark plus one chunk per direction),
// half-close (one direction ending ends only that direction), and resets
// passed on (an error on one side resets the other).
import { connect, Socket, type SocketConstructorOpts } from 'node:net'
import { TLSSocket } from 'node:tls'
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * How much a relay socket queues for writing before write() says "full" and its
 * source pauses. Node's 16 KiB default pauses and resumes on every 64 KiB read;
 * 256 KiB lets a read land without a pause, while still bounding what we hold.
 */
export const relayHighWaterMarkBytes = 256 * 1024

/**
 * A libp2p stream buffers what arrives while we are paused, up to this; Yamux stops
 * granting window while paused, so the remote can send at most its stream window
 * (16 MiB at most, Yamux's maxStreamWindowSize) past a pause. Beyond this the stream resets.
 */
export const tunnelReadBufferBytesMax = 16 * 1024 * 1024 + 256 * 1024

/** Options for every relay socket, accepted (net.createServer) or dialled (net.connect). */
export const relaySocketOptions = { allowHalfOpen: true, noDelay: true, highWaterMark: relayHighWaterMarkBytes } as const

export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return
  // A TLS socket's handle is not a TCP one (resetAndDestroy throws): reset the TCP socket under it.
  const parent = (socket as { _parent?: unknown })._parent
  if (socket instanceof TLSSocket) {
    if (parent instanceof Socket) resetSocket(parent)
    socket.destroy()
    return
  }
  // Pass a reset on as a reset (RST), not a clean close, when the socket is connected.
  if (socket.readyState !== 'closed' && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy()
  else socket.destroy()
}

/**
 * What a relay socket reads per syscall, into a buffer of its own that is reused
 * while the other side takes each read at once (the common case). Node's default
 * path allocates a buffer per read and runs it through stream machinery: about 3
 * times the CPU per MB relayed here (2 ms/MB against 0.6-0.7 ms/MB).
 */
export const relayReadBufferBytes = 64 * 1024

/** One side of a socket-to-socket relay: its reads go straight to the other side once forwardTo() names it. */
export interface RelaySocket {
  socket: Socket
  forwardTo(destination: Socket): void
}

/**
 * Read buffers one relay direction keeps for reuse once the writes that referred to them
 * completed: with the socket's high-water mark (256 KiB) in 64 KiB reads, a few are in flight.
 */
export const relaySpareBuffersMax = 6

/** A read buffer and the writes still referring to it. */
interface ReadBuffer {
  bytes: Buffer
  writesPending: number
  /** The write callback: when the last write completes, the buffer may be read into again. */
  release: () => void
}

/** Reads into a reused buffer (net's `onread`) and writes each read to the destination. */
class ReusedBufferReads {
  private current: ReadBuffer = this.newBuffer()
  private readonly spare: ReadBuffer[] = []
  private destination: Socket | null = null
  /** Copies of what arrived before forwardTo(); the source pauses until then. */
  private readonly early: Buffer[] = []
  source: Socket | null = null
  readonly onread = { buffer: (): Buffer => this.current.bytes, callback: (bytes: number, into: Uint8Array): boolean => this.forward(bytes, into) }

  private newBuffer(): ReadBuffer {
    const buffer: ReadBuffer = {
      bytes: Buffer.allocUnsafe(relayReadBufferBytes),
      writesPending: 0,
      release: () => {
        if (--buffer.writesPending === 0 && buffer !== this.current && this.spare.length < relaySpareBuffersMax) this.spare.push(buffer)
      },
    }
    return buffer
  }

  private forward(bytes: number, into: Uint8Array): boolean {
    const view = into.subarray(0, bytes)
    const to = this.destination
    if (to === null) {
      this.early.push(Buffer.from(view))
      this.source?.pause()
      return true
    }
    if (to.destroyed) return true
    const used = this.current
    used.writesPending++
    const more = to.write(view, used.release)
    // The write still refers to the buffer unless it went to the kernel at once (a TLS socket's
    // queue always may): read into another until the write completes and releases this one.
    if (to.writableLength > 0) this.current = this.spare.pop() ?? this.newBuffer()
    if (!more) this.source?.pause()
    return true
  }

  relay(source: Socket): RelaySocket {
    this.source = source
    return {
      socket: source,
      forwardTo: (to: Socket): void => {
        this.destination = to
        for (const chunk of this.early.splice(0)) to.write(chunk)
        to.on('drain', () => source.resume())
        source.resume()
      },
    }
  }
}

/** net.connect with a reused read buffer. */
export function connectRelayUpstream(host: string, port: number): RelaySocket {
  const reads = new ReusedBufferReads()
  return reads.relay(connect({ host, port, ...relaySocketOptions, onread: reads.onread }))
}

/** The 'data' path, for a socket whose handle cannot be adopted (or a TLS socket, whose reads come decrypted per record). */
export function dataEventRelay(source: Socket): RelaySocket {
  return {
    socket: source,
    forwardTo(to: Socket): void {
      source.on('data', (chunk: Buffer) => {
        if (!to.destroyed && !to.write(chunk)) source.pause()
      })
      to.on('drain', () => source.resume())
      source.resume()
    },
  }
}

/**
 * An accepted socket (from a server with pauseOnConnect, not yet read) as a relay side with
 * a reused read buffer. net.Server has no `onread` option, so its handle moves to a new
 * Socket that has one; this uses Node's internal `_handle` and `handle` option (stable
 * since Node 0.x, used by cluster and tls), and falls back to the 'data' path if they are
 * missing. The emptied original is destroyed, which only settles its server's count.
 */
export function adoptAcceptedSocket(accepted: Socket): RelaySocket {
  const internals = accepted as unknown as { _handle?: object | null }
  const handle = internals._handle
  if (handle === undefined || handle === null || accepted.readableLength > 0 || accepted.destroyed) return dataEventRelay(accepted)
  const reads = new ReusedBufferReads()
  let adopted: Socket
  try {
    internals._handle = null
    const options = { handle, allowHalfOpen: true, readable: true, writable: true, highWaterMark: relayHighWaterMarkBytes, onread: reads.onread }
    adopted = new Socket(options as SocketConstructorOpts)
  } catch {
    internals._handle = handle
    return dataEventRelay(accepted)
  }
  accepted.destroy()
  adopted.setNoDelay(true)
  return reads.relay(adopted)
}

/**
 * Splice two relay sides. `onClosed` runs once, after both sockets are closed. Each side's
 * reads go to the other and pause while it is full; an end ends only the other direction
 * (half-close); an error or a destroy resets the other side.
 */
export function spliceSockets(a: RelaySocket, b: RelaySocket, onClosed: () => void): void {
  let open = 2
  const closed = (): void => {
    if (--open === 0) onClosed()
  }
  for (const [from, to] of [
    [a.socket, b.socket],
    [b.socket, a.socket],
  ] as const) {
    from.once('close', closed)
    from.on('error', () => resetSocket(to))
    // A close without a graceful end (destroyed): take the other side down too.
    from.once('close', () => !to.destroyed && !to.writableEnded && resetSocket(to))
    from.once('end', () => !to.destroyed && to.end())
  }
  a.forwardTo(b.socket)
  b.forwardTo(a.socket)
}

function chunksOf(data: Uint8Array | Uint8ArrayList): Iterable<Uint8Array> {
  return data instanceof Uint8Array ? [data] : data
}

/**
 * Splice a connected socket (allowHalfOpen) with a libp2p 3 stream. Socket bytes go
 * out with stream.send(); when it returns false the socket pauses until 'drain'.
 * Stream messages are written to the socket; when it is full the stream pauses
 * (Yamux then stops granting window, so the remote stops too) until the socket drains.
 * A FIN either way becomes a FIN the other way; an error either way resets the other.
 * `leftover` is what arrived on the stream before the splice (after a handshake).
 */
export function spliceSocketWithStream(socket: Socket, stream: Stream, onClosed: () => void, leftover?: Uint8Array): void {
  stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, tunnelReadBufferBytesMax)
  let open = 2
  const closed = (): void => {
    if (--open === 0) onClosed()
  }
  socket.once('close', closed)
  stream.addEventListener('close', closed, { once: true })

  // Socket -> stream.
  socket.on('data', (chunk: Buffer) => {
    if (stream.writeStatus !== 'writable') return
    if (!stream.send(chunk)) socket.pause()
  })
  stream.addEventListener('drain', () => socket.resume())
  socket.on('end', () => {
    stream.close().catch((err: Error) => stream.abort(err))
  })

  // Stream -> socket.
  if (leftover !== undefined && leftover.byteLength > 0) socket.write(leftover)
  const writeMessage = (data: Uint8Array | Uint8ArrayList): void => {
    if (socket.destroyed) return
    socket.cork()
    let more = true
    for (const chunk of chunksOf(data)) more = socket.write(chunk)
    socket.uncork()
    if (!more && stream.readStatus === 'readable') stream.pause()
  }
  stream.addEventListener('message', (evt) => writeMessage(evt.data))
  socket.on('drain', () => {
    if (stream.readStatus === 'paused') stream.resume()
  })
  // 'end', not 'remoteCloseWrite': it waits for bytes still buffered while we were paused.
  const remoteEnded = (): void => {
    if (stream.status === 'aborted' || stream.status === 'reset') return
    if (!socket.destroyed && !socket.writableEnded) socket.end()
  }
  stream.addEventListener('end', remoteEnded)
  if (stream.readableEnded) remoteEnded()

  // Resets both ways.
  socket.on('error', (err: Error) => stream.abort(err))
  socket.once('close', () => {
    if (stream.status === 'open' && !(socket.writableEnded && socket.readableEnded)) stream.abort(new Error('the local connection closed'))
  })
  stream.addEventListener('close', (evt) => {
    if (evt.error !== undefined) resetSocket(socket)
    else if (!socket.destroyed) socket.end()
  })
}
