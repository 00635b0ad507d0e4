// Rolling updates on 3 real peer processes with the process runtime and the
// userspace service proxy: a Deployment of 6 replicas (maxSurge 2,
// maxUnavailable 1) with a readiness probe behind a Service, updated while a
// client keeps calling the service's cluster IP: no request fails, never fewer
// than 5 pods are ready, the rollout completes; rolled back the way
// `kubectl rollout undo` does it (the old ReplicaSet's template patched back);
// a version that never gets ready stops after one old pod and reports
// ProgressDeadlineExceeded while the old pods serve; and the leader SIGKILLed
// mid-rollout, after which the new leader completes it without passing the
// surge bound.
import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiRequest, type ApiTarget } from '../../node/cli/client.js'
import type { DeploymentObject, ReplicaSetObject } from '../../node/controllers/deployment-util.js'
import type { PodObject } from '../../node/controllers/replication.js'
import { leaderName, startVotingCluster, until, type PeerProcess, type VotingCluster } from '../node/process-cluster.js'
import { destroyClusterAndPods } from './agent-helpers.js'

/** Every pod this file starts carries it in its command line, so none can outlive the tests unnoticed. */
const marker = 'shoal-deployment-cluster-test'
// A service range of its own, so clusters of other test files on this host never share its VIPs.
const serviceCidr = `127.${150 + Math.floor(Math.random() * 90)}.0.0/16`
const runtimeArgs = ['--runtime', 'process', '--proxy-mode', 'userspace', '--service-cidr', serviceCidr, '--pod-eviction-timeout', '1m']
const replicas = 6
const minReady = replicas - 1
const maxPods = replicas + 2

/**
 * The app: answers its version, ready unless its version starts with "bad". On SIGTERM it keeps
 * serving for a second (what a preStop sleep gives in Kubernetes: the endpoints drop it meanwhile).
 */
const app = `
const http = require('http')
const version = process.argv[process.argv.length - 1]
const server = http.createServer((req, res) => {
  if (req.url === '/healthz') { res.writeHead(version.startsWith('bad') ? 503 : 200); return res.end() }
  res.end(version)
})
server.listen(Number(process.env.PORT), process.env.POD_IP)
process.on('SIGTERM', () => setTimeout(() => process.exit(0), 1000))
`

let vc: VotingCluster
const targets = new Map<string, ApiTarget>()

beforeAll(async () => {
  vc = await startVotingCluster(['r1', 'r2', 'r3'], runtimeArgs)
  for (const p of vc.peers) targets.set(p.name, await vc.cluster.target(p))
}, 120_000)

afterAll(async () => {
  for (const p of vc?.peers ?? []) {
    if (p.child === null) continue
    await call(p, 'DELETE', '/apis/apps/v1/namespaces/default/deployments/web').catch(() => {})
    break
  }
  await destroyClusterAndPods(vc, marker)
})

async function call(peer: PeerProcess, method: string, path: string, body?: unknown, contentType?: string): Promise<{ status: number; text: string }> {
  return apiRequest(targets.get(peer.name)!, method, path, { timeoutMs: 5000, ...(body === undefined ? {} : { body: JSON.stringify(body) }), ...(contentType === undefined ? {} : { contentType }) })
}

async function json<T>(peer: PeerProcess, path: string): Promise<T> {
  const r = await call(peer, 'GET', path)
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.text}`)
  return JSON.parse(r.text) as T
}

const deploymentPath = '/apis/apps/v1/namespaces/default/deployments/web'

function container(version: string): Record<string, unknown> {
  return {
    name: 'app',
    image: process.execPath,
    args: ['-e', app, marker, version],
    ports: [{ containerPort: 8080 }],
    readinessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1, failureThreshold: 1 },
  }
}

/** Peers still running, the one given first when it is. */
function alive(prefer?: PeerProcess): PeerProcess {
  const live = vc.peers.filter((p) => p.child !== null)
  return prefer !== undefined && prefer.child !== null ? prefer : live[0]!
}

async function deployment(via?: PeerProcess): Promise<DeploymentObject> {
  return json<DeploymentObject>(alive(via), deploymentPath)
}

/** What `kubectl rollout status` waits for. */
async function rolledOut(via?: PeerProcess): Promise<DeploymentObject | undefined> {
  const d = await deployment(via)
  const s = d.status ?? {}
  const done = (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) && s.updatedReplicas === replicas && s.replicas === replicas && s.availableReplicas === replicas
  return done ? d : undefined
}

/** One request through the cluster IP, on a new connection: the version that answered, or the error. */
function get(ip: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: ip, port: 80, path: '/', agent: false, timeout: 3000 }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => (body += d.toString()))
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end()
  })
}

/** A client calling the service without pause, and a watcher of pods and ReplicaSets, until stopped. */
class Observer {
  failures: string[] = []
  answers = new Map<string, number>()
  fewestReady = Number.POSITIVE_INFINITY
  mostPods = 0
  mostPlanned = 0
  private stopped = false
  private readonly loops: Promise<void>[]

  constructor(ip: string, watchVia: () => PeerProcess, callClient = true) {
    this.loops = [this.watch(watchVia), ...(callClient ? [this.client(ip)] : [])]
  }

  private async client(ip: string): Promise<void> {
    while (!this.stopped) {
      try {
        const version = await get(ip)
        this.answers.set(version, (this.answers.get(version) ?? 0) + 1)
      } catch (err) {
        this.failures.push((err as Error).message)
      }
    }
  }

  private async watch(via: () => PeerProcess): Promise<void> {
    while (!this.stopped) {
      try {
        const pods = (await json<{ items: PodObject[] }>(via(), '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb')).items
        const ready = pods.filter((p) => (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'))
        this.fewestReady = Math.min(this.fewestReady, ready.length)
        this.mostPods = Math.max(this.mostPods, pods.length)
        const sets = (await json<{ items: ReplicaSetObject[] }>(via(), '/apis/apps/v1/namespaces/default/replicasets')).items
        this.mostPlanned = Math.max(this.mostPlanned, sets.reduce((n, rs) => n + (rs.spec?.replicas ?? 0), 0))
      } catch {
        // a peer going down mid-request: the next poll asks again
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  async stop(): Promise<void> {
    this.stopped = true
    await Promise.all(this.loops)
  }
}

async function patch(body: unknown, contentType = 'application/merge-patch+json', via?: PeerProcess): Promise<void> {
  const r = await call(alive(via), 'PATCH', deploymentPath, body, contentType)
  expect(r.status, r.text).toBe(200)
}

/** What `kubectl rollout undo --to-revision=N` sends: the ReplicaSet's template without its hash label, and its annotations. */
async function undoTo(revision: string): Promise<void> {
  const sets = (await json<{ items: ReplicaSetObject[] }>(alive(), '/apis/apps/v1/namespaces/default/replicasets')).items
  const rs = sets.find((s) => s.metadata.annotations?.['deployment.kubernetes.io/revision'] === revision)
  expect(rs, `a ReplicaSet of revision ${revision}`).toBeDefined()
  const template = structuredClone(rs!.spec!.template!)
  delete template.metadata!.labels!['pod-template-hash']
  const skip = new Set(['deployment.kubernetes.io/revision', 'deployment.kubernetes.io/revision-history', 'deployment.kubernetes.io/desired-replicas', 'deployment.kubernetes.io/max-replicas', 'kubectl.kubernetes.io/last-applied-configuration'])
  const current = await deployment()
  const annotations = {
    ...Object.fromEntries(Object.entries(current.metadata.annotations ?? {}).filter(([k]) => skip.has(k))),
    ...Object.fromEntries(Object.entries(rs!.metadata.annotations ?? {}).filter(([k]) => !skip.has(k))),
  }
  await patch([{ op: 'replace', path: '/spec/template', value: template }, { op: 'replace', path: '/metadata/annotations', value: annotations }], 'application/json-patch+json')
}

describe('rolling updates on real peers', () => {
  let clusterIp = ''

  it('brings up 6 ready replicas behind a service', async () => {
    const [r1] = vc.peers as [PeerProcess]
    const svc = await call(r1, 'POST', '/api/v1/namespaces/default/services', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } })
    expect(svc.status, svc.text).toBe(201)
    clusterIp = (JSON.parse(svc.text) as { spec: { clusterIP: string } }).spec.clusterIP
    const body = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: { replicas, selector: { matchLabels: { app: 'web' } }, strategy: { rollingUpdate: { maxSurge: 2, maxUnavailable: 1 } }, template: { metadata: { labels: { app: 'web' } }, spec: { terminationGracePeriodSeconds: 5, containers: [container('v1')] } } },
    }
    const created = await call(r1, 'POST', '/apis/apps/v1/namespaces/default/deployments', body)
    expect(created.status, created.text).toBe(201)
    await until(() => rolledOut(), 60_000, 'the first rollout')
    await until(async () => (await get(clusterIp)) === 'v1', 10_000, 'v1 answering through the cluster IP')
  }, 90_000)

  it('updated under load: no request fails, never fewer than 5 ready, complete; then rolled back the same way', async () => {
    for (const [version, change] of [['v2', () => patch({ spec: { template: { spec: { containers: [container('v2')] } } } })], ['v1', () => undoTo('1')]] as const) {
      const observer = new Observer(clusterIp, () => alive())
      await new Promise((r) => setTimeout(r, 300))
      await change()
      const done = await until(() => rolledOut(), 60_000, `the rollout to ${version}`)
      await until(async () => (await get(clusterIp)) === version, 5000, `${version} answering`)
      await observer.stop()
      expect(observer.failures).toEqual([])
      expect(observer.fewestReady).toBeGreaterThanOrEqual(minReady)
      expect(observer.mostPlanned).toBeLessThanOrEqual(maxPods)
      expect(observer.answers.get(version) ?? 0).toBeGreaterThan(0)
      expect(done.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe(version === 'v2' ? '2' : '3')
    }
  }, 150_000)

  it('a version that never gets ready stops after one old pod and reports ProgressDeadlineExceeded; the old pods keep serving', async () => {
    const observer = new Observer(clusterIp, () => alive())
    await patch({ spec: { progressDeadlineSeconds: 8, template: { spec: { containers: [container('bad')] } } } })
    const stuck = await until(async () => {
      const d = await deployment()
      return d.status?.conditions?.some((c) => c.type === 'Progressing' && c.status === 'False' && c.reason === 'ProgressDeadlineExceeded') ? d : undefined
    }, 60_000, 'ProgressDeadlineExceeded')
    await observer.stop()
    expect(observer.failures).toEqual([])
    expect([...observer.answers.keys()]).toEqual(['v1'])
    expect(observer.fewestReady).toBeGreaterThanOrEqual(minReady)
    expect(stuck.status).toMatchObject({ replicas: maxPods, updatedReplicas: 3, readyReplicas: minReady, availableReplicas: minReady })
    // Back to the working version, which the old ReplicaSet still has.
    await undoTo('3')
    await until(() => rolledOut(), 60_000, 'the rollback from the bad version')
  }, 120_000)

  it('the leader SIGKILLed mid-rollout: the new leader completes it within the surge bound', async () => {
    const view = await vc.cluster.view(vc.peers[0]!)
    const leader = vc.peers.find((p) => p.name === leaderName(view))!
    const watcher = vc.peers.find((p) => p !== leader)!
    const observer = new Observer(clusterIp, () => alive(watcher), false)
    await patch({ spec: { progressDeadlineSeconds: 600, template: { spec: { containers: [container('v3')] } } } }, 'application/merge-patch+json', watcher)
    await until(async () => {
      const s = (await deployment(watcher)).status ?? {}
      return (s.updatedReplicas ?? 0) >= 2 && (s.updatedReplicas ?? 0) < replicas
    }, 30_000, 'the rollout under way')
    await vc.cluster.kill(leader)
    // Its pods keep running; started again, it adopts them and reports them, as any restarted peer does.
    await until(async () => {
      const v = await vc.cluster.view(watcher)
      const name = leaderName(v)
      return name !== undefined && name !== leader.name
    }, 30_000, 'a new leader')
    vc.cluster.start(leader, runtimeArgs)
    await until(() => rolledOut(watcher), 90_000, 'the rollout to v3 under the new leader')
    await observer.stop()
    expect(observer.mostPlanned).toBeLessThanOrEqual(maxPods)
    expect(observer.mostPods).toBeLessThanOrEqual(maxPods)
    const pods = (await json<{ items: PodObject[] }>(watcher, '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb')).items
    expect(pods.map((p) => ((p.spec as { containers: { args: string[] }[] }).containers[0]!.args.at(-1)))).toEqual(Array(replicas).fill('v3'))
  }, 180_000)
})
