// A DNS server over UDP and TCP on one address and port. Names the resolver
// owns (the cluster domain) are answered from it; every other name is
// forwarded to the host's upstream resolvers, never to ourselves. Messages are
// read and written with dns-packet (no hand-written parser).
import dgram from 'node:dgram'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { networkInterfaces } from 'node:os'
import * as dnsPacket from 'dns-packet'
import type { Answer, DecodedPacket, OptAnswer, Packet, Question, RecordType } from 'dns-packet'

export interface DnsQuestion {
  /** As asked (case kept), without the trailing dot. */
  name: string
  type: RecordType
}

export type DnsRcode = 'NOERROR' | 'NXDOMAIN'

/** What a resolver says about a question: records it owns, or "not mine" (forward upstream). */
export type DnsAnswer =
  | { kind: 'records'; rcode: DnsRcode; answers: Answer[]; authorities: Answer[]; additionals: Answer[] }
  | { kind: 'forward' }

export interface DnsResolver {
  resolve(question: DnsQuestion): DnsAnswer
}

export interface DnsUpstream {
  host: string
  port: number
}

export interface DnsServerOptions {
  host: string
  /** 0 picks a port free for both UDP and TCP. */
  port: number
  resolver: DnsResolver
  /** Where other names go; when absent, the nameservers of `resolvConfPath` (minus ourselves). Empty: REFUSED. */
  upstreams?: DnsUpstream[]
  resolvConfPath?: string
  /** One attempt at one upstream. */
  forwardTimeoutMs?: number
  /** Forwarded queries in flight at once; past it, REFUSED (as CoreDNS's forward `max_concurrent`). */
  forwardsInFlightMax?: number
  tcpConnectionsMax?: number
  /** A TCP connection with no query for this long is closed. */
  tcpIdleTimeoutMs?: number
  /** The largest UDP answer we send when the client advertises more with EDNS (DNS flag day 2020: 1232). */
  udpPayloadBytesMax?: number
  /** The largest message read or written (TCP's length prefix allows 65535). */
  messageBytesMax?: number
}

/** resolv.conf allows three nameservers (MAXNS); more are ignored, as glibc does. */
const upstreamsMax = 3
/** Without EDNS a UDP answer must fit in 512 bytes (RFC 1035 4.2.1). */
const classicUdpBytes = 512
/** Attempts to find a port free for both UDP and TCP when the caller asked for any. */
const portAttemptsMax = 8

const rcodes = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const
type Rcode = keyof typeof rcodes

/** The nameservers of a resolv.conf, skipping any that is this server (which would loop). */
export function upstreamsFromResolvConf(text: string, self: DnsUpstream): DnsUpstream[] {
  const out: DnsUpstream[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line)
    if (m === null) continue
    const host = m[1]!.replace(/%.*$/, '')
    if (net.isIP(host) === 0) continue
    const upstream = { host, port: 53 }
    if (!isSelf(upstream, self) && out.length < upstreamsMax) out.push(upstream)
  }
  return out
}

function isSelf(upstream: DnsUpstream, self: DnsUpstream): boolean {
  if (upstream.port !== self.port) return false
  if (upstream.host === self.host) return true
  // Bound to every address: any address of this host is us.
  if (self.host !== '0.0.0.0' && self.host !== '::') return false
  if (upstream.host.startsWith('127.') || upstream.host === '::1') return true
  return Object.values(networkInterfaces()).some((list) => (list ?? []).some((a) => a.address === upstream.host))
}

export class DnsServer {
  private udp: dgram.Socket | null = null
  private tcp: net.Server | null = null
  private upstreams: DnsUpstream[] = []
  private forwardsInFlight = 0
  private readonly sockets = new Set<net.Socket>()
  private readonly o: Required<Omit<DnsServerOptions, 'upstreams'>> & { upstreams?: DnsUpstream[] }

  private constructor(options: DnsServerOptions) {
    this.o = {
      ...options,
      resolvConfPath: options.resolvConfPath ?? '/etc/resolv.conf',
      forwardTimeoutMs: options.forwardTimeoutMs ?? 2_000,
      forwardsInFlightMax: options.forwardsInFlightMax ?? 256,
      tcpConnectionsMax: options.tcpConnectionsMax ?? 128,
      tcpIdleTimeoutMs: options.tcpIdleTimeoutMs ?? 10_000,
      udpPayloadBytesMax: options.udpPayloadBytesMax ?? 1232,
      messageBytesMax: Math.min(options.messageBytesMax ?? 65_535, 65_535),
    }
  }

  static async start(options: DnsServerOptions): Promise<DnsServer> {
    const server = new DnsServer(options)
    await server.listen()
    return server
  }

  get port(): number {
    return this.udp!.address().port
  }

  get host(): string {
    return this.o.host
  }

  /** Where forwarded queries go (empty: names outside the cluster domain get REFUSED). */
  get upstreamList(): readonly DnsUpstream[] {
    return this.upstreams
  }

  private async listen(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const udp = dgram.createSocket({ type: net.isIPv6(this.o.host) ? 'udp6' : 'udp4' })
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject)
        udp.bind(this.o.port, this.o.host, () => resolve())
      })
      const port = udp.address().port
      const tcp = net.createServer({ pauseOnConnect: false }, (socket) => this.onTcpConnection(socket))
      tcp.maxConnections = this.o.tcpConnectionsMax
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject)
          tcp.listen(port, this.o.host, () => resolve())
        })
      } catch (err) {
        udp.close()
        if (this.o.port !== 0 || attempt >= portAttemptsMax) throw err
        continue
      }
      // A failed send or accept concerns one client; the server keeps serving.
      udp.on('error', () => undefined)
      tcp.on('error', () => undefined)
      udp.on('message', (msg, rinfo) => void this.onUdpMessage(msg, rinfo))
      this.udp = udp
      this.tcp = tcp
      break
    }
    const self = { host: this.o.host, port: this.port }
    this.upstreams = this.o.upstreams !== undefined ? this.o.upstreams.filter((u) => !isSelf(u, self)) : readUpstreams(this.o.resolvConfPath, self)
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await Promise.all([
      new Promise<void>((resolve) => (this.udp === null ? resolve() : this.udp.close(() => resolve()))),
      new Promise<void>((resolve) => (this.tcp === null ? resolve() : this.tcp.close(() => resolve()))),
    ])
  }

  private async onUdpMessage(msg: Buffer, rinfo: dgram.RemoteInfo): Promise<void> {
    const reply = await this.answer(msg, 'udp')
    if (reply !== null) this.udp?.send(reply, rinfo.port, rinfo.address)
  }

  private onTcpConnection(socket: net.Socket): void {
    this.sockets.add(socket)
    socket.setTimeout(this.o.tcpIdleTimeoutMs, () => socket.destroy())
    socket.on('close', () => this.sockets.delete(socket))
    socket.on('error', () => undefined)
    let buffered: Buffer = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      while (buffered.length >= 2) {
        const length = buffered.readUInt16BE(0)
        if (length > this.o.messageBytesMax) return void socket.destroy()
        if (buffered.length < 2 + length) break
        const msg = buffered.subarray(2, 2 + length)
        buffered = buffered.subarray(2 + length)
        void this.answer(msg, 'tcp').then((reply) => {
          // A client that asks but never reads would make us buffer without end.
          if (reply === null || socket.destroyed) return
          if (socket.writableLength > 2 * this.o.messageBytesMax) return void socket.destroy()
          const prefix = Buffer.alloc(2)
          prefix.writeUInt16BE(reply.length)
          socket.write(Buffer.concat([prefix, reply]))
        })
      }
    })
  }

  /** The reply to one message, or null when there is none to give (not a query, or no id to answer to). */
  private async answer(msg: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | null> {
    if (msg.length < 12 || msg.length > this.o.messageBytesMax || (msg[2]! & 0x80) !== 0) return null
    let query: DecodedPacket & { opcode?: string }
    try {
      query = dnsPacket.decode(msg)
    } catch {
      return errorReply(msg.readUInt16BE(0), 0, 'FORMERR')
    }
    const rd = (query.flags ?? 0) & dnsPacket.RECURSION_DESIRED
    const question = query.questions?.[0]
    if (query.opcode !== 'QUERY') return errorReply(query.id ?? 0, rd, 'NOTIMP')
    if (question === undefined || query.questions!.length !== 1) return errorReply(query.id ?? 0, rd, 'FORMERR')
    if ((question.class ?? 'IN') !== 'IN') return errorReply(query.id ?? 0, rd, 'REFUSED', question)
    let result: DnsAnswer
    try {
      result = this.o.resolver.resolve({ name: question.name, type: question.type })
    } catch {
      return errorReply(query.id ?? 0, rd, 'SERVFAIL', question)
    }
    if (result.kind === 'forward') return this.forward(msg, query, transport)
    const ra = this.upstreams.length > 0 ? dnsPacket.RECURSION_AVAILABLE : 0
    const opt = query.additionals?.find((a): a is OptAnswer => a.type === 'OPT')
    const reply: Packet = {
      id: query.id,
      type: 'response',
      flags: dnsPacket.AUTHORITATIVE_ANSWER | rd | ra | rcodes[result.rcode],
      questions: [question],
      answers: result.answers,
      authorities: result.authorities,
      additionals: opt === undefined ? result.additionals : [...result.additionals, { type: 'OPT', name: '.', udpPayloadSize: this.o.udpPayloadBytesMax, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
    }
    const limit = transport === 'tcp' ? this.o.messageBytesMax : Math.min(this.o.udpPayloadBytesMax, Math.max(classicUdpBytes, opt?.udpPayloadSize ?? classicUdpBytes))
    return dnsPacket.encode(fitted(reply, limit))
  }

  /** Sends the client's query upstream (UDP first, TCP when the client came over TCP and UDP was truncated). */
  private async forward(msg: Buffer, query: DecodedPacket, transport: 'udp' | 'tcp'): Promise<Buffer> {
    const rd = (query.flags ?? 0) & dnsPacket.RECURSION_DESIRED
    const question = query.questions![0]!
    if (this.upstreams.length === 0) return errorReply(query.id ?? 0, rd, 'REFUSED', question)
    if (this.forwardsInFlight >= this.o.forwardsInFlightMax) return errorReply(query.id ?? 0, rd, 'REFUSED', question)
    this.forwardsInFlight++
    try {
      for (const upstream of this.upstreams) {
        let reply = await udpExchange(msg, upstream, this.o.forwardTimeoutMs)
        if (reply !== null && transport === 'tcp' && (reply[2]! & 0x02) !== 0) reply = await tcpExchange(msg, upstream, this.o.forwardTimeoutMs, this.o.messageBytesMax)
        if (reply !== null) return reply
      }
      return errorReply(query.id ?? 0, rd, 'SERVFAIL', question)
    } finally {
      this.forwardsInFlight--
    }
  }
}

function readUpstreams(path: string, self: DnsUpstream): DnsUpstream[] {
  try {
    return upstreamsFromResolvConf(readFileSync(path, 'utf8'), self)
  } catch {
    return []
  }
}

function errorReply(id: number, rd: number, rcode: Rcode, question?: Question): Buffer {
  return dnsPacket.encode({ id, type: 'response', flags: rd | rcodes[rcode], questions: question === undefined ? [] : [question] })
}

/**
 * The reply cut to `limit` bytes: additionals go first, then answers from the
 * end, with TC set so the client asks again over TCP. Clients without TCP
 * fallback (older musl) still get the answers that fit, as CoreDNS does.
 */
function fitted(reply: Packet, limit: number): Packet {
  if (dnsPacket.encodingLength(reply) <= limit) return reply
  const opt = (reply.additionals ?? []).filter((a) => a.type === 'OPT')
  const answers = reply.answers ?? []
  const truncated = (n: number, authorities: Answer[]): Packet => ({ ...reply, flags: (reply.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, answers: answers.slice(0, n), authorities, additionals: opt })
  if (dnsPacket.encodingLength(truncated(0, reply.authorities ?? [])) > limit) return truncated(0, [])
  let fits = 0
  let tooMany = answers.length + 1
  while (tooMany - fits > 1) {
    const mid = (fits + tooMany) >> 1
    if (dnsPacket.encodingLength(truncated(mid, reply.authorities ?? [])) <= limit) fits = mid
    else tooMany = mid
  }
  return truncated(fits, reply.authorities ?? [])
}

/** One query to one upstream over UDP from a fresh socket with a fresh id; null on timeout or a bad answer. */
function udpExchange(msg: Buffer, upstream: DnsUpstream, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(net.isIPv6(upstream.host) ? 'udp6' : 'udp4')
    const clientId = msg.readUInt16BE(0)
    const id = Math.floor(Math.random() * 0x10000)
    const out = Buffer.from(msg)
    out.writeUInt16BE(id, 0)
    let settled = false
    const done = (reply: Buffer | null): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.close()
      resolve(reply)
    }
    const timer = setTimeout(() => done(null), timeoutMs)
    socket.on('error', () => done(null))
    socket.on('message', (reply, rinfo) => {
      // Only the upstream's answer to our id counts (a spoofed or stray datagram is ignored).
      if (rinfo.address !== upstream.host || rinfo.port !== upstream.port || reply.length < 12 || reply.readUInt16BE(0) !== id) return
      const back = Buffer.from(reply)
      back.writeUInt16BE(clientId, 0)
      done(back)
    })
    socket.send(out, upstream.port, upstream.host, (err) => {
      if (err) done(null)
    })
  })
}

function tcpExchange(msg: Buffer, upstream: DnsUpstream, timeoutMs: number, messageBytesMax: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: upstream.host, port: upstream.port })
    let buffered: Buffer = Buffer.alloc(0)
    const done = (reply: Buffer | null): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(reply)
    }
    const timer = setTimeout(() => done(null), timeoutMs)
    socket.on('error', () => done(null))
    socket.on('close', () => done(null))
    socket.on('connect', () => {
      const prefix = Buffer.alloc(2)
      prefix.writeUInt16BE(msg.length)
      socket.write(Buffer.concat([prefix, msg]))
    })
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      if (buffered.length < 2) return
      const length = buffered.readUInt16BE(0)
      if (length > messageBytesMax) return done(null)
      if (buffered.length < 2 + length) return
      const reply = buffered.subarray(2, 2 + length)
      done(reply.length >= 12 && reply.readUInt16BE(0) === msg.readUInt16BE(0) ? reply : null)
    })
  })
}
