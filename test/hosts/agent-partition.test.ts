// A peer cut off from the others keeps running the pods bound to it (its
// replica still says so); a pod deleted meanwhile is stopped as soon as the
// peer hears the log again. Three peers on separate hosts (network
// namespaces), process runtime; the eviction timeout is long so that the
// deletion is the user's, not the leader's eviction.
import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { until } from '../node/process-cluster.js'
import { checkNetnsAvailable, type VirtualNetwork } from './netns.js'
import { nsFetch, startNsCluster, targetOf, viewOf, type NsCluster } from './ns-api.js'

const availability = await checkNetnsAvailable()
if (!availability.ok) console.warn(`[test/hosts/agent-partition] skipping the multi-host tests: ${availability.reason}`)

const marker = 'shoal-agent-partition-test'
const peerArgs = ['--runtime', 'process', '--pod-eviction-timeout', '10m']

function pids(): number[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').filter((l) => l !== '').map(Number)
  } catch {
    return []
  }
}

describe.skipIf(!availability.ok)('an agent cut off from the cluster', () => {
  let ns: NsCluster
  let vnet: VirtualNetwork

  beforeAll(async () => {
    ns = await startNsCluster('agentpart', 'g', peerArgs)
    vnet = ns.vnet
  }, 120_000)

  afterAll(async () => {
    await ns?.destroy()
    for (const pid of pids()) process.kill(pid, 'SIGKILL')
  })

  it('keeps running its pods while cut off, and stops a pod deleted meanwhile once it hears the log again', async () => {
    const first = vnet.hosts[0]!
    await until(async () => {
      const v = await viewOf(vnet, first)
      return v.peers.length === 3 && v.peers.every((p) => p.raftRole !== 'learner' && p.raftRole !== 'none' && p.gossipState === 'alive')
    }, 60_000, 'three voters, all alive')
    const cutOff = ns.hostOf.get('g3')!
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'stranded' }, spec: { nodeName: 'g3', terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: 'sh', command: ['sh', '-c', 'while true; do sleep 1; done', marker] }] } }
    const created = await nsFetch(vnet, first, targetOf(first), '/api/v1/namespaces/default/pods', { method: 'POST', body: JSON.stringify(pod) })
    expect(created.status, created.body).toBe(201)
    await until(async () => {
      const r = await nsFetch(vnet, first, targetOf(first), '/api/v1/namespaces/default/pods/stranded')
      return (JSON.parse(r.body) as { status?: { phase?: string } }).status?.phase === 'Running' || undefined
    }, 30_000, 'the pod Running on g3')
    expect(pids().length).toBeGreaterThan(0)

    await vnet.disconnect(cutOff)
    const deleted = await nsFetch(vnet, first, targetOf(first), '/api/v1/namespaces/default/pods/stranded', { method: 'DELETE', timeoutMs: 10_000 })
    expect(deleted.status, deleted.body).toBe(200)
    // Cut off, g3 cannot know: it keeps the pod running rather than guess.
    await new Promise((r) => setTimeout(r, 3000))
    expect(pids().length).toBeGreaterThan(0)

    await vnet.reconnect(cutOff)
    await until(() => pids().length === 0 || undefined, 30_000, 'the deleted pod stopped on g3 after the partition healed')
  }, 180_000)
})
