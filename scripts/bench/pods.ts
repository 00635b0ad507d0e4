// npm run bench -- pods: 100 pods of a small program created through the API
// of a 3-peer cluster (the scheduler spreads them), until every one reports
// Running and Ready: startup latency per pod (from the create request to the
// watch event that shows it Ready) p50/p99, and pods per second (first create
// to last Ready). Once with the process runtime, once with the Docker runtime
// on the engine DOCKER_HOST names (Podman here) with a local image; the Docker
// run is skipped, with a line saying why, when no engine answers.
import { execFileSync } from 'node:child_process'
import { Agent } from 'node:https'
import Docker from 'dockerode'
import { infraContainerName, labelContainerName, labelNode } from '../../node/agent/docker-labels.js'
import { apiRequest, type ApiTarget } from '../../node/cli/client.js'
import { ProcessCluster, until, type PeerProcess } from '../../test/node/process-cluster.js'
import type { BenchArgs } from '../bench.js'
import { allAlive } from './cluster.js'
import { percentile, report, round } from './report.js'

const podCount = 100
/** What the process-runtime pods sleep: a number no other program here uses, so leftovers can be found. */
const processPodSeconds = 3601
const busyboxImage = 'localhost/shoal/busybox:latest'

interface PodView {
  metadata: { name: string }
  spec?: { nodeName?: string }
  status?: { phase?: string; conditions?: { type: string; status: string }[] }
}

async function startCluster(runtime: string): Promise<{ c: ProcessCluster; peers: PeerProcess[] }> {
  const c = await ProcessCluster.create()
  const peers = await Promise.all(['p1', 'p2', 'p3'].map((n) => c.add(n)))
  const args = ['--runtime', runtime]
  c.start(peers[0]!, args)
  const token = await c.tokenOf(peers[0]!)
  for (const p of peers.slice(1)) c.start(p, ['--join', token, ...args])
  await allAlive(c, peers, 3)
  return { c, peers }
}

function podBody(k: number, runtime: string): unknown {
  const container = runtime === 'docker' ? { name: 'app', image: busyboxImage, imagePullPolicy: 'Never', command: ['sleep', '3600'] } : { name: 'app', image: 'sleep', args: [String(processPodSeconds)] }
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: `bench-${k}`, labels: { app: 'pods-bench' } }, spec: { terminationGracePeriodSeconds: 1, containers: [{ ...container, resources: { requests: { cpu: '10m', memory: '8Mi' } } }] } }
}

function ready(pod: PodView): boolean {
  return pod.status?.phase === 'Running' && (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
}

/** Watches pods from `resourceVersion` and notes when each is first seen bound, and Ready. */
function watchReady(target: ApiTarget, agent: Agent, resourceVersion: string, boundAt: Map<string, number>, readyAt: Map<string, number>, signal: AbortSignal): void {
  let buffered = ''
  void apiRequest(target, 'GET', `/api/v1/namespaces/default/pods?watch=true&resourceVersion=${resourceVersion}`, {
    agent,
    signal,
    onChunk: (chunk) => {
      buffered += chunk
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const event = JSON.parse(buffered.slice(0, nl)) as { object: PodView }
        buffered = buffered.slice(nl + 1)
        const name = event.object.metadata.name
        if ((event.object.spec?.nodeName ?? '') !== '' && !boundAt.has(name)) boundAt.set(name, performance.now())
        if (ready(event.object) && !readyAt.has(name)) readyAt.set(name, performance.now())
      }
    },
  }).catch(() => {})
}

async function measure(runtime: string): Promise<void> {
  const { c, peers } = await startCluster(runtime)
  const stop = new AbortController()
  try {
    const target = await c.target(peers[0]!)
    const agent = new Agent({ keepAlive: true, maxSockets: 32 })
    const list = JSON.parse((await apiRequest(target, 'GET', '/api/v1/namespaces/default/pods', { agent })).text) as { metadata: { resourceVersion: string } }
    const readyAt = new Map<string, number>()
    const boundAt = new Map<string, number>()
    watchReady(target, agent, list.metadata.resourceVersion, boundAt, readyAt, stop.signal)
    const createdAt = new Map<string, number>()
    await Promise.all(
      Array.from({ length: podCount }, async (_, k) => {
        createdAt.set(`bench-${k}`, performance.now())
        const r = await apiRequest(target, 'POST', '/api/v1/namespaces/default/pods', { agent, body: JSON.stringify(podBody(k, runtime)) })
        if (r.status !== 201) throw new Error(`create bench-${k}: HTTP ${r.status} ${r.text}`)
      }),
    )
    await until(() => readyAt.size >= podCount || undefined, 120_000, `${podCount} pods Ready`)
    const latencies = [...createdAt].map(([name, t]) => readyAt.get(name)! - t)
    const toBound = [...createdAt].map(([name, t]) => (boundAt.get(name) ?? t) - t)
    const boundToReady = [...createdAt].map(([name]) => readyAt.get(name)! - (boundAt.get(name) ?? readyAt.get(name)!))
    const first = Math.min(...createdAt.values())
    const last = Math.max(...readyAt.values())
    report({ bench: 'pods', runtime, pods: podCount, p50Ms: Math.round(percentile(latencies, 50)), p99Ms: Math.round(percentile(latencies, 99)), maxMs: Math.round(Math.max(...latencies)), createdToBoundP50Ms: Math.round(percentile(toBound, 50)), boundToReadyP50Ms: Math.round(percentile(boundToReady, 50)), boundToReadyP99Ms: Math.round(percentile(boundToReady, 99)), podsPerSec: round(podCount / ((last - first) / 1000), 1), goalP99Ms: runtime === 'docker' ? 2000 : 1000 })
    await apiRequest(target, 'DELETE', '/api/v1/namespaces/default/pods?labelSelector=app%3Dpods-bench', { agent })
    await until(async () => (JSON.parse((await apiRequest(target, 'GET', '/api/v1/namespaces/default/pods', { agent })).text) as { items: unknown[] }).items.length === 0 || undefined, 60_000, 'pods deleted')
    // The agents stop the processes and containers in the background (Podman takes its time): wait for them before the peers go.
    await until(async () => (await leftovers(runtime, peers.map((p) => p.name))) === 0 || undefined, 180_000, 'the agents to stop every pod').catch(() => undefined)
  } finally {
    stop.abort()
    await c.destroy()
    await removeLeftovers(runtime, peers.map((p) => p.name))
  }
}

/** Process-runtime pods of this bench are `sleep 3601`; Docker ones carry their node's label. */
async function leftovers(runtime: string, nodeNames: string[]): Promise<number> {
  if (runtime === 'docker') return (await new Docker().listContainers({ all: true, filters: JSON.stringify({ label: nodeNames.map((n) => `${labelNode}=${n}`) }) })).length
  try {
    return execFileSync('pgrep', ['-fx', `sleep ${processPodSeconds}`], { encoding: 'utf8' }).trim().split('\n').length
  } catch {
    return 0
  }
}

/** Whatever the agents did not stop before the peers went (a bench must leave nothing running). */
async function removeLeftovers(runtime: string, nodeNames: string[]): Promise<void> {
  if (runtime === 'docker') {
    const docker = new Docker()
    for (const n of nodeNames) {
      const containers = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${labelNode}=${n}`] }) })
      for (const infraLast of [false, true]) {
        await Promise.all(containers.filter((x) => (x.Labels[labelContainerName] === infraContainerName) === infraLast).map((x) => docker.getContainer(x.Id).remove({ force: true }).catch(() => undefined)))
      }
    }
  } else {
    try {
      execFileSync('pkill', ['-KILL', '-fx', `sleep ${processPodSeconds}`], { stdio: 'ignore' })
    } catch {
      // Nothing left: pkill says so with exit code 1.
    }
  }
}

export async function benchPods(args: BenchArgs): Promise<void> {
  if (args.only === undefined || args.only === 'process') await measure('process')
  if (args.only !== undefined && args.only !== 'docker') return
  if (process.env.DOCKER_HOST === undefined) {
    report({ bench: 'pods', runtime: 'docker', skipped: 'DOCKER_HOST is not set: run scripts/setup-podman.sh and export the DOCKER_HOST it prints' })
    return
  }
  await measure('docker')
}
