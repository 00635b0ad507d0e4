// The peer data path (net/peer-data.ts, net/peer-data-client.ts) between two
// real libp2p hosts on loopback: peer A's service proxy reaches an endpoint
// behind peer B over one TLS connection per client connection, keyed through
// B's /shoal/tunnel/1 stream. Bytes arrive intact both ways, the tunnel
// stream carries no data; half-close and backpressure cross it; a connection
// without B's key reaches nothing; a silent or surplus caller is dropped; a
// refused target is answered before any client byte; and when the data port
// cannot be reached the proxy falls back to the tunnel stream, saying so once.
import { createHash, randomBytes } from 'node:crypto'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { PeerHost } from '../../net/host.js'
import { PeerDataServer, peerDataTlsOptions } from '../../net/peer-data.js'
import { PeerDataDialer } from '../../net/peer-data-client.js'
import type { ProxyEndpoint } from '../../net/proxy-types.js'
import { ServiceProxy } from '../../net/service-proxy.js'
import { TunnelClient, TunnelServer } from '../../net/tunnel.js'
import { encodeTargetRequest } from '../../net/tunnel-wire.js'
import { firehose } from './firehose.js'
import { bytesUntilEnd, LoopbackPeers, roundTrip, servicePort, sha, until, writtenWhenStalled } from './tunnel-fixture.js'

let peers: LoopbackPeers
let hostA: PeerHost
let hostB: PeerHost
let dataServer: PeerDataServer
let tunnelServer: TunnelServer
let dialer: PeerDataDialer
let proxy: ServiceProxy
const logged: string[] = []
/** Connections B's targets accepted (every target server of this file counts here). */
let targetConnections = 0

async function listen(server: Server, host: string): Promise<ProxyEndpoint> {
  server.on('connection', () => targetConnections++)
  return peers.listen(server, host)
}

/** Resolves when `socket` closes: whether it saw an error and how many bytes it read. */
function closed(socket: Socket): Promise<{ error: boolean; bytes: number }> {
  return new Promise((resolve) => {
    let error = false
    let bytes = 0
    socket.on('data', (c: Buffer) => (bytes += c.byteLength))
    socket.on('error', () => (error = true))
    socket.once('close', () => resolve({ error, bytes }))
  })
}

let echo: ProxyEndpoint

beforeAll(async () => {
  peers = await LoopbackPeers.start()
  ;({ hostA, hostB } = peers)
  dataServer = await PeerDataServer.start({ host: '127.0.0.1', pendingMax: 3, handshakeTimeoutMs: 1500 })
  tunnelServer = new TunnelServer({ host: hostB, dataPath: dataServer })
  await tunnelServer.start()
  dialer = new PeerDataDialer({ tunnel: new TunnelClient(hostA), log: (l) => logged.push(l) })
  proxy = new ServiceProxy({ tunnel: dialer, nodePortAddresses: [] })
  // Answers with the hash of everything it got, only after the client's end: half-close must cross.
  echo = await listen(
    createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined)
      const hash = createHash('sha256')
      let length = 0
      s.on('data', (c: Buffer) => {
        hash.update(c)
        length += c.byteLength
      })
      s.on('end', () => s.end(`${length} ${hash.digest('hex')}`))
    }),
    '127.79.204.1',
  )
  await proxy.apply([servicePort('default/echo:8080/TCP', '127.77.204.1', [echo])])
})

afterAll(async () => {
  await proxy.close()
  await tunnelServer.stop()
  await dataServer.close()
  await peers.stop()
})

describe('the peer data path', () => {
  it('carries connections to an endpoint behind B over TLS, not the tunnel stream, half-close included', async () => {
    const small = Buffer.from('hello over the data path')
    expect((await roundTrip('127.77.204.1', 8080, small)).toString()).toBe(`${small.length} ${sha(small)}`)
    const bulk = randomBytes(8 * 1024 * 1024)
    expect((await roundTrip('127.77.204.1', 8080, bulk)).toString()).toBe(`${bulk.length} ${sha(bulk)}`)
    expect(proxy.directPeerConnectsTotal).toBe(2)
    expect(proxy.tunnelConnectsTotal).toBe(0)
    expect(dataServer.connectedTotal).toBe(2)
    expect(tunnelServer.connectedTotal).toBe(0)
    expect(tunnelServer.offersTotal).toBe(1)
    expect(logged.filter((l) => l.includes('direct TLS data path'))).toHaveLength(1)
    await until(() => dataServer.active === 0)
  })

  it('holds a fast endpoint back while the client does not read, and then delivers everything', { timeout: 30_000 }, async () => {
    const totalBytes = 96 * 1024 * 1024
    const source = firehose(totalBytes, 5)
    const endpoint = await listen(source.server, '127.79.204.2')
    await proxy.apply([servicePort('default/echo:8080/TCP', '127.77.204.1', [echo]), servicePort('default/firehose:8080/TCP', '127.77.204.2', [endpoint])])
    const client = connect({ host: '127.77.204.2', port: 8080 })
    client.pause()
    const stalledAt = await writtenWhenStalled(source)
    expect(source.writtenBytes()).toBe(stalledAt)
    // What the relays hold is bounded by socket buffers and high-water marks, far below what was offered.
    expect(stalledAt).toBeLessThan(32 * 1024 * 1024)
    expect(await bytesUntilEnd(client)).toBe(totalBytes)
    expect(proxy.tunnelConnectsTotal).toBe(0)
  })

  it('answers a refused target before any client byte, so the proxy moves to the next endpoint', async () => {
    const refused: ProxyEndpoint = { ip: '127.79.204.3', port: 9, viaPeerId: hostB.peerId.toString() }
    const failure = await dialer.dial(hostB.peerId.toString(), refused.ip, refused.port, AbortSignal.timeout(5000)).catch((e: Error) => e)
    expect(failure).toMatchObject({ name: 'TunnelConnectError', code: 'ECONNREFUSED' })
    await proxy.apply([servicePort('default/echo:8080/TCP', '127.77.204.1', [echo]), servicePort('default/half-dead:8080/TCP', '127.77.204.3', [refused, echo])])
    const moved = proxy.failedConnectsTotal
    for (let k = 0; k < 2; k++) expect((await roundTrip('127.77.204.3', 8080, Buffer.from('x'))).toString()).toBe(`1 ${sha(Buffer.from('x'))}`)
    expect(proxy.failedConnectsTotal - moved).toBeGreaterThanOrEqual(1)
    expect(proxy.tunnelConnectsTotal).toBe(0)
  })

  it('closes a connection without our key, or in clear text, before it reaches anything', async () => {
    const before = targetConnections
    const droppedBefore = dataServer.droppedTotal
    const stranger = tlsConnect({ host: '127.0.0.1', port: dataServer.port, ...peerDataTlsOptions, pskCallback: () => ({ psk: randomBytes(32), identity: 'not-issued' }), checkServerIdentity: () => undefined })
    stranger.write(encodeTargetRequest(echo.ip, echo.port))
    expect(await closed(stranger)).toMatchObject({ error: true, bytes: 0 })
    // A real identity with the wrong key fails the handshake just the same.
    const { identity } = dataServer.offer(hostA.peerId.toString())
    const impostor = tlsConnect({ host: '127.0.0.1', port: dataServer.port, ...peerDataTlsOptions, pskCallback: () => ({ psk: randomBytes(32), identity }), checkServerIdentity: () => undefined })
    expect(await closed(impostor)).toMatchObject({ error: true, bytes: 0 })
    const plain = connect({ host: '127.0.0.1', port: dataServer.port })
    plain.write(encodeTargetRequest(echo.ip, echo.port))
    const plainOutcome = await closed(plain)
    expect(plainOutcome.bytes).toBeLessThan(64)
    await until(() => dataServer.droppedTotal - droppedBefore >= 3)
    expect(targetConnections).toBe(before)
  })

  it('drops callers past its pending bound at once, and silent ones after the handshake timeout', async () => {
    const droppedBefore = dataServer.droppedTotal
    const silent = [0, 1, 2].map(() => connect({ host: '127.0.0.1', port: dataServer.port }))
    const outcomes = silent.map(closed)
    await until(() => dataServer.pending === 3)
    const surplus = connect({ host: '127.0.0.1', port: dataServer.port })
    const startedAt = Date.now()
    await closed(surplus)
    expect(Date.now() - startedAt).toBeLessThan(1000)
    await Promise.all(outcomes)
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1000)
    expect(dataServer.droppedTotal - droppedBefore).toBeGreaterThanOrEqual(4)
    await until(() => dataServer.pending === 0)
    // The path still works for keyed callers.
    expect((await roundTrip('127.77.204.1', 8080, Buffer.from('after'))).toString()).toBe(`5 ${sha(Buffer.from('after'))}`)
  })

  it('asks again once when its cached key stops working (a restarted peer), and stays on the direct path', async () => {
    await proxy.apply([servicePort('default/echo:8080/TCP', '127.77.204.1', [echo])])
    const offersBefore = tunnelServer.offersTotal
    const directBefore = proxy.directPeerConnectsTotal
    dataServer.revoke(hostA.peerId.toString())
    for (let k = 0; k < 2; k++) expect((await roundTrip('127.77.204.1', 8080, Buffer.from('again'))).toString()).toBe(`5 ${sha(Buffer.from('again'))}`)
    expect(tunnelServer.offersTotal - offersBefore).toBe(1)
    expect(proxy.directPeerConnectsTotal - directBefore).toBe(2)
    expect(proxy.tunnelConnectsTotal).toBe(0)
  })

  it('falls back to the tunnel stream when the data port cannot be reached, and says so once', async () => {
    // B offers a port where nothing listens (as behind a firewall that refuses it).
    const closedPort = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as AddressInfo).port
        s.close(() => resolve(port))
      })
    })
    const offering = new TunnelClient(hostA)
    const realOffer = offering.requestOffer.bind(offering)
    offering.requestOffer = async (peer, signal) => {
      const route = await realOffer(peer, signal)
      return { ...route, offer: { ...route.offer, port: closedPort } }
    }
    const fallbackDialer = new PeerDataDialer({ tunnel: offering, log: (l) => logged.push(l) })
    const tunnelled = new ServiceProxy({ tunnel: fallbackDialer, nodePortAddresses: [] })
    try {
      await tunnelled.apply([servicePort('default/echo:8080/TCP', '127.77.204.9', [echo])])
      const tunnelBefore = tunnelServer.connectedTotal
      for (let k = 0; k < 3; k++) expect((await roundTrip('127.77.204.9', 8080, Buffer.from('via tunnel'))).toString()).toBe(`10 ${sha(Buffer.from('via tunnel'))}`)
      expect(tunnelled.tunnelConnectsTotal).toBe(3)
      expect(tunnelled.directPeerConnectsTotal).toBe(0)
      expect(tunnelServer.connectedTotal - tunnelBefore).toBe(3)
      expect(logged.filter((l) => l.includes('no direct data path to peer'))).toHaveLength(1)
    } finally {
      await tunnelled.close()
    }
  })
})
