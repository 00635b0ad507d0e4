// Probing a suspect peer: a direct libp2p ping, and SWIM's indirect probe over
// /shoal/probe/1, where we ask other peers to ping the suspect for us so that
// one bad link between us and it does not get a healthy peer declared dead.
//
// Wire format: one request and one reply per stream, each a varint
// length-prefixed JSON object. Request {"target": peerId, "timeoutMs": n};
// reply {"reply": "ack" | "nack" | "busy"}.
import { setTimeout as delay } from 'node:timers/promises'
import type { PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import type { PeerHost } from './host.js'

export const probeProtocol = '/shoal/probe/1'

/** Both frames are tiny; anything larger is not ours. */
const maxProbeFrameBytes = 1024
/** Inbound probe streams one connection may hold open at once. */
const maxInboundProbeStreamsPerConnection = 8
/** Relayed pings we run at once for other peers; beyond it we answer busy rather than queue. */
const maxRelayedPings = 16
/** A relayed ping never runs longer than this, whatever the requester asks. */
const maxRelayedPingTimeoutMs = 5000
/** How long a requester may take to send its request once the stream is open. */
const requestReadTimeoutMs = 2000
/** How long we try to hand a reply back before giving up on the requester. */
const replyWriteTimeoutMs = 2000
/** Wait between ping attempts while libp2p's one ping stream per connection is taken. */
const pingRetryDelayMs = 20
/** Ping attempts per probe at most (the probe's timeout usually ends them first). */
const maxPingAttempts = 25

export type ProbeReply = 'ack' | 'nack' | 'busy'

export class InvalidPeerIdError extends Error {
  override readonly name = 'InvalidPeerIdError'
}

export function parsePeerId(text: string): PeerId {
  try {
    return peerIdFromString(text)
  } catch (err) {
    throw new InvalidPeerIdError(`not a peer id: ${JSON.stringify(text)}`, { cause: err })
  }
}

export function isPeerId(text: string): boolean {
  try {
    parsePeerId(text)
    return true
  } catch {
    return false
  }
}

/** Up to `count` distinct items in random order. */
export function pickRandom<T>(items: readonly T[], count: number): T[] {
  const pool = [...items]
  for (let i = 0; i < Math.min(count, pool.length); i++) {
    const j = i + Math.floor(Math.random() * (pool.length - i))
    const chosen = pool[j] as T
    pool[j] = pool[i] as T
    pool[i] = chosen
  }
  return pool.slice(0, count)
}

export interface IndirectProbeRequest {
  helpers: PeerId[]
  target: PeerId
  /** How long each helper's own ping of the target may take. */
  pingTimeoutMs: number
  /** How long we wait for a helper's reply, covering its dial, ping and answer. */
  replyTimeoutMs: number
  signal: AbortSignal
}

async function askHelper(host: PeerHost, helper: PeerId, target: PeerId, pingTimeoutMs: number, signal: AbortSignal): Promise<ProbeReply | 'unreachable'> {
  let stream: Stream | undefined
  try {
    stream = await host.dialProtocol(helper, probeProtocol, { signal })
    const frames = lpStream(stream, { maxDataLength: maxProbeFrameBytes })
    await frames.write(encodeJson({ target: target.toString(), timeoutMs: pingTimeoutMs }), { signal })
    const reply = decodeReply((await frames.read({ signal })).subarray())
    await stream.close({ signal })
    return reply ?? 'unreachable'
  } catch (err) {
    stream?.abort(err instanceof Error ? err : new Error(String(err)))
    return 'unreachable'
  }
}

/**
 * Pings peers for us and for others: the direct probe, the indirect one
 * (asking helpers over /shoal/probe/1), and the responder that serves those
 * requests. libp2p allows one outbound ping stream per connection and its
 * connection monitor uses it too, so pings of one target are shared (one in
 * flight, whoever asked) and retried briefly while the stream is taken.
 */
export class Prober {
  private readonly host: PeerHost
  private readonly pingsInFlight = new Map<string, Promise<boolean>>()
  private stopping = new AbortController()
  private relayedPings = 0

  constructor(host: PeerHost) {
    this.host = host
  }

  async start(): Promise<void> {
    this.stopping = new AbortController()
    await this.host.handle(probeProtocol, (stream) => this.serve(stream), {
      maxInboundStreams: maxInboundProbeStreamsPerConnection,
    })
  }

  async stop(): Promise<void> {
    this.stopping.abort()
    await this.host.unhandle(probeProtocol)
  }

  /** Ping `target` directly; true if it answered within `timeoutMs`. Joins a ping of it already in flight. */
  ping(target: PeerId, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    const key = target.toString()
    const inFlight = this.pingsInFlight.get(key)
    if (inFlight !== undefined) return inFlight
    const attempt = this.pingWithRetry(target, AbortSignal.any([signal, this.stopping.signal, AbortSignal.timeout(timeoutMs)]))
    const shared = attempt.finally(() => this.pingsInFlight.delete(key))
    this.pingsInFlight.set(key, shared)
    return shared
  }

  /** Ask every helper at once; true as soon as one reports the target answered. */
  probeIndirectly(request: IndirectProbeRequest): Promise<boolean> {
    if (request.helpers.length === 0) return Promise.resolve(false)
    const done = new AbortController()
    const signal = AbortSignal.any([request.signal, done.signal, AbortSignal.timeout(request.replyTimeoutMs)])
    return new Promise<boolean>((resolve) => {
      let pending = request.helpers.length
      for (const helper of request.helpers) {
        void askHelper(this.host, helper, request.target, request.pingTimeoutMs, signal).then((reply) => {
          pending -= 1
          if (reply === 'ack') {
            done.abort()
            resolve(true)
          } else if (pending === 0) {
            resolve(false)
          }
        })
      }
    })
  }

  private async pingWithRetry(target: PeerId, signal: AbortSignal): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.host.services.ping.ping(target, { signal })
        return true
      } catch (err) {
        // Refused, timed out, no known address, or stopping: all mean "no answer".
        // Only a ping stream held by the connection monitor is worth waiting out.
        const busy = err instanceof Error && err.name === 'TooManyOutboundProtocolStreamsError'
        if (!busy || attempt >= maxPingAttempts || signal.aborted) return false
        await delay(pingRetryDelayMs, undefined, { signal }).catch(() => {})
      }
    }
  }

  private async serve(stream: Stream): Promise<void> {
    const frames = lpStream(stream, { maxDataLength: maxProbeFrameBytes })
    try {
      const readSignal = AbortSignal.any([this.stopping.signal, AbortSignal.timeout(requestReadTimeoutMs)])
      const request = decodeRequest((await frames.read({ signal: readSignal })).subarray())
      if (request === null) throw new Error('malformed probe request')
      const reply = await this.relayPing(request.target, request.timeoutMs)
      const writeSignal = AbortSignal.any([this.stopping.signal, AbortSignal.timeout(replyWriteTimeoutMs)])
      await frames.write(encodeJson({ reply }), { signal: writeSignal })
      await stream.close({ signal: writeSignal })
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }

  private async relayPing(target: string, timeoutMs: number): Promise<ProbeReply> {
    if (this.relayedPings >= maxRelayedPings) return 'busy'
    let targetId: PeerId
    try {
      targetId = parsePeerId(target)
    } catch {
      return 'nack'
    }
    this.relayedPings += 1
    try {
      const ok = await this.ping(targetId, Math.min(timeoutMs, maxRelayedPingTimeoutMs), this.stopping.signal)
      return ok ? 'ack' : 'nack'
    } finally {
      this.relayedPings -= 1
    }
  }
}

const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder()

function encodeJson(value: object): Uint8Array {
  return textEncoder.encode(JSON.stringify(value))
}

/** Parse a JSON object from the network; null if it is not one. */
export function decodeJsonObject(bytes: Uint8Array): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(textDecoder.decode(bytes))
    return isRecord(value) ? value : null
  } catch {
    return null
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function decodeRequest(bytes: Uint8Array): { target: string; timeoutMs: number } | null {
  const value = decodeJsonObject(bytes)
  if (value === null) return null
  const { target, timeoutMs } = value
  if (typeof target !== 'string' || typeof timeoutMs !== 'number' || !(timeoutMs > 0)) return null
  return { target, timeoutMs }
}

function decodeReply(bytes: Uint8Array): ProbeReply | null {
  const reply = decodeJsonObject(bytes)?.['reply']
  return reply === 'ack' || reply === 'nack' || reply === 'busy' ? reply : null
}
