// The production Ready loop (RaftDriver) over real LevelDB stores, three
// nodes in one process joined by an in-process transport through the codec.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { decodeMessage, encodeMessage } from '../../consensus/codec.js'
import { RaftDriver } from '../../consensus/driver.js'
import { LevelLogStore } from '../../consensus/log-store.js'
import { RaftNode, bootstrapState } from '../../consensus/node.js'
import { EntryType, type Entry, type Message, type NodeId } from '../../consensus/types.js'

const ids: NodeId[] = ['n1', 'n2', 'n3']
const encoder = new TextEncoder()
const decoder = new TextDecoder()

class Peer {
  driver: RaftDriver | null = null
  store: LevelLogStore | null = null
  readonly applied: string[] = []
  /** Snapshots received from the leader since the last start. */
  restores = 0

  constructor(
    readonly id: NodeId,
    readonly dir: string,
  ) {}
}

class TestCluster {
  readonly peers = new Map<NodeId, Peer>()
  /** Peers cut off from the network (their messages, both ways, are dropped). */
  readonly cut = new Set<NodeId>()

  constructor(readonly dir: string) {
    for (const id of ids) this.peers.set(id, new Peer(id, join(dir, id)))
  }

  private deliver(m: Message): void {
    if (this.cut.has(m.from) || this.cut.has(m.to)) return
    const bytes = encodeMessage(m)
    setImmediate(() => this.peers.get(m.to)?.driver?.receive(decodeMessage(bytes)))
  }

  /** Compact every this many applied entries (0: never); the application's state is its list of applied values. */
  snapshotEveryEntries = 0

  async start(id: NodeId, bootstrap: boolean): Promise<Peer> {
    const peer = this.peers.get(id)!
    const store = await LevelLogStore.open(peer.dir)
    if (bootstrap) await store.bootstrap(bootstrapState(ids))
    const state = await store.load()
    const node = new RaftNode({ id, electionTicks: 10, heartbeatTicks: 1 }, state)
    // The application keeps no state of its own: a restart begins from the stored snapshot, then replays the log.
    peer.applied.length = 0
    peer.restores = 0
    if (state.snapshot !== null && state.snapshot.data.byteLength > 0) peer.applied.push(...(JSON.parse(decoder.decode(state.snapshot.data)) as string[]))
    peer.store = store
    peer.driver = new RaftDriver({
      node,
      store,
      transport: { send: (messages) => messages.forEach((m) => this.deliver(m)) },
      application: {
        apply: (entries: readonly Entry[]) => {
          for (const e of entries) if (e.type === EntryType.Normal && e.data.byteLength > 0) peer.applied.push(decoder.decode(e.data))
        },
        restore: (snapshot) => {
          peer.restores++
          peer.applied.length = 0
          peer.applied.push(...(JSON.parse(decoder.decode(snapshot.data)) as string[]))
        },
        snapshotData: () => encoder.encode(JSON.stringify(peer.applied)),
      },
      snapshotEveryEntries: this.snapshotEveryEntries,
      tickIntervalMs: 10,
      pendingProposalsMax: 1000,
      pendingReadsMax: 100,
    })
    peer.driver.start()
    return peer
  }

  /** SIGKILL-like: the driver stops where it is; the store is closed without a goodbye. */
  async kill(id: NodeId): Promise<void> {
    const peer = this.peers.get(id)!
    await peer.driver?.stop('killed')
    await peer.store?.close()
    peer.driver = null
    peer.store = null
  }

  leader(): Peer | undefined {
    return [...this.peers.values()].find((p) => p.driver?.node.role === 'leader' && !this.cut.has(p.id))
  }

  async waitForLeader(): Promise<Peer> {
    await until(() => this.leader() !== undefined)
    return this.leader()!
  }
}

async function until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 5))
  }
}

let cluster: TestCluster | null = null
afterEach(async () => {
  if (cluster === null) return
  for (const id of ids) await cluster.kill(id)
  await rm(cluster.dir, { recursive: true, force: true })
  cluster = null
})

async function startCluster(): Promise<TestCluster> {
  cluster = new TestCluster(await mkdtemp(join(tmpdir(), 'shoal-driver-')))
  for (const id of ids) await cluster.start(id, true)
  return cluster
}

describe('RaftDriver on LevelDB', () => {
  it('elects a leader and applies proposals in the same order everywhere', async () => {
    const c = await startCluster()
    const leader = await c.waitForLeader()
    const indexes = await Promise.all(Array.from({ length: 200 }, (_, k) => leader.driver!.propose(encoder.encode(`v${k}`))))
    expect(new Set(indexes).size).toBe(200)
    await until(() => [...c.peers.values()].every((p) => p.applied.length === 200))
    const orders = [...c.peers.values()].map((p) => p.applied.join(','))
    expect(new Set(orders).size).toBe(1)
  })

  it('refuses proposals on a follower with the leader named, and answers linearizable reads there', async () => {
    const c = await startCluster()
    const leader = await c.waitForLeader()
    const follower = [...c.peers.values()].find((p) => p !== leader)!
    // Right after the election the follower may not have heard from the leader yet (then leaderId is null).
    await until(() => follower.driver!.node.leaderId === leader.id)
    await expect(follower.driver!.propose(encoder.encode('x'))).rejects.toMatchObject({ name: 'NotLeaderError', leaderId: leader.id })
    const index = await leader.driver!.propose(encoder.encode('written'))
    const readIndex = await follower.driver!.readIndex()
    expect(readIndex).toBeGreaterThanOrEqual(index)
    // Once the read resolves, the follower has applied the write.
    expect(follower.applied).toContain('written')
  })

  it('survives the leader being killed, and the restarted leader catches up from its store', async () => {
    const c = await startCluster()
    const first = await c.waitForLeader()
    for (let k = 0; k < 20; k++) await first.driver!.propose(encoder.encode(`before${k}`))
    await c.kill(first.id)
    const second = await c.waitForLeader()
    expect(second.id).not.toBe(first.id)
    for (let k = 0; k < 20; k++) await second.driver!.propose(encoder.encode(`after${k}`))
    const restarted = await c.start(first.id, false)
    await until(() => restarted.applied.length === 40)
    expect(restarted.applied.slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, k) => `before${k}`))
    expect(restarted.applied.slice(20)).toEqual(Array.from({ length: 20 }, (_, k) => `after${k}`))
  })

  it('pushes back when too many proposals wait', async () => {
    const c = await startCluster()
    const leader = await c.waitForLeader()
    // Cut the followers off: nothing commits, proposals pile up to the bound.
    for (const id of ids) if (id !== leader.id) c.cut.add(id)
    const pending = Array.from({ length: 1000 }, () => leader.driver!.propose(encoder.encode('p')).catch((err: Error) => err))
    await expect(leader.driver!.propose(encoder.encode('one too many'))).rejects.toMatchObject({ name: 'TooManyPendingError' })
    c.cut.clear()
    const settled = await Promise.all(pending)
    expect(settled.filter((r) => typeof r === 'number').length).toBe(1000)
  })

  it('compacts its log into snapshots, and a follower that fell behind the compaction catches up from one', async () => {
    const c = await startCluster()
    for (const id of ids) await c.kill(id)
    c.snapshotEveryEntries = 50
    for (const id of ids) await c.start(id, false)
    const leader = await c.waitForLeader()
    for (let k = 0; k < 120; k++) await leader.driver!.propose(encoder.encode(`a${k}`))
    await until(() => [...c.peers.values()].every((p) => p.applied.length === 120))
    for (const p of c.peers.values()) expect(p.driver!.node.status().firstIndex).toBeGreaterThan(50)
    const follower = [...c.peers.values()].find((p) => p !== leader)!
    const followerLastIndex = follower.driver!.node.status().lastIndex
    await c.kill(follower.id)
    for (let k = 0; k < 120; k++) await leader.driver!.propose(encoder.encode(`b${k}`))
    // The leader no longer has the entries the follower lacks: it must send a snapshot.
    expect(leader.driver!.node.status().firstIndex).toBeGreaterThan(followerLastIndex + 1)
    const restarted = await c.start(follower.id, false)
    await until(() => restarted.applied.length === 240)
    expect(restarted.restores).toBe(1)
    expect(restarted.applied).toEqual([...Array.from({ length: 120 }, (_, k) => `a${k}`), ...Array.from({ length: 120 }, (_, k) => `b${k}`)])
    expect(leader.driver!.compactions).toBeGreaterThan(0)
  })
})
