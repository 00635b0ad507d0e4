// Two real libp2p hosts on loopback for the tunnel tests: peer A's service
// proxy reaches TCP endpoints it is told only peer B can reach. Also the
// client side those tests share: round trips with half-close, hashes, waits,
// and the reading end of a backpressure test.
import { createHash } from 'node:crypto'
import { connect, type AddressInfo, type Server, type Socket } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createPeerHost, type PeerHost } from '../../net/host.js'
import { generateClusterSecret } from '../../net/identity.js'
import type { ProxyEndpoint, ProxyServicePort } from '../../net/proxy-types.js'
import type { Firehose } from './firehose.js'

/** How long a firehose must write nothing to count as held back. */
const stallQuietMs = 300
/** A loaded machine may take a few seconds to fill every window; past this the test sees it still writing. */
const stallWaitMaxMs = 15_000

export class LoopbackPeers {
  private readonly servers: Server[] = []

  private constructor(
    readonly hostA: PeerHost,
    readonly hostB: PeerHost,
  ) {}

  /** Two hosts of one cluster, A knowing B's addresses. */
  static async start(): Promise<LoopbackPeers> {
    const secret = generateClusterSecret()
    const newHost = async (): Promise<PeerHost> => createPeerHost({ privateKey: await generateKeyPair('Ed25519'), clusterSecret: secret, listen: ['/ip4/127.0.0.1/tcp/0'] })
    const peers = new LoopbackPeers(await newHost(), await newHost())
    await peers.hostA.peerStore.merge(peers.hostB.peerId, { multiaddrs: peers.hostB.getMultiaddrs() })
    return peers
  }

  /** Starts `server` on `ip`: an endpoint A's proxy is told only B can reach. */
  async listen(server: Server, ip: string): Promise<ProxyEndpoint> {
    this.servers.push(server)
    await new Promise<void>((resolve) => server.listen({ host: ip, port: 0 }, resolve))
    return { ip, port: (server.address() as AddressInfo).port, viaPeerId: this.hostB.peerId.toString() }
  }

  /** Closes the endpoints and stops both hosts (after the caller closed what runs on them). */
  async stop(): Promise<void> {
    for (const s of this.servers) s.close()
    await this.hostA.stop()
    await this.hostB.stop()
  }
}

export function servicePort(id: string, vip: string, endpoints: ProxyEndpoint[]): ProxyServicePort {
  return { id, vip, port: 8080, protocol: 'TCP', sessionAffinity: 'None', affinityTimeoutMs: 0, endpoints }
}

export async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Sends `payload`, half-closes, and reads everything until the far side ends. */
export function roundTrip(host: string, port: number, payload: Buffer): Promise<Buffer> {
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

export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** Waits until `source` writes nothing more for a while (or the wait ends), and returns what it had written by then. */
export async function writtenWhenStalled(source: Firehose): Promise<number> {
  let stalledAt = -1
  const deadline = Date.now() + stallWaitMaxMs
  while (source.writtenBytes() !== stalledAt && Date.now() < deadline) {
    stalledAt = source.writtenBytes()
    await new Promise((r) => setTimeout(r, stallQuietMs))
  }
  return stalledAt
}

/** Resumes a paused `socket` and counts the bytes it reads until the far side ends. */
export function bytesUntilEnd(socket: Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    let received = 0
    socket.on('data', (c: Buffer) => (received += c.byteLength))
    socket.on('end', () => resolve(received))
    socket.on('error', reject)
    socket.resume()
  })
}
