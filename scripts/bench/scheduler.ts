// npm run bench -- scheduler: 3 peer processes and 100 simulated nodes (Node
// objects kept Ready by the bench, whose agent reports every pod bound to them
// Running, as a kubelet would).
// (1) one RC of 10,000 replicas: pods bound per second (first to last binding)
//     and the time from creating the RC until all 10,000 report Running;
// (2) node loss: SIGKILL a peer carrying pods; time until as many pods as it
//     carried are Running elsewhere (median of 5).
import { Agent } from 'node:https'
import { apiRequest, type ApiResponse, type ApiTarget, type RequestOptions } from '../../node/cli/client.js'
import { until, type PeerProcess, type ProcessCluster } from '../../test/node/process-cluster.js'
import type { BenchArgs } from '../bench.js'
import { allAlive, leaderOf, startCluster } from './cluster.js'
import { percentile, report, round } from './report.js'

const simulatedNodes = 100
const replicas = 10_000
const agentConcurrency = 32
const lossRuns = 5

interface PodView {
  metadata: { name: string; namespace: string; resourceVersion: string }
  spec: { nodeName?: string }
  status?: { phase?: string }
}

class Api {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: agentConcurrency + 4 })
  constructor(readonly target: ApiTarget) {}
  call(method: string, path: string, body?: unknown, o: RequestOptions = {}): Promise<ApiResponse> {
    return apiRequest(this.target, method, path, { ...o, agent: this.agent, timeoutMs: 30_000, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  }
}

async function addSimulatedNodes(api: Api): Promise<void> {
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
class BenchAgent {
  readonly running = new Map<string, number>()
  readonly boundAt: number[] = []
  private readonly queue: PodView[] = []
  private readonly seenBound = new Set<string>()
  private readonly stop = new AbortController()
  private workers = 0
  private ip = 0

  constructor(private readonly api: Api) {}

  async start(): Promise<void> {
    const list = JSON.parse((await this.api.call('GET', '/api/v1/pods?limit=1')).text) as { metadata: { resourceVersion: string } }
    let buffered = ''
    void this.api.call('GET', `/api/v1/pods?watch=true&resourceVersion=${list.metadata.resourceVersion}`, undefined, {
      signal: this.stop.signal,
      onChunk: (chunk) => {
        buffered += chunk
        for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
          const event = JSON.parse(buffered.slice(0, nl)) as { type: string; object: PodView }
          buffered = buffered.slice(nl + 1)
          if (event.type !== 'DELETED') this.seen(event.object)
        }
      },
    }).catch(() => {})
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
      await this.api.call('PATCH', `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/status`, { status }, { contentType: 'application/merge-patch+json' }).catch(() => {})
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

async function bindAndRun(api: Api, agent: BenchAgent): Promise<void> {
  const t0 = performance.now()
  const created = await api.call('POST', '/api/v1/namespaces/default/replicationcontrollers', rcBody(replicas))
  if (created.status !== 201) throw new Error(`rc: HTTP ${created.status} ${created.text}`)
  await until(() => agent.running.size >= replicas || undefined, 600_000, `${replicas} pods Running`)
  const allRunningMs = performance.now() - t0
  const bound = agent.boundAt
  const bindSeconds = (bound[bound.length - 1]! - bound[0]!) / 1000
  report({ bench: 'scheduler', case: `one RC of ${replicas} replicas over ${simulatedNodes} simulated nodes and 3 peers`, podsBoundPerSec: Math.round(bound.length / bindSeconds), allRunningSeconds: round(allRunningMs / 1000), goal: '>= 2000 bound/s' })
}

/** SIGKILL a peer carrying pods; ms until as many pods as it carried are Running elsewhere. */
async function nodeLoss(c: ProcessCluster, peers: PeerProcess[], api: Api, agent: BenchAgent, run: number): Promise<number> {
  const leader = await leaderOf(c, peers)
  const victim = peers.filter((p) => p !== leader)[run % 2]!
  const carried = (JSON.parse((await api.call('GET', `/api/v1/pods?fieldSelector=spec.nodeName%3D${victim.name}`)).text) as { items: unknown[] }).items.length
  const runningBefore = agent.running.size
  await c.kill(victim)
  const t0 = performance.now()
  await until(() => agent.running.size >= runningBefore + carried || undefined, 120_000, `${carried} replacements Running`)
  const ms = performance.now() - t0
  c.start(victim, ['--bench-endpoints'])
  await allAlive(c, peers, 3)
  return ms
}

export async function benchScheduler(args: BenchArgs): Promise<void> {
  const { c, peers } = await startCluster(3)
  try {
    const leader = await leaderOf(c, peers)
    const api = new Api(await c.target(leader))
    await addSimulatedNodes(api)
    const agent = new BenchAgent(api)
    await agent.start()
    if (args.only === undefined || args.only === 'bind') await bindAndRun(api, agent)
    if (args.only === undefined || args.only === 'loss') {
      if (args.only === 'loss') await bindAndRun(api, agent)
      const samples: number[] = []
      for (let run = 0; run < lossRuns; run++) samples.push(await nodeLoss(c, peers, api, agent, run))
      report({ bench: 'scheduler', case: 'node loss (SIGKILL of a peer to its pods Running elsewhere)', runs: lossRuns, medianMs: Math.round(percentile(samples, 50)), samplesMs: samples.map(Math.round), goal: '< 5000 ms' })
    }
    agent.close()
  } finally {
    await c.destroy()
  }
}
