// The DNS server with a table resolver, over real UDP and TCP sockets on
// 127/8: answers, truncation to the client's UDP size and the full answer over
// TCP, forwarding to a fake upstream (UDP, and TCP when UDP was truncated),
// REFUSED with no upstream or too many forwards in flight, SERVFAIL when the
// upstream is silent, the TCP connection bound, and malformed queries.
import dgram from 'node:dgram'
import net from 'node:net'
import * as dnsPacket from 'dns-packet'
import type { Answer, DecodedPacket, Packet, RecordType } from 'dns-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { DnsServer, upstreamsFromResolvConf, type DnsAnswer, type DnsQuestion, type DnsResolver, type DnsServerOptions } from '../../net/dns-server.js'

/** A host of our own on 127/8, so parallel test files never collide. */
function loopbackHost(): string {
  return `127.53.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`
}

const rcodeOf = (p: DecodedPacket): number => (p.flags ?? 0) & 0xf
const dataOf = (p: DecodedPacket): unknown[] => (p.answers ?? []).map((a) => (a as { data?: unknown }).data)
const NOERROR = 0
const FORMERR = 1
const SERVFAIL = 2
const NXDOMAIN = 3
const REFUSED = 5

/** `manyName` has 200 A records: more than fits in 512 or 1232 bytes. */
const manyName = 'many.test.zone'
const manyIps = Array.from({ length: 200 }, (_, k) => `10.1.${k >> 8}.${k & 0xff}`)

const tableResolver: DnsResolver = {
  resolve(q: DnsQuestion): DnsAnswer {
    const name = q.name.toLowerCase()
    if (!name.endsWith('.test.zone')) return { kind: 'forward' }
    const soa: Answer = { name: 'test.zone', type: 'SOA', ttl: 5, data: { mname: 'ns.test.zone', rname: 'h.test.zone', serial: 1, minimum: 5 } }
    const ips = name === 'web.test.zone' ? ['10.0.0.7'] : name === manyName ? manyIps : null
    if (ips === null) return { kind: 'records', rcode: 'NXDOMAIN', answers: [], authorities: [soa], additionals: [] }
    const answers = q.type === 'A' ? ips.map((ip): Answer => ({ name: q.name, type: 'A', ttl: 5, data: ip })) : []
    return { kind: 'records', rcode: 'NOERROR', answers, authorities: answers.length === 0 ? [soa] : [], additionals: [] }
  },
}

function query(name: string, type: RecordType = 'A', extra: Partial<Packet> = {}): Packet {
  return { type: 'query', id: Math.floor(Math.random() * 0x10000), flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }], ...extra }
}

function udpExchange(host: string, port: number, message: Buffer, timeoutMs = 3_000): Promise<{ bytes: number; packet: DecodedPacket }> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4')
    const timer = setTimeout(() => {
      socket.close()
      reject(new Error(`no UDP answer from ${host}:${port} in ${timeoutMs} ms`))
    }, timeoutMs)
    socket.on('message', (msg) => {
      clearTimeout(timer)
      socket.close()
      resolve({ bytes: msg.length, packet: dnsPacket.decode(msg) })
    })
    socket.send(message, port, host)
  })
}

const udpQuery = (server: DnsServer, packet: Packet) => udpExchange(server.host, server.port, dnsPacket.encode(packet))

function tcpQuery(host: string, port: number, packet: Packet, timeoutMs = 3_000): Promise<DecodedPacket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port })
    let buffered = Buffer.alloc(0)
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no TCP answer from ${host}:${port} in ${timeoutMs} ms`))
    }, timeoutMs)
    socket.on('error', reject)
    socket.on('close', () => reject(new Error('closed without an answer')))
    socket.on('connect', () => socket.write(dnsPacket.streamEncode(packet)))
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      if (buffered.length < 2 || buffered.length < 2 + buffered.readUInt16BE(0)) return
      clearTimeout(timer)
      socket.destroy()
      resolve(dnsPacket.decode(buffered.subarray(2, 2 + buffered.readUInt16BE(0))))
    })
  })
}

/** A fake upstream: answers any A question with 192.0.2.1; over UDP it can claim truncation, or stay silent. */
async function startUpstream(mode: 'answer' | 'truncate-udp' | 'silent'): Promise<{ host: string; port: number; udpQueries: number; close(): Promise<void> }> {
  const host = loopbackHost()
  const udp = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => udp.bind(0, host, resolve))
  const port = udp.address().port
  const answerTo = (q: DecodedPacket, truncated: boolean): Packet => ({
    type: 'response',
    id: q.id,
    flags: dnsPacket.RECURSION_AVAILABLE | (truncated ? dnsPacket.TRUNCATED_RESPONSE : 0),
    questions: q.questions,
    answers: truncated ? [] : [{ name: q.questions![0]!.name, type: 'A', ttl: 60, data: '192.0.2.1' }],
  })
  const state = { host, port, udpQueries: 0, close: async () => undefined as void }
  udp.on('message', (msg, rinfo) => {
    state.udpQueries++
    if (mode === 'silent') return
    udp.send(dnsPacket.encode(answerTo(dnsPacket.decode(msg), mode === 'truncate-udp')), rinfo.port, rinfo.address)
  })
  const tcp = net.createServer((socket) => {
    socket.on('data', (chunk: Buffer) => socket.write(dnsPacket.streamEncode(answerTo(dnsPacket.decode(chunk.subarray(2)), false))))
  })
  await new Promise<void>((resolve) => tcp.listen(port, host, resolve))
  state.close = async () => {
    udp.close()
    await new Promise<void>((resolve) => tcp.close(() => resolve()))
  }
  return state
}

const started: { close(): Promise<void> }[] = []

async function startServer(options: Partial<DnsServerOptions> = {}): Promise<DnsServer> {
  const server = await DnsServer.start({ host: loopbackHost(), port: 0, resolver: tableResolver, upstreams: [], ...options })
  started.push(server)
  return server
}

afterEach(async () => {
  for (const s of started.splice(0)) await s.close()
})

describe('DNS server', () => {
  it('answers from the resolver over UDP and TCP, authoritatively, echoing id and question', async () => {
    const server = await startServer()
    const q = query('Web.Test.Zone')
    const { packet: udp } = await udpQuery(server, q)
    expect(udp.id).toBe(q.id)
    expect(udp.flag_aa).toBe(true)
    expect(udp.flag_rd).toBe(true)
    expect(udp.questions).toEqual([{ name: 'Web.Test.Zone', type: 'A', class: 'IN' }])
    expect(dataOf(udp)).toEqual(['10.0.0.7'])
    const tcp = await tcpQuery(server.host, server.port, query('web.test.zone'))
    expect(dataOf(tcp)).toEqual(['10.0.0.7'])
    const nx = await tcpQuery(server.host, server.port, query('nope.test.zone'))
    expect(rcodeOf(nx)).toBe(NXDOMAIN)
    expect(nx.authorities![0]!.type).toBe('SOA')
  })

  it('truncates a UDP answer to 512 bytes (or the EDNS size, at most 1232) with TC; TCP carries it whole', async () => {
    const server = await startServer()
    const classic = await udpQuery(server, query(manyName))
    expect(classic.packet.flag_tc).toBe(true)
    expect(classic.bytes).toBeLessThanOrEqual(512)
    expect(classic.packet.answers!.length).toBeGreaterThan(0)
    expect(classic.packet.answers!.length).toBeLessThan(200)
    const edns = await udpQuery(server, query(manyName, 'A', { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] }))
    expect(edns.packet.flag_tc).toBe(true)
    expect(edns.bytes).toBeLessThanOrEqual(1232)
    expect(edns.packet.answers!.length).toBeGreaterThan(classic.packet.answers!.length)
    expect(edns.packet.additionals!.some((a) => a.type === 'OPT')).toBe(true)
    const whole = await tcpQuery(server.host, server.port, query(manyName))
    expect(whole.flag_tc).toBe(false)
    expect(dataOf(whole).sort()).toEqual([...manyIps].sort())
  })

  it('forwards other names to the upstream over UDP and TCP, and says recursion is available', async () => {
    const upstream = await startUpstream('answer')
    started.push(upstream)
    const server = await startServer({ upstreams: [{ host: upstream.host, port: upstream.port }] })
    const q = query('example.com')
    const { packet: udp } = await udpQuery(server, q)
    expect(udp.id).toBe(q.id)
    expect(rcodeOf(udp)).toBe(NOERROR)
    expect(dataOf(udp)).toEqual(['192.0.2.1'])
    expect(udp.flag_ra).toBe(true)
    const tcp = await tcpQuery(server.host, server.port, query('example.org'))
    expect(dataOf(tcp)).toEqual(['192.0.2.1'])
    // Our own names are never forwarded.
    const before = upstream.udpQueries
    await udpQuery(server, query('nope.test.zone'))
    expect(upstream.udpQueries).toBe(before)
  })

  it('asks the upstream again over TCP when its UDP answer was truncated and the client came over TCP', async () => {
    const upstream = await startUpstream('truncate-udp')
    started.push(upstream)
    const server = await startServer({ upstreams: [{ host: upstream.host, port: upstream.port }] })
    const { packet: udp } = await udpQuery(server, query('big.example.com'))
    expect(udp.flag_tc).toBe(true)
    const tcp = await tcpQuery(server.host, server.port, query('big.example.com'))
    expect(tcp.flag_tc).toBe(false)
    expect(dataOf(tcp)).toEqual(['192.0.2.1'])
  })

  it('answers REFUSED for other names when there is no upstream', async () => {
    const server = await startServer({ upstreams: [] })
    const { packet } = await udpQuery(server, query('example.com'))
    expect(rcodeOf(packet)).toBe(REFUSED)
    expect(packet.flag_ra).toBe(false)
  })

  it('never takes itself as an upstream', async () => {
    const server = await startServer({ upstreams: [] })
    expect(upstreamsFromResolvConf('nameserver 10.0.0.53\n', { host: '127.0.0.53', port: 53 })).toEqual([{ host: '10.0.0.53', port: 53 }])
    expect(upstreamsFromResolvConf('# ours\nnameserver 127.0.0.53\nnameserver 10.0.0.53\n', { host: '127.0.0.53', port: 53 })).toEqual([{ host: '10.0.0.53', port: 53 }])
    // Bound to every address, every loopback and local address is us.
    expect(upstreamsFromResolvConf('nameserver 127.0.0.1\nnameserver ::1\n', { host: '0.0.0.0', port: 53 })).toEqual([])
    // Another port is another server; at most three (resolv.conf's MAXNS); scopes are dropped.
    expect(upstreamsFromResolvConf('nameserver 127.0.0.1\nnameserver fe80::1%eth0\nnameserver 10.0.0.1\nnameserver 10.0.0.2\n', { host: '127.0.0.1', port: 5353 })).toEqual([
      { host: '127.0.0.1', port: 53 },
      { host: 'fe80::1', port: 53 },
      { host: '10.0.0.1', port: 53 },
    ])
    // A server given itself as upstream (same address and port) drops it and refuses instead of looping.
    const { host, port } = { host: server.host, port: server.port }
    await server.close()
    started.splice(started.indexOf(server), 1)
    const looped = await startServer({ host, port, upstreams: [{ host, port }, { host, port: port + 1 }] })
    expect(looped.upstreamList).toEqual([{ host, port: port + 1 }])
    const alone = await startServer({ host: loopbackHost(), port: 0, resolvConfPath: '/nonexistent/resolv.conf', upstreams: undefined })
    expect(alone.upstreamList).toEqual([])
    expect(rcodeOf((await udpQuery(alone, query('example.com'))).packet)).toBe(REFUSED)
  })

  it('bounds forwards in flight (REFUSED past it) and answers SERVFAIL when the upstream stays silent', async () => {
    const upstream = await startUpstream('silent')
    started.push(upstream)
    const server = await startServer({ upstreams: [{ host: upstream.host, port: upstream.port }], forwardTimeoutMs: 400, forwardsInFlightMax: 1 })
    const first = udpQuery(server, query('slow.example.com'))
    await new Promise((r) => setTimeout(r, 50))
    const startedAt = Date.now()
    const second = await udpQuery(server, query('other.example.com'))
    expect(rcodeOf(second.packet)).toBe(REFUSED)
    expect(Date.now() - startedAt).toBeLessThan(200)
    expect(rcodeOf((await first).packet)).toBe(SERVFAIL)
  })

  it('bounds TCP connections and still serves after malformed queries', async () => {
    const server = await startServer({ tcpConnectionsMax: 2 })
    const connect = (): Promise<net.Socket> =>
      new Promise((resolve) => {
        const socket = net.connect({ host: server.host, port: server.port }, () => resolve(socket))
      })
    const held = [await connect(), await connect()]
    await expect(tcpQuery(server.host, server.port, query('web.test.zone'), 1_000)).rejects.toThrow(/closed|ECONNRESET/)
    held[0]!.destroy()
    await new Promise((r) => setTimeout(r, 100))
    expect((await tcpQuery(server.host, server.port, query('web.test.zone'))).answers!.length).toBe(1)
    held[1]!.destroy()
    // Twelve header bytes claiming a question that is not there.
    const garbage = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff])
    const bad = await udpExchange(server.host, server.port, garbage)
    expect(bad.packet.id).toBe(0x1234)
    expect(rcodeOf(bad.packet)).toBe(FORMERR)
    expect((await udpQuery(server, query('web.test.zone'))).packet.answers!.length).toBe(1)
  })
})
