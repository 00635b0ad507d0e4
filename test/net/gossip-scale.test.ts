// Twenty peers on one address (as on a test machine, or behind one NAT) must
// keep hearing each other: gossipsub's IP-colocation penalty once graylisted
// them all about half a minute in, and every peer looked dead.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, describe, expect, it } from 'vitest'
import { GossipMembership, type LocalHealth } from '../../net/gossip.js'
import { createPeerHost, type PeerHost } from '../../net/host.js'
import { generateClusterSecret } from '../../net/identity.js'

const peerCount = 20
const hosts: PeerHost[] = []
const members: GossipMembership[] = []

afterAll(async () => {
  for (const m of members) await m.stop().catch(() => {})
  for (const h of hosts) await Promise.resolve(h.stop()).catch(() => {})
})

function health(host: PeerHost, index: number): LocalHealth {
  const r = { cpuMillis: 1000, memoryBytes: 1 << 30 }
  return {
    name: `p${index}`, peerId: host.peerId.toString(), addresses: [], apiAddress: null, capacity: r, allocatable: r,
    load: { cpuPercent: 0, memoryUsedBytes: 0, loadAverage1m: 0 }, podCount: 0, runtime: 'none', version: 'test', raftRole: 'none',
  }
}

function aliveCounts(): number[] {
  return members.map((m) => m.members().filter((v) => v.state === 'alive').length)
}

async function until(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 100))
  }
  return true
}

describe('gossip at twenty peers on one address', () => {
  it('everyone sees everyone alive, and still does ten seconds later', async () => {
    const secret = generateClusterSecret()
    for (let i = 0; i < peerCount; i++) {
      const host = await createPeerHost({ privateKey: await generateKeyPair('Ed25519'), clusterSecret: secret, listen: ['/ip4/127.0.0.1/tcp/0'] })
      hosts.push(host)
      const membership = new GossipMembership({ host, localHealth: () => health(host, i) })
      members.push(membership)
      await membership.start()
    }
    // Everyone connected to everyone (in a real cluster the connection keeper and the Raft
    // leader gave peers 15-22 connections): more than ten peers behind one address.
    for (let i = 0; i < peerCount; i++) {
      for (let j = i + 1; j < peerCount; j++) await hosts[i]!.dial(hosts[j]!.getMultiaddrs()[0]!).catch(() => {})
    }
    const converged = await until(() => aliveCounts().every((n) => n === peerCount - 1), 30_000)
    expect(converged, `alive counts: ${aliveCounts().join(' ')}`).toBe(true)
    await new Promise((r) => setTimeout(r, 10_000))
    expect(aliveCounts()).toEqual(new Array<number>(peerCount).fill(peerCount - 1))
  }, 90_000)
})
