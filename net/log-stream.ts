// Byte streams from one peer to another (/shoal/logs/1), for logs that live on
// the peer that runs a pod and are asked for on any peer. The caller opens a
// stream with one request; the server answers Start (or Failure, before any
// byte), then Data frames, then End (or Failure). Flow control is by credit:
// the caller allows `windowBytes` at first and grants more as its consumer
// takes chunks, so a slow HTTP client holds the caller at windowBytes and the
// server at one chunk; the server never reads its source ahead of the credit.
// Aborting either side resets the stream, and the server's source sees its
// AbortSignal. A server's error reaches the caller with the same `name` and
// plain fields (as RPC failures do), so a Status on the owner is the same
// Status on the asking peer.
import type { Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { Packr } from 'msgpackr'
import { encodeFrames, readFrames, sendFrames } from './frames.js'
import type { PeerHost } from './host.js'
import { RemoteError } from './rpc.js'

export const logStreamProtocol = '/shoal/logs/1'
/** Streams one peer serves at once; the next caller gets TooManyLogStreamsError. */
export const logStreamsServedMax = 64
/** Bytes a caller lets a server send beyond what its consumer took: all a caller buffers per stream. */
export const logStreamWindowBytes = 256 * 1024
/** Largest Data frame; a server holds at most one chunk of a stream while it waits for credit. */
export const logChunkBytesMax = 32 * 1024
/** The request frame (a pod and options, say). */
const requestBytesMax = 4 * 1024 * 1024
/** Frames a caller reads: a chunk, or a Failure with its message. */
const answerFrameBytesMax = 1024 * 1024
const defaultDialTimeoutMs = 5000

const packr = new Packr({ useRecords: false, moreTypes: false })

/** The first byte of every frame. */
const Kind = { Request: 1, Credit: 2, Start: 3, Data: 4, End: 5, Failure: 6 } as const

export class TooManyLogStreamsError extends Error {
  override readonly name = 'TooManyLogStreamsError'
}

/** The stream closed before the server said End or Failure (its peer stopped, the connection broke). */
export class LogStreamBrokenError extends Error {
  override readonly name = 'LogStreamBrokenError'
}

export class LogStreamProtocolError extends Error {
  override readonly name = 'LogStreamProtocolError'
}

/** Answers a request with a byte stream; throwing (or rejecting) before it returns sends Failure and no Start. */
export type LogStreamHandler = (request: unknown, fromPeerId: string, signal: AbortSignal) => Promise<AsyncIterable<Uint8Array>>

function frame(kind: number, payload?: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + (payload?.byteLength ?? 0))
  out[0] = kind
  if (payload !== undefined) out.set(payload, 1)
  return out
}

function creditFrame(bytes: number): Uint8Array {
  const out = new Uint8Array(5)
  out[0] = Kind.Credit
  new DataView(out.buffer).setUint32(1, bytes)
  return out
}

/** Fields that survive the trip: JSON-like values (a Status's code, reason and details). */
function isPlain(v: unknown): boolean {
  if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) return true
  if (Array.isArray(v)) return v.every(isPlain)
  return typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype && Object.values(v as object).every(isPlain)
}

function failureFrame(err: Error): Uint8Array {
  const fields = Object.fromEntries(Object.entries(err).filter(([k, v]) => !['name', 'message', 'stack'].includes(k) && isPlain(v)))
  return frame(Kind.Failure, packr.pack({ name: err.name, message: err.message, fields }))
}

function failureOf(payload: Uint8Array): RemoteError {
  const f = packr.unpack(payload) as { name: string; message: string; fields: Record<string, unknown> }
  return new RemoteError(f.name, f.message, f.fields ?? {})
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new DOMException('the log stream was aborted', 'AbortError')
}

/** Settles as `promise`, or rejects once `signal` aborts. */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise
  if (signal.aborted) return Promise.reject(abortError(signal))
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

function nextTurn(): Promise<undefined> {
  return new Promise((resolve) => setImmediate(() => resolve(undefined)))
}

function* piecesOf(parts: Uint8Array[], maxBytes: number): Generator<Uint8Array> {
  const whole = parts.length === 1 ? parts[0]! : Buffer.concat(parts)
  for (let offset = 0; offset < whole.byteLength; offset += maxBytes) yield whole.subarray(offset, offset + maxBytes)
}

/**
 * Chunks that arrive in the same event-loop turn (a log's history) go out as
 * one, up to maxBytes; a chunk alone in its turn (a followed line) goes out at
 * once. Larger chunks are split. Holds at most one chunk of the source beyond
 * what it yielded; aborting `signal` stops waiting for the source.
 */
export async function* coalesceChunks(source: AsyncIterable<Uint8Array>, maxBytes: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]()
  let pending: Promise<IteratorResult<Uint8Array>> | null = null
  let parts: Uint8Array[] = []
  let size = 0
  let done = false
  try {
    for (;;) {
      pending ??= iterator.next()
      const result = parts.length === 0 ? await unlessAborted(pending, signal) : await Promise.race([pending, nextTurn()])
      if (result !== undefined) {
        pending = null
        if (result.done === true) done = true
        else if (result.value.byteLength > 0) {
          parts.push(result.value)
          size += result.value.byteLength
        }
      }
      if (result === undefined || done || size >= maxBytes) {
        if (parts.length > 0) yield* piecesOf(parts, maxBytes)
        parts = []
        size = 0
      }
      if (done) return
    }
  } finally {
    // Stopped early (aborted, or the consumer returned): let the source release what it holds.
    if (!done) void iterator.return?.()?.catch(() => undefined)
    pending?.catch(() => undefined)
  }
}

export interface LogStreamServerOptions {
  host: PeerHost
  handler: LogStreamHandler
  streamsMax?: number
}

/** Serves /shoal/logs/1 on this peer. */
export class LogStreamServer {
  private readonly streamsMax: number
  private activeStreams = 0
  private readonly serving = new Set<AbortController>()

  constructor(private readonly options: LogStreamServerOptions) {
    this.streamsMax = options.streamsMax ?? logStreamsServedMax
  }

  /** Streams being served now. */
  get active(): number {
    return this.activeStreams
  }

  async start(): Promise<void> {
    // libp2p's own per-connection cap sits above ours, so a caller past ours hears why.
    const streamLimits = { maxInboundStreams: this.streamsMax + 1, maxOutboundStreams: this.streamsMax + 1 }
    await this.options.host.handle(logStreamProtocol, (stream, connection) => void this.serve(stream, connection.remotePeer.toString()), streamLimits)
  }

  async stop(): Promise<void> {
    for (const abort of this.serving) abort.abort(new LogStreamBrokenError('this peer stopped serving logs'))
    await this.options.host.unhandle(logStreamProtocol)
  }

  private async serve(stream: Stream, from: string): Promise<void> {
    const abort = new AbortController()
    let resolveRequest: (r: { body: unknown }) => void = () => undefined
    let rejectRequest: (err: Error) => void = () => undefined
    const request = new Promise<{ body: unknown }>((resolve, reject) => {
      resolveRequest = resolve
      rejectRequest = reject
    })
    request.catch(() => undefined)
    let credit = 0
    let wake: (() => void) | undefined
    const stopped = (): void => {
      abort.abort(new LogStreamBrokenError(`the caller ${from} went away`))
      rejectRequest(new LogStreamBrokenError(`the caller ${from} went away`))
      wake?.()
    }
    readFrames(stream, requestBytesMax, {
      onFrame: (bytes) => {
        if (bytes[0] === Kind.Request) {
          const r = packr.unpack(bytes.subarray(1)) as { body: unknown; windowBytes: number }
          credit = Math.max(0, Math.min(Number(r.windowBytes) || 0, logStreamWindowBytes * 64))
          resolveRequest(r)
        } else if (bytes[0] === Kind.Credit && bytes.byteLength === 5) {
          credit += new DataView(bytes.buffer, bytes.byteOffset, 5).getUint32(1)
        } else stream.abort(new LogStreamProtocolError(`unexpected frame kind ${bytes[0]} from ${from}`))
        wake?.()
      },
      onClose: stopped,
    })
    // The caller closing its end is a cancel: nothing it could still want from us.
    stream.addEventListener('remoteCloseWrite', stopped)
    if (this.activeStreams >= this.streamsMax) {
      await this.finish(stream, failureFrame(new TooManyLogStreamsError(`this peer already serves ${this.streamsMax} log streams, its limit; try again later`)))
      return
    }
    this.activeStreams++
    this.serving.add(abort)
    try {
      const { body } = await request
      const source = await this.options.handler(body, from, abort.signal)
      await sendFrames(stream, [frame(Kind.Start)], abort.signal)
      for await (const chunk of coalesceChunks(source, logChunkBytesMax, abort.signal)) {
        while (credit < chunk.byteLength && !abort.signal.aborted) await new Promise<void>((resolve) => (wake = resolve))
        wake = undefined
        if (abort.signal.aborted) break
        credit -= chunk.byteLength
        await sendFrames(stream, [frame(Kind.Data, chunk)], abort.signal)
      }
      if (!abort.signal.aborted) await this.finish(stream, frame(Kind.End))
    } catch (err) {
      if (!abort.signal.aborted) await this.finish(stream, failureFrame(err as Error))
    } finally {
      abort.abort(new LogStreamBrokenError('the log stream ended'))
      this.serving.delete(abort)
      this.activeStreams--
    }
  }

  /** The last frame, then our end closes (the caller closes its end once it read everything). */
  private async finish(stream: Stream, last: Uint8Array): Promise<void> {
    try {
      await sendFrames(stream, [last])
      await stream.close({ signal: AbortSignal.timeout(defaultDialTimeoutMs) })
    } catch (err) {
      stream.abort(err as Error)
    }
  }
}

export interface OpenLogStreamOptions {
  /** Aborting it resets the stream; the server stops reading its source. */
  signal: AbortSignal
  windowBytes?: number
  dialTimeoutMs?: number
}

/** One caller's stream: frames queue here until the consumer takes them. */
class LogStreamReader {
  private readonly queue: Uint8Array[] = []
  private started = false
  private ended = false
  private failure: Error | null = null
  private wake: (() => void) | undefined
  /** Bytes the server may still send: what we granted minus what arrived. */
  private allowedBytes: number
  /** Bytes the consumer took that we have not yet granted back. */
  private takenBytes = 0

  constructor(
    private readonly stream: Stream,
    private readonly peerId: string,
    private readonly windowBytes: number,
  ) {
    this.allowedBytes = windowBytes
    readFrames(stream, answerFrameBytesMax, {
      onFrame: (bytes) => this.received(bytes),
      onClose: (err) => this.fail(new LogStreamBrokenError(`the log stream from peer ${peerId} broke${err === undefined ? '' : `: ${err.message}`}`)),
    })
  }

  private received(bytes: Uint8Array): void {
    const kind = bytes[0]
    if (kind === Kind.Start) this.started = true
    else if (kind === Kind.Data) {
      this.allowedBytes -= bytes.byteLength - 1
      if (this.allowedBytes < 0) return this.stream.abort(new LogStreamProtocolError(`peer ${this.peerId} sent more than it was allowed`))
      this.queue.push(bytes.subarray(1))
    } else if (kind === Kind.End) this.ended = true
    else if (kind === Kind.Failure) this.failure ??= failureOf(bytes.subarray(1))
    else return this.stream.abort(new LogStreamProtocolError(`unexpected frame kind ${kind} from peer ${this.peerId}`))
    this.wake?.()
  }

  private fail(err: Error): void {
    if (!this.ended) this.failure ??= err
    this.wake?.()
  }

  private async waitFor(ready: () => boolean): Promise<void> {
    while (!ready()) await new Promise<void>((resolve) => (this.wake = resolve))
    this.wake = undefined
  }

  /** Resolves once the server accepted the request; throws its Failure otherwise. */
  async accepted(): Promise<void> {
    await this.waitFor(() => this.started || this.failure !== null)
    if (!this.started) throw this.failure!
  }

  async *chunks(): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        await this.waitFor(() => this.queue.length > 0 || this.ended || this.failure !== null)
        const chunk = this.queue.shift()
        if (chunk === undefined) {
          if (this.ended) return
          throw this.failure!
        }
        yield chunk
        this.took(chunk.byteLength)
      }
    } finally {
      if (!this.ended) this.stream.abort(new LogStreamBrokenError('the reader stopped reading'))
    }
  }

  /** The consumer took a chunk: hand the credit back in quarters of the window, not per line. */
  private took(bytes: number): void {
    this.takenBytes += bytes
    if (this.takenBytes < this.windowBytes / 4 || this.ended || this.failure !== null) return
    this.allowedBytes += this.takenBytes
    try {
      this.stream.send(encodeFrames([creditFrame(this.takenBytes)]))
    } catch {
      // The stream is closing: the next wait sees why.
    }
    this.takenBytes = 0
  }
}

/**
 * Asks peer `peerId` for a stream. Resolves once the server accepted, with the
 * chunks; rejects with the server's error (a RemoteError with its name and
 * fields), a dial error, or the signal's reason.
 */
export async function openLogStream(host: PeerHost, peerId: string, request: unknown, options: OpenLogStreamOptions): Promise<AsyncIterable<Uint8Array>> {
  const windowBytes = Math.max(options.windowBytes ?? logStreamWindowBytes, logChunkBytesMax)
  options.signal.throwIfAborted()
  const stream = await host.dialProtocol(peerIdFromString(peerId), logStreamProtocol, {
    signal: AbortSignal.any([options.signal, AbortSignal.timeout(options.dialTimeoutMs ?? defaultDialTimeoutMs)]),
    maxOutboundStreams: logStreamsServedMax + 1,
  })
  const onAbort = (): void => stream.abort(abortError(options.signal))
  options.signal.addEventListener('abort', onAbort, { once: true })
  stream.addEventListener('close', () => options.signal.removeEventListener('abort', onAbort), { once: true })
  if (options.signal.aborted) onAbort()
  const reader = new LogStreamReader(stream, peerId, windowBytes)
  try {
    await sendFrames(stream, [frame(Kind.Request, packr.pack({ body: request, windowBytes }))], options.signal)
    await unlessAborted(reader.accepted(), options.signal)
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
  return reader.chunks()
}
