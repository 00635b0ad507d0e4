// Deleted pods stop promptly on real peers with the process runtime: one
// deleted while its peer was SIGKILLed is stopped, with its own grace period,
// as soon as the peer is back, and pods removed by scaling a
// ReplicationController down on a healthy peer end within their grace period
// (`sleep` ends at SIGTERM).
import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiRequest, type ApiTarget } from '../../node/cli/client.js'
import type { PodJson } from '../../node/agent/pod-types.js'
import { startVotingCluster, until, type PeerProcess, type VotingCluster } from '../node/process-cluster.js'

const runtimeArgs = ['--runtime', 'process', '--pod-eviction-timeout', '1m']
/** The `sleep` argument every pod of this file runs, so its processes can be found (and none outlives the tests unnoticed). */
const marker = '876543'

let vc: VotingCluster
const targets = new Map<string, ApiTarget>()

beforeAll(async () => {
  vc = await startVotingCluster(['d1', 'd2', 'd3'], runtimeArgs)
  for (const p of vc.peers) targets.set(p.name, await vc.cluster.target(p))
}, 120_000)

afterAll(async () => {
  const target = targets.get(vc?.peers[0]?.name ?? '')
  if (target !== undefined) {
    await apiRequest(target, 'DELETE', '/api/v1/namespaces/default/replicationcontrollers/sleepers').catch(() => {})
    await apiRequest(target, 'DELETE', '/api/v1/namespaces/default/pods?labelSelector=test%3Ddeleted-pods').catch(() => {})
  }
  await until(() => sleepers().size === 0, 15_000, 'every test pod stopped').catch(() => {})
  await vc?.cluster.destroy()
  for (const pid of sleepers().keys()) process.kill(pid, 'SIGKILL')
})

/** pid -> pod name (HOSTNAME) of every live `sleep 876543` on this machine. */
function sleepers(): Map<number, string> {
  let lines: string[]
  try {
    lines = execFileSync('pgrep', ['-f', `sleep ${marker}$`], { encoding: 'utf8' }).trim().split('\n').filter((l) => l !== '')
  } catch {
    return new Map()
  }
  const found = new Map<number, string>()
  for (const pid of lines.map(Number)) {
    try {
      const environ = execFileSync('cat', [`/proc/${pid}/environ`], { encoding: 'latin1' })
      const host = environ.split('\0').find((kv) => kv.startsWith('HOSTNAME='))
      found.set(pid, host?.slice('HOSTNAME='.length) ?? '')
    } catch {
      // gone meanwhile
    }
  }
  return found
}

async function call(peer: PeerProcess, method: string, path: string, body?: unknown, contentType?: string): Promise<{ status: number; text: string }> {
  return apiRequest(targets.get(peer.name)!, method, path, { timeoutMs: 5000, ...(body === undefined ? {} : { body: JSON.stringify(body) }), ...(contentType === undefined ? {} : { contentType }) })
}

async function podsOn(peer: PeerProcess, via: PeerProcess, selector: string): Promise<PodJson[]> {
  const r = await call(via, 'GET', `/api/v1/namespaces/default/pods?labelSelector=${encodeURIComponent(selector)}`)
  if (r.status !== 200) return []
  return (JSON.parse(r.text) as { items: PodJson[] }).items.filter((p) => p.spec.nodeName === peer.name)
}

function running(p: PodJson | undefined): boolean {
  return p?.status?.phase === 'Running' && p.status.containerStatuses?.[0]?.state.running !== undefined
}

const sleeper = { name: 'c', image: 'sleep', args: [marker] }

describe('deleted pods on real peers', () => {
  it('a pod deleted while its peer was SIGKILLed is stopped as soon as the peer is back', async () => {
    const [d1, d2] = vc.peers as [PeerProcess, PeerProcess]
    // It ignores SIGTERM: only the pod's grace period (1 s) decides when it ends, not a 30 s default for pods the restarted agent never saw.
    const stubborn = { name: 'c', image: 'sh', command: ['sh', '-c', `trap "" TERM; sleep ${marker}`] }
    const body = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'orphaned', labels: { test: 'deleted-pods' } }, spec: { nodeName: d2.name, terminationGracePeriodSeconds: 1, containers: [stubborn] } }
    expect((await call(d1, 'POST', '/api/v1/namespaces/default/pods', body)).status).toBe(201)
    await until(async () => running((await podsOn(d2, d1, 'test=deleted-pods'))[0]), 15_000, 'the pod Running on d2')
    await until(() => [...sleepers().values()].includes('orphaned') || undefined, 5000, 'its processes')
    await vc.cluster.kill(d2)
    expect((await call(d1, 'DELETE', '/api/v1/namespaces/default/pods/orphaned')).status).toBe(200)
    vc.cluster.start(d2, runtimeArgs)
    await until(async () => (await call(d2, 'GET', '/api/v1/namespaces/default/pods')).status === 200 || undefined, 30_000, 'd2 serving again')
    const backAt = Date.now()
    await until(() => ![...sleepers().values()].includes('orphaned'), 40_000, 'the deleted pod\'s processes gone')
    const goneAfterMs = Date.now() - backAt
    expect(goneAfterMs).toBeLessThan(5000)
  }, 90_000)

  it('scaling a ReplicationController down stops the removed pods within their grace period', async () => {
    const [d1, , d3] = vc.peers as [PeerProcess, PeerProcess, PeerProcess]
    const labels = { test: 'deleted-pods', app: 'sleepers' }
    const rc = {
      apiVersion: 'v1',
      kind: 'ReplicationController',
      metadata: { name: 'sleepers' },
      spec: { replicas: 4, selector: { app: 'sleepers' }, template: { metadata: { labels }, spec: { terminationGracePeriodSeconds: 5, nodeSelector: { 'kubernetes.io/hostname': d3.name }, containers: [sleeper] } } },
    }
    expect((await call(d1, 'POST', '/api/v1/namespaces/default/replicationcontrollers', rc)).status).toBe(201)
    await until(async () => {
      const pods = await podsOn(d3, d1, 'app=sleepers')
      return pods.length === 4 && pods.every(running)
    }, 20_000, 'four pods Running on d3')
    const before = [...(await podsOn(d3, d1, 'app=sleepers'))].map((p) => p.metadata.name ?? '')
    const scaledAt = Date.now()
    expect((await call(d1, 'PATCH', '/api/v1/namespaces/default/replicationcontrollers/sleepers', { spec: { replicas: 1 } }, 'application/merge-patch+json')).status).toBe(200)
    const kept = await until(async () => {
      const pods = await podsOn(d3, d1, 'app=sleepers')
      return pods.length === 1 ? pods[0]!.metadata.name : undefined
    }, 10_000, 'three pods deleted')
    const removed = before.filter((n) => n !== kept)
    await until(() => [...sleepers().values()].every((name) => !removed.includes(name)), 15_000, 'the removed pods\' processes gone')
    const goneAfterMs = Date.now() - scaledAt
    expect(goneAfterMs).toBeLessThan(5000)
  }, 60_000)
})
