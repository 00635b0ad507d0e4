// /shoal/tunnel/1 between two real libp2p hosts on loopback: peer A's service
// proxy reaches endpoints that it is told only peer B can reach, through B.
// Bytes arrive intact both ways (and in bulk), a refused connect on B moves
// A's proxy to the next endpoint before any client byte is committed,
// half-close crosses the tunnel, and B serves at most its bound of streams.
import { connect, createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { PeerHost } from '../../net/host.js'
import type { ProxyEndpoint, TunnelConnection } from '../../net/proxy-types.js'
import { ServiceProxy } from '../../net/service-proxy.js'
import { TunnelClient, TunnelServer } from '../../net/tunnel.js'
import { firehose } from './firehose.js'
import { bytesUntilEnd, LoopbackPeers, roundTrip, servicePort, sha, until, writtenWhenStalled } from './tunnel-fixture.js'

const streamsMax = 6
let peers: LoopbackPeers
let hostB: PeerHost
let tunnelServer: TunnelServer
let tunnelClient: TunnelClient
let proxy: ServiceProxy
let echo: ProxyEndpoint

beforeAll(async () => {
  peers = await LoopbackPeers.start()
  hostB = peers.hostB
  tunnelServer = new TunnelServer({ host: hostB, streamsMax })
  await tunnelServer.start()
  tunnelClient = new TunnelClient(peers.hostA)
  proxy = new ServiceProxy({ tunnel: tunnelClient, nodePortAddresses: [] })
  // An echo server that answers only after the client finished sending: half-close must cross the tunnel.
  echo = await peers.listen(
    createServer({ allowHalfOpen: true }, (s) => {
      // A reset from the tunnel (an aborted stream) is expected here.
      s.on('error', () => undefined)
      s.pipe(s)
    }),
    '127.79.203.1',
  )
})

afterAll(async () => {
  await proxy.close()
  await tunnelServer.stop()
  await peers.stop()
})

describe('the peer tunnel', () => {
  it('reaches an endpoint behind peer B from peer A\'s proxy, bytes intact both ways', async () => {
    await proxy.apply([servicePort('default/echo:8080/TCP', '127.77.203.1', [echo])])
    const before = tunnelServer.connectedTotal
    expect((await roundTrip('127.77.203.1', 8080, Buffer.from('hello through B'))).toString()).toBe('hello through B')
    const bulk = Buffer.alloc(8 * 1024 * 1024)
    for (let k = 0; k < bulk.length; k += 4) bulk.writeUInt32LE(k * 2654435761 >>> 0, k)
    expect(sha(await roundTrip('127.77.203.1', 8080, bulk))).toBe(sha(bulk))
    expect(tunnelServer.connectedTotal - before).toBe(2)
    await until(() => tunnelServer.active === 0)
  })

  it('delivers what the endpoint says first (a banner) and its close, with nothing sent by the client', async () => {
    const banner = await peers.listen(createServer((s) => s.end('220 ready\r\n')), '127.79.203.3')
    await proxy.apply([servicePort('default/banner:8080/TCP', '127.77.203.3', [banner])])
    const heard = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.77.203.3', port: 8080 })
      const chunks: Buffer[] = []
      socket.on('data', (c: Buffer) => chunks.push(c))
      socket.on('end', () => resolve(Buffer.concat(chunks).toString()))
      socket.on('error', reject)
    })
    expect(heard).toBe('220 ready\r\n')
  })

  it('holds a fast endpoint back while the client does not read, and then delivers everything', { timeout: 30_000 }, async () => {
    const totalBytes = 96 * 1024 * 1024
    const source = firehose(totalBytes, 3)
    const endpoint = await peers.listen(source.server, '127.79.203.4')
    await proxy.apply([servicePort('default/firehose:8080/TCP', '127.77.203.4', [endpoint])])
    const client = connect({ host: '127.77.203.4', port: 8080 })
    client.pause()
    const stalledAt = await writtenWhenStalled(source)
    expect(source.writtenBytes()).toBe(stalledAt)
    expect(stalledAt).toBeLessThan(totalBytes)
    expect(await bytesUntilEnd(client)).toBe(totalBytes)
  })

  it('moves to the next endpoint when B cannot connect, before any client byte is lost', async () => {
    const refused: ProxyEndpoint = { ip: '127.79.203.2', port: 9, viaPeerId: hostB.peerId.toString() }
    await proxy.apply([servicePort('default/half-dead:8080/TCP', '127.77.203.2', [refused, echo])])
    const failedBefore = tunnelServer.failedTotal
    const movedBefore = proxy.failedConnectsTotal
    for (let k = 0; k < 4; k++) expect((await roundTrip('127.77.203.2', 8080, Buffer.from(`try ${k}`))).toString()).toBe(`try ${k}`)
    expect(tunnelServer.failedTotal - failedBefore).toBeGreaterThanOrEqual(2)
    expect(proxy.failedConnectsTotal - movedBefore).toBeGreaterThanOrEqual(2)
  })

  it('answers the caller with the reason a connect failed', async () => {
    const failure = await tunnelClient.dial(hostB.peerId.toString(), '127.79.203.2', 9, AbortSignal.timeout(5000)).catch((e: Error) => e)
    expect(failure).toMatchObject({ name: 'TunnelConnectError', code: 'ECONNREFUSED' })
  })

  it(`serves at most ${streamsMax} streams at once and refuses the next clearly`, async () => {
    const open: TunnelConnection[] = []
    await until(() => tunnelServer.active === 0)
    for (let k = 0; k < streamsMax; k++) open.push(await tunnelClient.dial(hostB.peerId.toString(), echo.ip, echo.port, AbortSignal.timeout(5000)))
    expect(tunnelServer.active).toBe(streamsMax)
    const refused = await tunnelClient.dial(hostB.peerId.toString(), echo.ip, echo.port, AbortSignal.timeout(5000)).catch((e: Error) => e)
    expect(refused).toMatchObject({ name: 'TooManyTunnelStreamsError' })
    for (const t of open) t.abort(new Error('test done'))
    await until(() => tunnelServer.active === 0)
  })
})
