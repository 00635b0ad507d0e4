// /shoal/tunnel-udp/1 between real libp2p hosts on loopback: peer A's service
// proxy serves UDP endpoints it is told only peer B (or C) can reach. VIPs in
// 127.77.204.0/24, endpoints in 127.79.204.0/24. Datagram boundaries (empty
// and 60 KB ones too) survive, each client gets its own answers, a dead peer
// moves new sessions to another endpoint, both sides close idle sessions, and
// B serves at most its bound of sessions.
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createPeerHost, type PeerHost } from '../../net/host.js'
import { generateClusterSecret } from '../../net/identity.js'
import type { ProxyEndpoint, ProxyServicePort } from '../../net/proxy-types.js'
import { ServiceProxy } from '../../net/service-proxy.js'
import { UdpTunnelClient, UdpTunnelServer } from '../../net/tunnel-udp.js'

const sessionsMax = 4
const serverIdleMs = 800
let hostA: PeerHost
let hostB: PeerHost
let hostC: PeerHost
let serverB: UdpTunnelServer
let serverC: UdpTunnelServer
let client: UdpTunnelClient
let proxy: ServiceProxy
const sockets: UdpSocket[] = []

async function newHost(secret: string): Promise<PeerHost> {
  return createPeerHost({ privateKey: await generateKeyPair('Ed25519'), clusterSecret: secret, listen: ['/ip4/127.0.0.1/tcp/0'] })
}

async function bound(address: string): Promise<UdpSocket> {
  const socket = createSocket('udp4')
  sockets.push(socket)
  await new Promise<void>((resolve) => socket.bind({ address, port: 0 }, resolve))
  return socket
}

/** A UDP server on `ip` answering every datagram with `${name}:` and the datagram, reachable (the proxy is told) only through `via`. */
async function echoEndpoint(ip: string, name: string, via: PeerHost): Promise<ProxyEndpoint> {
  const echo = await bound(ip)
  echo.on('message', (msg, from) => echo.send(Buffer.concat([Buffer.from(`${name}:`), msg]), from.port, from.address))
  return { ip, port: echo.address().port, viaPeerId: via.peerId.toString() }
}

function udpPort(id: string, vip: string, endpoints: ProxyEndpoint[], extra: Partial<ProxyServicePort> = {}): ProxyServicePort {
  return { id, vip, port: 5353, protocol: 'UDP', sessionAffinity: 'None', affinityTimeoutMs: 10_800_000, endpoints, ...extra }
}

/** The next `count` datagrams `socket` receives, as text, with the address they came from; rejects after `timeoutMs`. */
function receive(socket: UdpSocket, count: number, timeoutMs = 3000): Promise<Array<{ text: string; from: string; bytes: number }>> {
  return new Promise((resolve, reject) => {
    const got: Array<{ text: string; from: string; bytes: number }> = []
    const timer = setTimeout(() => {
      socket.removeListener('message', onMessage)
      reject(new Error(`received ${got.length} of ${count} datagrams`))
    }, timeoutMs)
    const onMessage = (msg: Buffer, from: { address: string; port: number }): void => {
      got.push({ text: msg.toString('latin1'), from: `${from.address}:${from.port}`, bytes: msg.byteLength })
      if (got.length < count) return
      clearTimeout(timer)
      socket.removeListener('message', onMessage)
      resolve(got)
    }
    socket.on('message', onMessage)
  })
}

/** One datagram to the VIP and its one answer's text (no retry: a lost datagram fails the test). */
async function ask(socket: UdpSocket, vip: string, text: string, timeoutMs = 3000): Promise<string> {
  const answer = receive(socket, 1, timeoutMs)
  socket.send(text, 5353, vip)
  return (await answer)[0]!.text
}

async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 10))
  }
}

beforeAll(async () => {
  const secret = generateClusterSecret()
  ;[hostA, hostB, hostC] = await Promise.all([newHost(secret), newHost(secret), newHost(secret)])
  await hostA.peerStore.merge(hostB.peerId, { multiaddrs: hostB.getMultiaddrs() })
  await hostA.peerStore.merge(hostC.peerId, { multiaddrs: hostC.getMultiaddrs() })
  serverB = new UdpTunnelServer({ host: hostB, sessionsMax, sessionIdleMs: serverIdleMs })
  serverC = new UdpTunnelServer({ host: hostC, sessionsMax, sessionIdleMs: serverIdleMs })
  await serverB.start()
  await serverC.start()
  client = new UdpTunnelClient(hostA)
  proxy = new ServiceProxy({ tunnel: null, udpTunnel: client, nodePortAddresses: [] })
})

beforeEach(async () => {
  // Sessions of the previous test end through B's idle timeout.
  await until(() => serverB.active === 0)
})

afterAll(async () => {
  await proxy.close()
  await serverB.stop()
  for (const s of sockets) s.close()
  await Promise.all([hostA.stop(), hostB.stop(), hostC.stop()])
})

describe('UDP through the peer tunnel', () => {
  it('answers clients through the VIP from an endpoint only B reaches, one datagram per datagram, each client its own', async () => {
    const echo = await echoEndpoint('127.79.204.1', 'b', hostB)
    await proxy.apply([udpPort('default/echo:5353/UDP', '127.77.204.1', [echo])])
    const big = Buffer.alloc(60_000, 'x')
    const one = await bound('127.0.0.1')
    const answers = receive(one, 4)
    for (const d of [Buffer.from('first'), Buffer.alloc(0), big, Buffer.from('last')]) one.send(d, 5353, '127.77.204.1')
    const got = await answers
    expect(got.map((a) => a.bytes)).toEqual([7, 2, 60_002, 6])
    expect(got[0]).toEqual({ text: 'b:first', from: '127.77.204.1:5353', bytes: 7 })
    expect(got[2]!.text).toBe(`b:${big.toString('latin1')}`)
    expect(got[3]!.text).toBe('b:last')

    const clients = await Promise.all(['127.0.0.1', '127.0.0.2', '127.0.0.3'].map(bound))
    const heard = await Promise.all(clients.map(async (c, k) => [await ask(c, '127.77.204.1', `client ${k} a`), await ask(c, '127.77.204.1', `client ${k} b`)]))
    expect(heard).toEqual(clients.map((_, k) => [`b:client ${k} a`, `b:client ${k} b`]))
    expect(serverB.active).toBe(4)
    expect(proxy.udpSessionsOf('default/echo:5353/UDP')).toBe(4)
  })

  it('keeps a client address on one endpoint with ClientIP affinity', async () => {
    const b1 = await echoEndpoint('127.79.204.2', 'b1', hostB)
    const b2 = await echoEndpoint('127.79.204.3', 'b2', hostB)
    await proxy.apply([udpPort('default/sticky:5353/UDP', '127.77.204.2', [b1, b2], { sessionAffinity: 'ClientIP' })])
    const sameAddress = await Promise.all([bound('127.0.0.61'), bound('127.0.0.61'), bound('127.0.0.61')])
    const names = new Set<string>()
    for (const c of sameAddress) names.add((await ask(c, '127.77.204.2', 'hi')).split(':')[0]!)
    expect(names.size).toBe(1)
  })

  it('closes a session on B after its idle timeout; the client\'s next datagram opens a new one', async () => {
    const echo = await echoEndpoint('127.79.204.4', 'b', hostB)
    await proxy.apply([udpPort('default/idle:5353/UDP', '127.77.204.4', [echo])])
    const c = await bound('127.0.0.1')
    expect(await ask(c, '127.77.204.4', 'one')).toBe('b:one')
    expect(serverB.active).toBe(1)
    const idleBefore = serverB.idleClosedTotal
    const startedMs = Date.now()
    await until(() => serverB.active === 0)
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(serverIdleMs - 100)
    expect(serverB.idleClosedTotal - idleBefore).toBe(1)
    await until(() => proxy.udpSessionsOf('default/idle:5353/UDP') === 0)
    expect(await ask(c, '127.77.204.4', 'two')).toBe('b:two')
  })

  it('closes the proxy\'s idle sessions, and with them their streams to B', async () => {
    const quick = new ServiceProxy({ tunnel: null, udpTunnel: client, nodePortAddresses: [], udp: { sessionIdleMs: 200 } })
    try {
      const echo = await echoEndpoint('127.79.204.5', 'b', hostB)
      await quick.apply([udpPort('default/quick:5353/UDP', '127.77.204.5', [echo])])
      const c = await bound('127.0.0.1')
      expect(await ask(c, '127.77.204.5', 'one')).toBe('b:one')
      expect(serverB.active).toBe(1)
      const idleBefore = serverB.idleClosedTotal
      await until(() => quick.udpSessionsOf('default/quick:5353/UDP') === 0 && serverB.active === 0, serverIdleMs - 100)
      expect(serverB.idleClosedTotal).toBe(idleBefore)
    } finally {
      await quick.close()
    }
  })

  it(`serves at most ${sessionsMax} sessions on B and refuses the next clearly`, async () => {
    const echo = await echoEndpoint('127.79.204.6', 'b', hostB)
    await proxy.apply([udpPort('default/bounded:5353/UDP', '127.77.204.6', [echo])])
    const clients = await Promise.all(Array.from({ length: sessionsMax + 1 }, () => bound('127.0.0.1')))
    for (let k = 0; k < sessionsMax; k++) expect(await ask(clients[k]!, '127.77.204.6', `c${k}`)).toBe(`b:c${k}`)
    expect(serverB.active).toBe(sessionsMax)
    const refusedBefore = serverB.refusedTotal
    await expect(ask(clients[sessionsMax]!, '127.77.204.6', 'one too many', 600)).rejects.toThrow(/received 0 of 1/)
    expect(serverB.refusedTotal - refusedBefore).toBe(1)
    const handlers = { onDatagram: () => undefined, onClose: () => undefined }
    const refused = await client.dialDatagrams(hostB.peerId.toString(), echo.ip, echo.port, handlers, AbortSignal.timeout(3000)).catch((e: Error) => e)
    expect(refused).toMatchObject({ name: 'TooManyUdpTunnelSessionsError' })
  })

  it('sends new sessions to another endpoint when a peer is down, losing no first datagram', async () => {
    const viaB = await echoEndpoint('127.79.204.7', 'b', hostB)
    const viaC = await echoEndpoint('127.79.204.8', 'c', hostC)
    await proxy.apply([udpPort('default/two-peers:5353/UDP', '127.77.204.7', [viaB, viaC])])
    const before = await Promise.all([bound('127.0.0.1'), bound('127.0.0.1')])
    const names = await Promise.all(before.map((c) => ask(c, '127.77.204.7', 'hi')))
    expect(names.sort()).toEqual(['b:hi', 'c:hi'])

    await serverC.stop()
    await hostC.stop()
    // Two new sessions: with the two below, B then serves its bound of four.
    const after = await Promise.all(Array.from({ length: 2 }, () => bound('127.0.0.1')))
    for (const c of after) expect(await ask(c, '127.77.204.7', 'again')).toBe('b:again')
    // The session that was on C ended with C's connection; its next datagram goes to B.
    for (const c of before) expect(await ask(c, '127.77.204.7', 'still')).toBe('b:still')
  })
})
