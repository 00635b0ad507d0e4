// One randomized simulation run, a pure function of its seed: a cluster of 3,
// 5 or 7 nodes under a key-value workload and a nemesis, then healed; it must
// converge, lose no acknowledged write, and its history must be linearizable.
import { SimCluster, defaultClusterOptions, type ClusterOptions } from './cluster.js'
import { KvStateMachine } from './kv.js'
import { checkLinearizable, describeViolation } from './linearizability.js'
import { healEverything, startNemesis } from './nemesis.js'
import { Rng } from './rng.js'
import { Workload } from './workload.js'

export interface SimRunOptions {
  seed: number
  nodeCount?: number
  faultMs?: number
}

export interface SimResult {
  seed: number
  nodeCount: number
  ok: boolean
  failure: string | null
  virtualMs: number
  operations: number
  acknowledgedWrites: number
  messages: number
  nemesis: Record<string, number>
  replay: string
}

export function replayCommand(options: SimRunOptions): string {
  const parts = [`npm run sim -- --seed ${options.seed}`]
  if (options.nodeCount !== undefined) parts.push(`--nodes ${options.nodeCount}`)
  if (options.faultMs !== undefined) parts.push(`--fault-ms ${options.faultMs}`)
  return parts.join(' ')
}

export function runSeed(options: SimRunOptions): SimResult {
  const params = new Rng(options.seed ^ 0x5eed)
  const nodeCount = options.nodeCount ?? [3, 5, 7][options.seed % 3]!
  const spare = nodeCount > 3 && params.chance(0.3) ? params.between(1, 2) : 0
  const faultMs = options.faultMs ?? params.between(1500, 3000)
  const cluster = new SimCluster({
    ...defaultClusterOptions,
    ...randomProfile(params),
    seed: options.seed,
    nodeCount,
    initialVoters: nodeCount - spare,
    stateMachine: () => new KvStateMachine(),
  })
  const workload = new Workload(cluster, params.fork(), {
    clients: params.between(2, 5),
    keys: ['a', 'b', 'c', 'd'].slice(0, params.between(1, 4)),
    opTimeoutMs: 400,
    giveUpMs: 1000,
  })
  const result: SimResult = {
    seed: options.seed,
    nodeCount,
    ok: false,
    failure: null,
    virtualMs: 0,
    operations: 0,
    acknowledgedWrites: 0,
    messages: 0,
    nemesis: {},
    replay: replayCommand(options),
  }
  try {
    workload.start()
    result.nemesis = startNemesis(cluster, params.fork(), faultMs, params.pick([40, 150, 300])).actions
    cluster.run(faultMs)
    healEverything(cluster)
    cluster.run(300)
    workload.stop()
    cluster.run(500)
    result.failure = checkConverged(cluster) ?? checkOutcome(cluster, workload)
  } catch (err) {
    result.failure = `${(err as Error).name}: ${(err as Error).message}`
  }
  result.ok = result.failure === null
  result.virtualMs = Math.round(cluster.now)
  result.operations = workload.history.length
  result.acknowledgedWrites = workload.acknowledged.length
  result.messages = cluster.network.messagesSent
  return result
}

/**
 * Timing and batching vary by seed: one-entry appends and narrow windows open
 * the Figure 8 schedules; slow fsyncs widen the crash-before-persist windows.
 */
function randomProfile(params: Rng): Pick<ClusterOptions, 'raft' | 'fsyncMaxMs' | 'snapshotEveryEntries'> {
  const electionTicks = params.pick([5, 10, 20])
  return {
    raft: {
      electionTicks,
      heartbeatTicks: params.between(1, Math.min(3, electionTicks - 2)),
      appendMessageMaxBytes: params.pick([1, 256, 4096]),
      inflightMessagesMax: params.pick([1, 4, 16]),
      snapshotChunkBytes: params.pick([16, 64, 1024]),
      snapshotChunksInflightMax: params.pick([1, 2, 4]),
    },
    fsyncMaxMs: params.pick([1, 5, 20]),
    snapshotEveryEntries: params.pick([0, 8, 20]),
  }
}

/** After healing: one leader, and every member applies a fresh barrier entry within 10 s. */
function checkConverged(cluster: SimCluster): string | null {
  let barrier: { index: number; term: number } | null = null
  const done = cluster.runUntil(() => {
    const leader = cluster.currentLeader()
    if (leader?.raft == null) return false
    if (barrier === null || leader.raft.term !== barrier.term) {
      try {
        barrier = leader.propose(new Uint8Array(0), () => {})
      } catch {
        return false
      }
    }
    const { voters, learners } = leader.raft.status().conf
    return [...voters, ...learners].every((id) => cluster.node(id).appliedIndex >= barrier!.index)
  }, 10_000, 10)
  return done ? null : `liveness: the healed cluster did not converge within 10 s (leader: ${cluster.currentLeader()?.id ?? 'none'})`
}

function checkOutcome(cluster: SimCluster, workload: Workload): string | null {
  for (const ack of workload.acknowledged) {
    const applied = cluster.checker.applied.get(ack.index)
    if (applied?.term !== ack.term) return `lost write: acknowledged entry ${ack.index} (term ${ack.term}) is not what was committed there`
  }
  const leader = cluster.currentLeader()!
  const { voters, learners } = leader.raft!.status().conf
  const fingerprints = new Set([...voters, ...learners].map((id) => (cluster.node(id).stateMachine as KvStateMachine).fingerprint()))
  if (fingerprints.size !== 1) return `replicas diverged: ${fingerprints.size} different states among members`
  const verdict = checkLinearizable(workload.history)
  if (verdict.ok === false) return `not linearizable:\n${describeViolation(verdict)}`
  return null
}
