// npm run bench -- rollout: a Deployment of 100 replicas (process runtime:
// busybox httpd, serving as soon as it runs, no readiness probe) behind a
// Service on 3 peer processes with the userspace proxy, rolled to a new
// version with maxSurge 25% and maxUnavailable 25% (the patch `set image`
// sends). Measured: wall time from the patch until the rollout is complete
// (kubectl's rollout status: every replica updated and available, no old one
// left), and what a client sending requests through the service VIP without
// pause saw meanwhile (one short HTTP/1.0 connection per request, a few in
// parallel): requests, failures and the error rate. Goals (issue 8): 0 failed
// requests, under 10 s.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { Agent } from 'node:https'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { apiRequest, type ApiTarget } from '../../node/cli/client.js'
import { deploymentStatus } from '../../node/cli/rollout-status.js'
import type { WorkloadObject } from '../../node/cli/workload.js'
import { ProcessCluster, until, type PeerProcess } from '../../test/node/process-cluster.js'
import type { BenchArgs } from '../bench.js'
import { allAlive } from './cluster.js'
import { report, round } from './report.js'

const replicas = 100
const clientConnections = 4
const requestTimeoutMs = 2000
/** Requests sent before the patch and after completion, so the edges of the rollout are covered. */
const quietMs = 1000
const rolloutGoalMs = 10_000
const deploymentPath = '/apis/apps/v1/namespaces/default/deployments/rollout-bench'

async function startCluster(serviceCidr: string): Promise<{ c: ProcessCluster; peers: PeerProcess[] }> {
  const c = await ProcessCluster.create()
  const peers = await Promise.all(['r1', 'r2', 'r3'].map((n) => c.add(n)))
  const args = ['--runtime', 'process', '--proxy-mode', 'userspace', '--service-cidr', serviceCidr]
  c.start(peers[0]!, args)
  const token = await c.tokenOf(peers[0]!)
  for (const p of peers.slice(1)) c.start(p, ['--join', token, ...args])
  await allAlive(c, peers, 3)
  return { c, peers }
}

function deployment(root: string): unknown {
  const serve = 'exec busybox httpd -f -p "$POD_IP:$PORT" -h "$ROOT"'
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'rollout-bench' },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'rollout-bench' } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      template: {
        metadata: { labels: { app: 'rollout-bench' } },
        spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'web', image: 'sh', command: ['sh', '-c', serve], env: [{ name: 'ROOT', value: root }], ports: [{ containerPort: 8080 }] }] },
      },
    },
  }
}

const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'rollout-bench' }, spec: { selector: { app: 'rollout-bench' }, ports: [{ port: 80, targetPort: 8080 }] } }

/** One request: a fresh connection through the VIP, answered with HTTP 200. */
function request(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    let answer = ''
    const finish = (error: string | null): void => {
      socket.destroy()
      resolve(error)
    }
    socket.setTimeout(requestTimeoutMs, () => finish('timeout'))
    socket.on('connect', () => socket.write('GET / HTTP/1.0\r\n\r\n'))
    socket.on('data', (d) => (answer += d.toString()))
    socket.on('error', (err) => finish(err.message))
    socket.on('end', () => finish(/^HTTP\/1\.[01] 200 /.test(answer) ? null : `answer: ${JSON.stringify(answer.slice(0, 60))}`))
  })
}

/** Client loops until `stop` is aborted: counts of requests and failures, and the first few failures. */
function load(host: string, port: number, stop: AbortSignal): Promise<{ requests: number; failed: number; errors: string[] }> {
  const totals = { requests: 0, failed: 0, errors: [] as string[] }
  const loop = async (): Promise<void> => {
    while (!stop.aborted) {
      const error = await request(host, port)
      totals.requests++
      if (error === null) continue
      totals.failed++
      if (totals.errors.length < 5) totals.errors.push(error)
    }
  }
  return Promise.all(Array.from({ length: clientConnections }, loop)).then(() => totals)
}

async function call(target: ApiTarget, agent: Agent, method: string, path: string, body?: unknown, contentType?: string): Promise<string> {
  const r = await apiRequest(target, method, path, { agent, timeoutMs: 10_000, ...(body === undefined ? {} : { body: JSON.stringify(body) }), ...(contentType === undefined ? {} : { contentType }) })
  if (r.status >= 300) throw new Error(`${method} ${path}: HTTP ${r.status} ${r.text}`)
  return r.text
}

async function rolledOut(target: ApiTarget, agent: Agent): Promise<boolean> {
  return deploymentStatus(JSON.parse(await call(target, agent, 'GET', deploymentPath)) as WorkloadObject).done
}

export async function benchRollout(_args: BenchArgs): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'shoal-rollout-bench-'))
  writeFileSync(join(root, 'index.html'), 'ok\n')
  const { c, peers } = await startCluster(`127.${150 + Math.floor(Math.random() * 90)}.0.0/16`)
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  try {
    const target = await c.target(peers[0]!)
    const created = JSON.parse(await call(target, agent, 'POST', '/api/v1/namespaces/default/services', service)) as { spec: { clusterIP: string } }
    const vip = created.spec.clusterIP
    await call(target, agent, 'POST', '/apis/apps/v1/namespaces/default/deployments', deployment(root))
    await until(async () => (await rolledOut(target, agent)) || undefined, 180_000, `${replicas} replicas available`)
    await until(async () => ((await request(vip, 80)) === null ? true : undefined), 30_000, 'the service VIP to answer')
    const stop = new AbortController()
    const client = load(vip, 80, stop.signal)
    await new Promise((r) => setTimeout(r, quietMs))
    const startedAt = performance.now()
    const patch = { spec: { template: { spec: { containers: [{ name: 'web', image: 'sh:v2' }] } } } }
    await call(target, agent, 'PATCH', deploymentPath, patch, 'application/strategic-merge-patch+json')
    await until(async () => (await rolledOut(target, agent)) || undefined, 300_000, 'the rollout to complete')
    const rolloutMs = performance.now() - startedAt
    await new Promise((r) => setTimeout(r, quietMs))
    stop.abort()
    const seen = await client
    report({ bench: 'rollout', replicas, maxSurge: '25%', maxUnavailable: '25%', rolloutMs: Math.round(rolloutMs), requests: seen.requests, failed: seen.failed, errorRate: round(seen.failed / Math.max(1, seen.requests), 5), ...(seen.errors.length === 0 ? {} : { firstErrors: seen.errors }), goalMs: rolloutGoalMs, goalFailed: 0 })
    await call(target, agent, 'DELETE', deploymentPath)
    await until(async () => (JSON.parse(await call(target, agent, 'GET', '/api/v1/namespaces/default/pods')) as { items: unknown[] }).items.length === 0 || undefined, 60_000, 'the pods deleted').catch(() => undefined)
  } finally {
    agent.destroy()
    await c.destroy()
    try {
      // Pods the agents did not stop before their peers went: their command lines name the bench's directory.
      execFileSync('pkill', ['-KILL', '-f', root], { stdio: 'ignore' })
    } catch {
      // none left: pkill exits 1
    }
    rmSync(root, { recursive: true, force: true })
  }
}
