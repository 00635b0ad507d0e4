// npm run bench -- cluster: peer processes on loopback, started with `shoal up`.
// (1) committed proposals/s through Raft over libp2p at 1 and 64 proposers
//     (proposed inside the leader: no HTTP in the way), 3 peers;
// (2) leader failover: SIGKILL the leader until a survivor accepts a write,
//     median of 10 runs;
// (3) death detection: SIGKILL a peer until every other peer marks it dead;
// (4) with 20 peers, how long until a new peer is seen alive by all others.
import type { BenchProposeResult } from '../../node/http-api.js'
import { ProcessCluster, leaderName, until, type PeerProcess } from '../../test/node/process-cluster.js'
import type { BenchArgs } from '../bench.js'
import { percentile, report, round } from './report.js'

const peerArgs = ['--bench-endpoints']

export async function startCluster(size: number): Promise<{ c: ProcessCluster; peers: PeerProcess[] }> {
  const c = await ProcessCluster.create()
  try {
    const peers = await Promise.all(Array.from({ length: size }, (_, k) => c.add(`b${k + 1}`)))
    c.start(peers[0]!, peerArgs)
    const token = await c.tokenOf(peers[0]!)
    for (const p of peers.slice(1)) c.start(p, ['--join', token, ...peerArgs])
    await allAlive(c, peers, size)
    return { c, peers }
  } catch (err) {
    await c.destroy()
    throw err
  }
}

/** Every listed peer sees `count` peers, all voters or the leader (up to 5), all alive. */
export async function allAlive(c: ProcessCluster, peers: PeerProcess[], count: number, timeoutMs = 120_000): Promise<void> {
  const voters = Math.min(count, 5) - (Math.min(count, 5) % 2 === 0 ? 1 : 0)
  await until(async () => {
    const views = await Promise.all(peers.map((p) => c.view(p)))
    return views.every(
      (v) => v.peers.length === count && v.peers.filter((p) => p.raftRole === 'leader' || p.raftRole === 'voter').length === voters && v.peers.every((p) => p.gossipState === 'alive'),
    )
  }, timeoutMs, `${count} peers, ${voters} voters, all alive`)
}

export async function leaderOf(c: ProcessCluster, peers: PeerProcess[]): Promise<PeerProcess> {
  const name = await until(async () => leaderName(await c.view(peers[0]!)), 10_000, 'a leader')
  return peers.find((p) => p.name === name)!
}

async function throughput(seconds: number): Promise<void> {
  const { c, peers } = await startCluster(3)
  try {
    for (const concurrency of [1, 64]) {
      const leader = await leaderOf(c, peers)
      const count = concurrency === 1 ? Math.max(500, 600 * seconds) : Math.max(20_000, 12_000 * seconds)
      const response = await c.request(leader, 'POST', '/shoal/v1/bench/propose', JSON.stringify({ count, concurrency, bytes: 128 }), 300_000)
      const r = JSON.parse(response.text) as BenchProposeResult
      report({ bench: 'cluster', case: 'commit over libp2p', peers: 3, proposers: concurrency, proposalBytes: 128, committedPerSec: Math.round(r.committedPerSec), p50Ms: round(r.p50Ms, 3), p99Ms: round(r.p99Ms, 3) })
    }
  } finally {
    await c.destroy()
  }
}

async function failover(runs: number): Promise<void> {
  const { c, peers } = await startCluster(3)
  const samples: number[] = []
  try {
    for (let run = 0; run < runs; run++) {
      const leader = await leaderOf(c, peers)
      const survivors = peers.filter((p) => p !== leader)
      await c.kill(leader)
      const t0 = performance.now()
      await until(async () => (await c.setSetting(survivors[run % 2]!, 'failover', String(run), 1000)).status === 200 || undefined, 15_000, 'a write after failover')
      samples.push(performance.now() - t0)
      c.start(leader, peerArgs)
      await allAlive(c, peers, 3)
    }
  } finally {
    await c.destroy()
  }
  report({ bench: 'cluster', case: 'leader failover (SIGKILL to first accepted write)', runs, medianMs: Math.round(percentile(samples, 50)), maxMs: Math.round(Math.max(...samples)), samplesMs: samples.map(Math.round) })
}

async function deathDetection(runs: number): Promise<void> {
  const { c, peers } = await startCluster(3)
  const samples: number[] = []
  try {
    for (let run = 0; run < runs; run++) {
      const victim = peers[1 + (run % 2)]!
      const others = peers.filter((p) => p !== victim)
      await c.kill(victim)
      const t0 = performance.now()
      await until(async () => {
        const views = await Promise.all(others.map((p) => c.view(p)))
        return views.every((v) => v.peers.find((p) => p.name === victim.name)?.gossipState === 'dead') || undefined
      }, 15_000, `${victim.name} marked dead`)
      samples.push(performance.now() - t0)
      c.start(victim, peerArgs)
      await allAlive(c, peers, 3)
    }
  } finally {
    await c.destroy()
  }
  report({ bench: 'cluster', case: 'death detection (SIGKILL to dead on every peer)', runs, medianMs: Math.round(percentile(samples, 50)), maxMs: Math.round(Math.max(...samples)), samplesMs: samples.map(Math.round) })
}

async function convergence(size: number): Promise<void> {
  const { c, peers } = await startCluster(size - 1)
  try {
    const newcomer = await c.add(`b${size}`)
    c.start(newcomer, ['--join', await c.tokenOf(peers[0]!), ...peerArgs])
    await until(() => newcomer.output.includes('is up in cluster') || undefined, 60_000, 'the newcomer to start')
    const t0 = performance.now()
    await until(async () => {
      const views = await Promise.all(peers.map((p) => c.view(p)))
      return views.every((v) => v.peers.find((p) => p.name === newcomer.name)?.gossipState === 'alive') || undefined
    }, 60_000, 'everyone to see the newcomer')
    report({ bench: 'cluster', case: `a new peer seen alive by all (${size} peers)`, ms: Math.round(performance.now() - t0) })
  } finally {
    await c.destroy()
  }
}

/** `--only NAME` picks one part: throughput, failover, death, convergence. */
export async function benchCluster(args: BenchArgs): Promise<void> {
  const parts: Record<string, () => Promise<void>> = {
    throughput: () => throughput(args.seconds),
    failover: () => failover(10),
    death: () => deathDetection(5),
    convergence: () => convergence(20),
  }
  for (const [name, run] of Object.entries(parts)) if (args.only === undefined || args.only === name) await run()
}
