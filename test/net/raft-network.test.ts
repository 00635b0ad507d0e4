// Raft over real libp2p hosts on loopback: RaftDriver + LevelLogStore +
// RaftNetwork on each of three peers, and the RPC used to forward requests.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterEach, describe, expect, it } from 'vitest'
import { RaftDriver } from '../../consensus/driver.js'
import { LevelLogStore } from '../../consensus/log-store.js'
import { RaftNode, bootstrapState } from '../../consensus/node.js'
import { createPeerHost, type PeerHost } from '../../net/host.js'
import { generateClusterSecret, peerIdOf } from '../../net/identity.js'
import { RaftNetwork } from '../../net/raft-transport.js'
import { RpcEndpoint } from '../../net/rpc.js'

interface TestPeer {
  id: string
  host: PeerHost
  network: RaftNetwork
  rpc: RpcEndpoint
  driver: RaftDriver
  store: LevelLogStore
  applied: number
}

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

async function until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 10))
  }
}

async function startCluster(size: number): Promise<TestPeer[]> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-raftnet-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const secret = generateClusterSecret()
  const keys = await Promise.all(Array.from({ length: size }, () => generateKeyPair('Ed25519')))
  const ids = keys.map(peerIdOf)
  const peers: TestPeer[] = []
  for (const [k, key] of keys.entries()) {
    const id = ids[k]!
    const host = await createPeerHost({ privateKey: key, clusterSecret: secret, listen: ['/ip4/127.0.0.1/tcp/0'] })
    const store = await LevelLogStore.open(join(dir, id))
    await store.bootstrap(bootstrapState(ids))
    const node = new RaftNode({ id, electionTicks: 10, heartbeatTicks: 1 }, await store.load())
    const peer = { id, host, store, applied: 0 } as TestPeer
    peer.network = new RaftNetwork({ host, deliver: (m) => peer.driver.receive(m), onUnreachable: (p) => peer.driver.node.reportUnreachable(p) })
    peer.driver = new RaftDriver({
      node,
      store,
      transport: peer.network,
      application: { apply: (entries) => void (peer.applied += entries.length), restore: () => {} },
      tickIntervalMs: 20,
      pendingProposalsMax: 10_000,
      pendingReadsMax: 100,
    })
    peer.rpc = new RpcEndpoint({
      host,
      handlers: { propose: async (request) => peer.driver.propose(new TextEncoder().encode(String(request))) },
    })
    await peer.network.start()
    await peer.rpc.start()
    peer.driver.start()
    cleanups.push(() => stopPeer(peer))
    peers.push(peer)
  }
  // Everyone learns everyone's addresses by dialling.
  for (const a of peers) for (const b of peers) if (a !== b) await a.host.dial(b.host.getMultiaddrs()[0]!)
  return peers
}

async function stopPeer(peer: TestPeer): Promise<void> {
  await peer.driver.stop()
  await peer.rpc.stop().catch(() => {})
  await peer.network.stop().catch(() => {})
  await peer.host.stop()
  await peer.store.close().catch(() => {})
}

function leaderOf(peers: TestPeer[]): TestPeer | undefined {
  return peers.find((p) => p.driver.stoppedBecause === null && p.driver.node.role === 'leader')
}

describe('Raft over libp2p', () => {
  it('elects a leader, commits proposals, and goes on after the leader stops', async () => {
    const peers = await startCluster(3)
    peers[0]!.driver.campaign()
    await until(() => leaderOf(peers) !== undefined)
    const leader = leaderOf(peers)!
    const indexes = await Promise.all(Array.from({ length: 500 }, (_, k) => leader.driver.propose(new TextEncoder().encode(`p${k}`))))
    expect(new Set(indexes).size).toBe(500)
    await until(() => peers.every((p) => p.driver.appliedIndex >= indexes[indexes.length - 1]!))
    await stopPeer(leader)
    const survivors = peers.filter((p) => p !== leader)
    await until(() => leaderOf(survivors) !== undefined)
    const next = leaderOf(survivors)!
    expect(next.id).not.toBe(leader.id)
    await next.driver.propose(new TextEncoder().encode('after'))
  })

  it('forwards a proposal to the leader over RPC, and carries a NotLeaderError across by name', async () => {
    const peers = await startCluster(3)
    peers[0]!.driver.campaign()
    await until(() => leaderOf(peers) !== undefined)
    const leader = leaderOf(peers)!
    const follower = peers.find((p) => p !== leader)!
    const other = peers.find((p) => p !== leader && p !== follower)!
    await until(() => follower.driver.node.leaderId === leader.id)
    const index = await follower.rpc.call<number>(leader.id, 'propose', 'forwarded')
    expect(index).toBeGreaterThan(0)
    await expect(follower.rpc.call(other.id, 'propose', 'wrong peer')).rejects.toMatchObject({ name: 'NotLeaderError', leaderId: leader.id })
    await expect(follower.rpc.call(leader.id, 'nonexistent', null)).rejects.toMatchObject({ name: 'TypeError' })
    // A peer nobody can reach: the API answers 503 for this, not 500 (the write certainly did not happen).
    const stranger = peerIdOf(await generateKeyPair('Ed25519'))
    await expect(follower.rpc.call(stranger, 'propose', 'to nobody')).rejects.toMatchObject({ name: 'PeerUnreachableError' })
  })
})
