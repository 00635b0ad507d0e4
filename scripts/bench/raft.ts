// npm run bench -- raft: three Raft nodes in one process, each on its own
// LevelDB log store (sync on), joined by an in-process transport that still
// encodes and decodes every message. 128-byte proposals; committed proposals
// per second and commit latency with 1 and 256 concurrent proposers; and, in
// the same run and on the same disk, raw LevelDB synced batches for reference.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { decodeMessage, encodeMessage } from '../../consensus/codec.js'
import { RaftDriver, type RaftTransport } from '../../consensus/driver.js'
import { LevelLogStore } from '../../consensus/log-store.js'
import { RaftNode, bootstrapState } from '../../consensus/node.js'
import type { Message, NodeId } from '../../consensus/types.js'
import type { BenchArgs } from '../bench.js'
import { profileWhile } from './profile.js'
import { percentile, report, round } from './report.js'

const proposalBytes = 128
const ids: NodeId[] = ['n1', 'n2', 'n3']

/** Delivers on the next turn of the event loop, in order per sender, through the real codec. */
class InProcessTransport implements RaftTransport {
  private pending: Uint8Array[] = []
  private scheduled = false

  constructor(private readonly deliver: (m: Message) => void) {}

  send(messages: readonly Message[]): void {
    for (const m of messages) this.pending.push(encodeMessage(m))
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      const batch = this.pending
      this.pending = []
      for (const bytes of batch) this.deliver(decodeMessage(bytes))
    })
  }
}

interface Cluster {
  drivers: Map<NodeId, RaftDriver>
  stores: LevelLogStore[]
  dir: string
}

async function startCluster(): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-raft-'))
  const drivers = new Map<NodeId, RaftDriver>()
  const stores: LevelLogStore[] = []
  const deliver = (m: Message): void => drivers.get(m.to)?.receive(m)
  for (const id of ids) {
    const store = await LevelLogStore.open(join(dir, id))
    await store.bootstrap(bootstrapState(ids))
    const node = new RaftNode({ id, electionTicks: 10, heartbeatTicks: 1 }, await store.load())
    const driver = new RaftDriver({
      node,
      store,
      transport: new InProcessTransport(deliver),
      application: { apply: () => {}, restore: () => {} },
      tickIntervalMs: 100,
      pendingProposalsMax: 100_000,
      pendingReadsMax: 10_000,
    })
    drivers.set(id, driver)
    stores.push(store)
  }
  for (const d of drivers.values()) d.start()
  drivers.get('n1')!.campaign()
  await waitFor(() => drivers.get('n1')!.node.role === 'leader' && drivers.get('n1')!.appliedIndex >= 4)
  return { drivers, stores, dir }
}

async function stopCluster(cluster: Cluster): Promise<void> {
  for (const d of cluster.drivers.values()) await d.stop()
  for (const s of cluster.stores) await s.close()
  await rm(cluster.dir, { recursive: true, force: true })
}

async function waitFor(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((r) => setTimeout(r, 5))
}

/** `proposers` loops proposing back to back for `seconds`; returns throughput and latencies. */
async function measure(leader: RaftDriver, proposers: number, seconds: number): Promise<{ perSec: number; latenciesMs: number[] }> {
  const data = new Uint8Array(proposalBytes).fill(7)
  const latenciesMs: number[] = []
  let committed = 0
  const started = performance.now()
  const deadline = started + seconds * 1000
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t = performance.now()
      await leader.propose(data)
      latenciesMs.push(performance.now() - t)
      committed++
    }
  }
  await Promise.all(Array.from({ length: proposers }, loop))
  return { perSec: committed / ((performance.now() - started) / 1000), latenciesMs }
}

async function rawLevelDb(dir: string, batchEntries: number, seconds: number): Promise<{ entriesPerSec: number; latenciesMs: number[] }> {
  const db = new Level<Uint8Array, Uint8Array>(join(dir, `raw-${batchEntries}`), { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  const value = new Uint8Array(proposalBytes).fill(7)
  const latenciesMs: number[] = []
  let key = 0
  const started = performance.now()
  while (performance.now() - started < seconds * 1000) {
    const ops = []
    for (let k = 0; k < batchEntries; k++) {
      const bytes = new Uint8Array(9)
      new DataView(bytes.buffer).setUint32(5, key++)
      ops.push({ type: 'put' as const, key: bytes, value })
    }
    const t = performance.now()
    await db.batch(ops, { sync: true })
    latenciesMs.push(performance.now() - t)
  }
  const entriesPerSec = key / ((performance.now() - started) / 1000)
  await db.close()
  return { entriesPerSec, latenciesMs }
}

export async function benchRaft(args: BenchArgs): Promise<void> {
  const results = new Map<number, number>()
  for (const proposers of [1, 256]) {
    const cluster = await startCluster()
    const leader = cluster.drivers.get('n1')!
    await measure(leader, proposers, 1) // warm up
    const run = (): Promise<{ perSec: number; latenciesMs: number[] }> => measure(leader, proposers, args.seconds)
    const { perSec, latenciesMs } = args.profile && proposers > 1 ? await profileWhile(`raft-${proposers}`, run) : await run()
    results.set(proposers, perSec)
    report({
      bench: 'raft',
      case: 'commit',
      nodes: 3,
      proposers,
      proposalBytes,
      committedPerSec: Math.round(perSec),
      p50Ms: round(percentile(latenciesMs, 50), 3),
      p99Ms: round(percentile(latenciesMs, 99), 3),
    })
    await stopCluster(cluster)
  }
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-leveldb-'))
  try {
    const single = await rawLevelDb(dir, 1, args.seconds)
    report({
      bench: 'raft',
      case: 'reference: raw LevelDB, one synced 128-byte put at a time',
      writesPerSec: Math.round(single.entriesPerSec),
      p50Ms: round(percentile(single.latenciesMs, 50), 3),
      p99Ms: round(percentile(single.latenciesMs, 99), 3),
      ratioRaftOneProposer: round(results.get(1)! / single.entriesPerSec, 3),
    })
    const batched = await rawLevelDb(dir, 256, args.seconds)
    report({
      bench: 'raft',
      case: 'reference: raw LevelDB, synced batches of 256 128-byte puts',
      writesPerSec: Math.round(batched.entriesPerSec),
      ratioRaft256Proposers: round(results.get(256)! / batched.entriesPerSec, 3),
    })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
