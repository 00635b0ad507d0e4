// One round of the fault test: start the cluster, run the workload and the
// nemesis side by side for the given time while watching pod processes, heal
// everything, wait for the cluster to converge, read every object from every
// peer, and check the history. Shared by the vitest round and scripts/jepsen.ts.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { checkHistory, type CheckResult } from './checker.js'
import { JepsenCluster } from './cluster.js'
import { awaitConvergence } from './convergence.js'
import { CopiesMonitor } from './copies.js'
import { HistoryWriter } from './history.js'
import { Nemesis, defaultNemesis, type FaultKind, type NemesisOptions } from './nemesis.js'
import { Workload, defaultWorkload, type WorkloadOptions } from './workload.js'

export interface RoundOptions {
  seed: number
  durationMs: number
  /** Where the history, the summary and the peers' data go. */
  dir: string
  peers?: number
  podEvictionTimeoutMs?: number
  /** How long gossip takes to declare a peer dead and an agent to act, added to the eviction timeout for check (4). */
  detectionMs?: number
  convergenceDeadlineMs?: number
  workload?: Partial<Omit<WorkloadOptions, 'runId'>>
  nemesis?: Partial<NemesisOptions>
  log?: (line: string) => void
  /** Fail the round on 404s from a lagging replica too (see CheckResult.staleRejections). */
  strictRejections?: boolean
}

export interface RoundResult {
  seed: number
  historyPath: string
  check: CheckResult
  faults: Partial<Record<FaultKind, number>>
  startupMs: number
}

/** The tail of each peer's output kept in the round's folder. */
const peerLogBytesMax = 2 * 1024 * 1024

/** Client ids from here on are the final reads, one client per peer. */
export const finalClientBase = 1000

export async function runRound(options: RoundOptions): Promise<RoundResult> {
  const log = options.log ?? (() => undefined)
  const evictionMs = options.podEvictionTimeoutMs ?? 3000
  await mkdir(options.dir, { recursive: true })
  const historyPath = join(options.dir, 'history.jsonl')
  const runId = `r${options.seed}x${Date.now().toString(36)}`
  const startedAt = Date.now()
  const cluster = await JepsenCluster.start({ peers: options.peers ?? 5, label: 'jepsen', dir: join(options.dir, 'sockets'), podEvictionTimeoutMs: evictionMs })
  const startupMs = Date.now() - startedAt
  log(`${cluster.peers.length} peers up in ${startupMs} ms; running ${Math.round(options.durationMs / 1000)} s of workload and faults (seed ${options.seed})`)
  const history = new HistoryWriter(historyPath)
  try {
    const workload = new Workload(cluster, history, { ...defaultWorkload, ...options.workload, runId }, options.seed)
    const nemesis = new Nemesis(cluster, history, { ...defaultNemesis, ...options.nemesis }, options.seed)
    const monitor = new CopiesMonitor(cluster, history, runId)
    monitor.start()
    const endMs = history.now() + options.durationMs
    await Promise.all([workload.run(endMs), nemesis.run(endMs)])
    await nemesis.healEverything()
    log(`workload done at ${Math.round(history.now())} ms; healed; waiting for convergence`)
    const convergence = await awaitConvergence(cluster, runId, options.convergenceDeadlineMs ?? 30_000)
    await monitor.stop()
    log(convergence.ok ? `converged in ${convergence.elapsedMs} ms` : `did not converge: ${convergence.problems.slice(0, 5).join('; ')}`)
    for (const [k, peer] of cluster.peers.entries()) {
      for (const target of workload.names) await workload.call(finalClientBase + k, peer, 'read', target.kind, target.name)
    }
    await history.close()
    const check = checkHistory(history.records, convergence, { staleBoundMs: evictionMs + (options.detectionMs ?? 5000), finalClientMin: finalClientBase, strictRejections: options.strictRejections === true })
    const faults = Object.fromEntries(nemesis.counts) as Partial<Record<FaultKind, number>>
    const text = [`seed ${options.seed}, ${Math.round(options.durationMs / 1000)} s, history ${historyPath}`, `faults: ${JSON.stringify(faults)}`, `copy samples skipped (no quorum): ${monitor.skipped}`, check.summary].join('\n')
    await writeFile(join(options.dir, 'summary.txt'), `${text}\n`)
    return { seed: options.seed, historyPath, check, faults, startupMs }
  } finally {
    await history.close().catch(() => undefined)
    // The peers' own output, for reading a failure afterwards (the data dirs go with the cluster).
    for (const peer of cluster.peers) await writeFile(join(options.dir, `${peer.name}.log`), peer.process.output.slice(-peerLogBytesMax)).catch(() => undefined)
    await cluster.destroy()
  }
}
