// npm run bench -- scheduler: 3 peer processes and 100 simulated nodes (Node
// objects kept Ready by the bench, whose agent reports every pod bound to them
// Running, as a kubelet would).
// (1) one RC of 10,000 replicas: pods bound per second (first to last binding)
//     and the time from creating the RC until all 10,000 report Running;
// (2) node loss: SIGKILL a peer carrying pods; time until as many pods as it
//     carried are Running elsewhere (median of 5), with the default 5 s
//     --pod-eviction-timeout and, on a second cluster, with 1 s; each also as
//     the part beyond the timeout (what detection, eviction, rescheduling and
//     starting the replacements add).
import { Agent } from 'node:https'
import { apiRequest, type ApiResponse, type ApiTarget, type RequestOptions } from '../../node/cli/client.js'
import { defaultPodEvictionTimeoutMs } from '../../node/controllers/pod-eviction.js'
import { ProcessCluster, until, type PeerProcess } from '../../test/node/process-cluster.js'
import type { BenchArgs } from '../bench.js'
import { cpuSecondsOf } from './api.js'
import { allAlive, leaderOf } from './cluster.js'
import { percentile, report, round } from './report.js'

const simulatedNodes = 100
const replicas = 10_000
const agentConcurrency = 32
const lossRuns = 5
/** Times the bench agent sends one pod's Running report before giving up on it. */
const reportAttemptsMax = 20

interface PodView {
  metadata: { name: string; namespace: string; resourceVersion: string }
  spec: { nodeName?: string }
  status?: { phase?: string }
}

export class Api {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: agentConcurrency + 4 })
  constructor(readonly target: ApiTarget) {}
  call(method: string, path: string, body?: unknown, o: RequestOptions = {}): Promise<ApiResponse> {
    const timeoutMs = o.timeoutMs ?? 30_000
    return apiRequest(this.target, method, path, { ...o, agent: this.agent, ...(timeoutMs > 0 ? { timeoutMs } : {}), ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  }
}

export async function addSimulatedNodes(api: Api): Promise<void> {
  for (let k = 0; k < simulatedNodes; k++) {
    const name = `sim-${String(k).padStart(3, '0')}`
    await api.call('POST', '/api/v1/nodes', { metadata: { name, labels: { 'kubernetes.io/hostname': name } } })
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    const capacity = { cpu: '64', memory: '256Gi', pods: '250' }
    const node = JSON.parse((await api.call('GET', `/api/v1/nodes/${name}`)).text) as Record<string, unknown>
    const status = { capacity, allocatable: capacity, conditions: [{ type: 'Ready', status: 'True', reason: 'BenchAgentReady', lastHeartbeatTime: now, lastTransitionTime: now }] }
    const response = await api.call('PUT', `/api/v1/nodes/${name}/status`, { ...node, status })
    if (response.status !== 200) throw new Error(`node ${name}: HTTP ${response.status} ${response.text}`)
  }
}

/** The bench's kubelet: watches pods, and reports every bound, not yet Running one Running. */
export class BenchAgent {
  readonly running = new Map<string, number>()
  readonly boundAt: number[] = []
  readonly createdAt: number[] = []
  private readonly queue: PodView[] = []
  private readonly seenBound = new Set<string>()
  private readonly stop = new AbortController()
  private workers = 0
  private ip = 0

  constructor(private readonly api: Api) {}

  /** List, then watch from the list; when the server ends the watch (a slow watcher is cut off), list and watch again. */
  async start(): Promise<void> {
    void (async () => {
      while (!this.stop.signal.aborted) {
        try {
          const list = JSON.parse((await this.api.call('GET', '/api/v1/pods')).text) as { metadata: { resourceVersion: string }; items: PodView[] }
          for (const pod of list.items) this.seen(pod)
          await this.watchFrom(list.metadata.resourceVersion)
        } catch (err) {
          if (!this.stop.signal.aborted) console.error(`bench agent: ${(err as Error).message}; listing again`)
          await new Promise((r) => setTimeout(r, 200))
        }
      }
    })()
  }

  private watchFrom(resourceVersion: string): Promise<ApiResponse> {
    let buffered = ''
    return this.api.call('GET', `/api/v1/pods?watch=true&resourceVersion=${resourceVersion}`, undefined, {
      signal: this.stop.signal,
      timeoutMs: 0,
      onChunk: (chunk) => {
        buffered += chunk
        for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
          const event = JSON.parse(buffered.slice(0, nl)) as { type: string; object: PodView }
          buffered = buffered.slice(nl + 1)
          if (event.type === 'ADDED') this.createdAt.push(performance.now())
          if (event.type === 'ADDED' || event.type === 'MODIFIED') this.seen(event.object)
        }
      },
    })
  }

  private seen(pod: PodView): void {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`
    if (pod.spec.nodeName === undefined || pod.spec.nodeName === '') return
    if (pod.status?.phase === 'Running') {
      if (!this.running.has(key)) this.running.set(key, performance.now())
      return
    }
    if (this.seenBound.has(key)) return
    this.seenBound.add(key)
    this.boundAt.push(performance.now())
    this.queue.push(pod)
    while (this.workers < agentConcurrency && this.queue.length > 0) void this.work()
  }

  private async work(): Promise<void> {
    this.workers++
    for (let pod = this.queue.shift(); pod !== undefined; pod = this.queue.shift()) {
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
      const ip = `10.${(this.ip >> 16) & 255}.${(this.ip >> 8) & 255}.${this.ip++ & 255}`
      const status = { phase: 'Running', podIP: ip, podIPs: [{ ip }], hostIP: '127.0.0.1', startTime: now, conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'True', lastTransitionTime: now }] }
      // As a kubelet does, a report that failed (a leader change, a timeout) is sent again; a pod gone (404) is not.
      for (let attempt = 1; attempt <= reportAttemptsMax; attempt++) {
        const response = await this.api.call('PATCH', `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/status`, { status }, { contentType: 'application/merge-patch+json' }).catch(() => undefined)
        if (response !== undefined && (response.status === 200 || response.status === 404)) break
        if (attempt === reportAttemptsMax) console.error(`bench agent: ${pod.metadata.name} not reported Running: ${response === undefined ? 'no answer' : `HTTP ${response.status}`}`)
        await new Promise((r) => setTimeout(r, 200))
      }
    }
    this.workers--
  }

  close(): void {
    this.stop.abort()
  }
}

function rcBody(count: number): unknown {
  return {
    apiVersion: 'v1',
    kind: 'ReplicationController',
    metadata: { name: 'bench' },
    spec: { replicas: count, selector: { app: 'bench' }, template: { metadata: { labels: { app: 'bench' } }, spec: { containers: [{ name: 'app', image: 'nginx:1.27', resources: { requests: { cpu: '10m', memory: '16Mi' } } }] } } },
  }
}

export async function bindAndRun(c: ProcessCluster, api: Api, agent: BenchAgent, peers: PeerProcess[], caseNote = ''): Promise<void> {
  const cpuBefore = peers.map((p) => cpuSecondsOf(p.child!.pid!))
  const clientBefore = process.cpuUsage()
  const leaderBefore = await leaderOf(c, peers)
  const t0 = performance.now()
  const created = await api.call('POST', '/api/v1/namespaces/default/replicationcontrollers', rcBody(replicas))
  if (created.status !== 201) throw new Error(`rc: HTTP ${created.status} ${created.text}`)
  await until(() => agent.running.size >= replicas || undefined, 600_000, `${replicas} pods Running`)
  const allRunningMs = performance.now() - t0
  // Leadership should stay put under this load; if it moved, the figures include a failover.
  const leaderAfter = await leaderOf(c, peers)
  const bound = agent.boundAt
  const bindSeconds = (bound[bound.length - 1]! - bound[0]!) / 1000
  const createdAt = agent.createdAt
  const createSeconds = (createdAt[createdAt.length - 1]! - createdAt[0]!) / 1000
  // Where the CPU went (the machine's cores are shared by the peers and the bench, whose agent reports each pod Running over HTTPS).
  const client = process.cpuUsage(clientBefore)
  const cpuMsPerPod = { ...Object.fromEntries(peers.map((p, k) => [p.name, round(((cpuSecondsOf(p.child!.pid!) - cpuBefore[k]!) * 1000) / replicas, 3)])), benchAndAgent: round((client.user + client.system) / 1000 / replicas, 3) }
  report({ bench: 'scheduler', case: `one RC of ${replicas} replicas over ${simulatedNodes} simulated nodes and 3 peers${caseNote}`, podsBoundPerSec: Math.round(bound.length / bindSeconds), podsCreatedPerSec: Math.round(createdAt.length / createSeconds), allRunningSeconds: round(allRunningMs / 1000), goal: '>= 2000 bound/s', cpuMsPerPod, ...(leaderAfter === leaderBefore ? {} : { leaderMoved: `${leaderBefore.name} -> ${leaderAfter.name}` }) })
}

/** SIGKILL a peer carrying pods; ms until as many pods as it carried are Running elsewhere. */
async function nodeLoss(c: ProcessCluster, peers: PeerProcess[], api: Api, agent: BenchAgent, run: number, peerArgs: string[]): Promise<number> {
  const leader = await leaderOf(c, peers)
  const victim = peers.filter((p) => p !== leader)[run % 2]!
  const carried = (JSON.parse((await api.call('GET', `/api/v1/pods?fieldSelector=spec.nodeName%3D${victim.name}`)).text) as { items: unknown[] }).items.length
  const runningBefore = agent.running.size
  await c.kill(victim)
  const t0 = performance.now()
  await until(() => agent.running.size >= runningBefore + carried || undefined, 120_000, `${carried} replacements Running`)
  const ms = performance.now() - t0
  c.start(victim, peerArgs)
  await allAlive(c, peers, 3)
  return ms
}

/** Node loss, median of lossRuns, with the part Shoal adds beyond the eviction timeout (detection, eviction, rescheduling, start). */
async function lossReport(c: ProcessCluster, peers: PeerProcess[], api: Api, agent: BenchAgent, evictionTimeoutMs: number, peerArgs: string[]): Promise<void> {
  const samples: number[] = []
  for (let run = 0; run < lossRuns; run++) samples.push(await nodeLoss(c, peers, api, agent, run, peerArgs))
  report({
    bench: 'scheduler',
    case: `node loss (SIGKILL of a peer to its pods Running elsewhere), --pod-eviction-timeout ${evictionTimeoutMs / 1000}s`,
    runs: lossRuns,
    medianMs: Math.round(percentile(samples, 50)),
    beyondEvictionTimeoutMedianMs: Math.round(percentile(samples.map((ms) => ms - evictionTimeoutMs), 50)),
    samplesMs: samples.map(Math.round),
    goal: '< 5000 ms',
  })
}

/** 3 peers started with `extraArgs`, 100 simulated nodes and the bench agent; everything stopped after `run`. */
async function withCluster(extraArgs: string[], run: (c: ProcessCluster, peers: PeerProcess[], api: Api, agent: BenchAgent, peerArgs: string[]) => Promise<void>): Promise<void> {
  const peerArgs = ['--bench-endpoints', ...extraArgs]
  const c = await ProcessCluster.create()
  const peers = await Promise.all([1, 2, 3].map((k) => c.add(`b${k}`)))
  let agent: BenchAgent | undefined
  try {
    c.start(peers[0]!, peerArgs)
    const token = await c.tokenOf(peers[0]!)
    for (const p of peers.slice(1)) c.start(p, ['--join', token, ...peerArgs])
    await allAlive(c, peers, 3)
    const api = new Api(await c.target(await leaderOf(c, peers)))
    await addSimulatedNodes(api)
    agent = new BenchAgent(api)
    await agent.start()
    await run(c, peers, api, agent, peerArgs)
  } catch (err) {
    // A bench that fails says why: the end of each peer's output.
    for (const p of peers) console.error(`--- ${p.name} (exit ${p.child?.exitCode ?? 'killed'}):\n${p.output.split('\n').slice(-25).join('\n')}`)
    throw err
  } finally {
    agent?.close()
    await c.destroy()
  }
}

/** The short eviction timeout of the second node-loss run: what Shoal adds shows without the 5 s wait. */
const shortEvictionTimeoutMs = 1000

export async function benchScheduler(args: BenchArgs): Promise<void> {
  const loss = args.only === undefined || args.only === 'loss'
  // Node loss needs pods placed first: the bind run places them.
  await withCluster([], async (c, peers, api, agent, peerArgs) => {
    await bindAndRun(c, api, agent, peers)
    if (loss) await lossReport(c, peers, api, agent, defaultPodEvictionTimeoutMs, peerArgs)
  })
  if (!loss) return
  await withCluster(['--pod-eviction-timeout', `${shortEvictionTimeoutMs}ms`], async (c, peers, api, agent, peerArgs) => {
    await bindAndRun(c, api, agent, peers, ` (--pod-eviction-timeout ${shortEvictionTimeoutMs / 1000}s)`)
    await lossReport(c, peers, api, agent, shortEvictionTimeoutMs, peerArgs)
  })
}
