// /shoal/tunnel/1 between two real libp2p hosts on loopback: peer A's service
// proxy reaches endpoints that it is told only peer B can reach, through B.
// Bytes arrive intact both ways (and in bulk), a refused connect on B moves
// A's proxy to the next endpoint before any client byte is committed,
// half-close crosses the tunnel, and B serves at most its bound of streams.
import { createHash } from 'node:crypto'
import { connect, createServer, type AddressInfo, type Server } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPeerHost, type PeerHost } from '../../net/host.js'
import { generateClusterSecret } from '../../net/identity.js'
import type { ProxyEndpoint, ProxyServicePort, TunnelConnection } from '../../net/proxy-types.js'
import { ServiceProxy } from '../../net/service-proxy.js'
import { TunnelClient, TunnelServer } from '../../net/tunnel.js'
import { firehose } from './firehose.js'

const streamsMax = 6
let hostA: PeerHost
let hostB: PeerHost
let tunnelServer: TunnelServer
let tunnelClient: TunnelClient
let proxy: ServiceProxy
let echo: ProxyEndpoint
const servers: Server[] = []

async function listen(server: Server, host: string): Promise<ProxyEndpoint> {
  servers.push(server)
  await new Promise<void>((resolve) => server.listen({ host, port: 0 }, resolve))
  return { ip: host, port: (server.address() as AddressInfo).port, viaPeerId: hostB.peerId.toString() }
}

function servicePort(id: string, vip: string, endpoints: ProxyEndpoint[]): ProxyServicePort {
  return { id, vip, port: 8080, protocol: 'TCP', sessionAffinity: 'None', affinityTimeoutMs: 0, endpoints }
}

async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Sends `payload`, half-closes, and reads everything until the far side ends. */
function roundTrip(host: string, port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true })
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => {
      socket.end()
      resolve(Buffer.concat(chunks))
    })
    socket.on('error', reject)
    socket.end(payload)
  })
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

beforeAll(async () => {
  const secret = generateClusterSecret()
  hostA = await createPeerHost({ privateKey: await generateKeyPair('Ed25519'), clusterSecret: secret, listen: ['/ip4/127.0.0.1/tcp/0'] })
  hostB = await createPeerHost({ privateKey: await generateKeyPair('Ed25519'), clusterSecret: secret, listen: ['/ip4/127.0.0.1/tcp/0'] })
  await hostA.peerStore.merge(hostB.peerId, { multiaddrs: hostB.getMultiaddrs() })
  tunnelServer = new TunnelServer({ host: hostB, streamsMax })
  await tunnelServer.start()
  tunnelClient = new TunnelClient(hostA)
  proxy = new ServiceProxy({ tunnel: tunnelClient, nodePortAddresses: [] })
  // An echo server that answers only after the client finished sending: half-close must cross the tunnel.
  echo = await listen(
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
  for (const s of servers) s.close()
  await hostA.stop()
  await hostB.stop()
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
    const banner = await listen(createServer((s) => s.end('220 ready\r\n')), '127.79.203.3')
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
    const endpoint = await listen(source.server, '127.79.203.4')
    await proxy.apply([servicePort('default/firehose:8080/TCP', '127.77.203.4', [endpoint])])
    const client = connect({ host: '127.77.203.4', port: 8080 })
    client.pause()
    // Stalled: nothing more written for 300 ms (a loaded machine may take a few seconds to fill every window).
    let stalledAt = -1
    const deadline = Date.now() + 15_000
    while (source.writtenBytes() !== stalledAt && Date.now() < deadline) {
      stalledAt = source.writtenBytes()
      await new Promise((r) => setTimeout(r, 300))
    }
    expect(source.writtenBytes()).toBe(stalledAt)
    expect(stalledAt).toBeLessThan(totalBytes)
    let received = 0
    await new Promise<void>((resolve, reject) => {
      client.on('data', (c: Buffer) => (received += c.byteLength))
      client.on('end', resolve)
      client.on('error', reject)
      client.resume()
    })
    expect(received).toBe(totalBytes)
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
