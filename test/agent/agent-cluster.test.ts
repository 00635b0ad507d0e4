// Agents on 3 real peer processes with the process runtime. A peer SIGKILLed
// and started again adopts the pods it was running without restarting them;
// a pod's log is followed through another peer than the one running it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiRequest, type ApiTarget } from '../../node/cli/client.js'
import type { PodJson } from '../../node/agent/pod-types.js'
import { startVotingCluster, until, type PeerProcess, type VotingCluster } from '../node/process-cluster.js'
import { destroyClusterAndPods } from './agent-helpers.js'

const runtimeArgs = ['--runtime', 'process', '--pod-eviction-timeout', '1m']
/** Every pod this file starts carries it in its command line, so none can outlive the tests unnoticed. */
const marker = 'shoal-agent-cluster-test'

let vc: VotingCluster
const targets = new Map<string, ApiTarget>()

beforeAll(async () => {
  vc = await startVotingCluster(['a1', 'a2', 'a3'], runtimeArgs)
  for (const p of vc.peers) targets.set(p.name, await vc.cluster.target(p))
}, 120_000)

afterAll(async () => {
  const target = targets.get(vc?.peers[0]?.name ?? '')
  if (target !== undefined) await apiRequest(target, 'DELETE', '/api/v1/namespaces/default/pods?labelSelector=test%3Dagent-cluster').catch(() => {})
  await destroyClusterAndPods(vc, marker)
})

async function call(peer: PeerProcess, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return apiRequest(targets.get(peer.name)!, method, path, { timeoutMs: 5000, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
}

async function pod(peer: PeerProcess, name: string): Promise<PodJson | undefined> {
  const r = await call(peer, 'GET', `/api/v1/namespaces/default/pods/${name}`)
  return r.status === 200 ? (JSON.parse(r.text) as PodJson) : undefined
}

async function createPod(via: PeerProcess, name: string, nodeName: string, script: string): Promise<void> {
  const body = { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { test: 'agent-cluster' } }, spec: { nodeName, terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: 'sh', command: ['sh', '-c', script, marker] }] } }
  const r = await call(via, 'POST', '/api/v1/namespaces/default/pods', body)
  expect(r.status, r.text).toBe(201)
}

function running(p: PodJson | undefined): boolean {
  return p?.status?.phase === 'Running' && p.status.containerStatuses?.[0]?.state.running !== undefined
}

describe('agents on real peers', () => {
  it('a SIGKILLed peer, started again, adopts its running pods without restarting them', async () => {
    const [a1, a2] = vc.peers as [PeerProcess, PeerProcess]
    await createPod(a1, 'adopted', a2.name, 'while true; do sleep 1; done')
    const before = await until(async () => {
      const p = await pod(a1, 'adopted')
      return running(p) ? p : undefined
    }, 15_000, 'the pod Running on a2')
    const containerId = before!.status!.containerStatuses![0]!.containerID!
    const pid = Number(containerId.replace('process://', ''))
    await vc.cluster.kill(a2)
    // The pod does not die with its agent.
    expect(() => process.kill(pid, 0)).not.toThrow()
    vc.cluster.start(a2, runtimeArgs)
    await until(async () => (await call(a2, 'GET', '/api/v1/namespaces/default/pods/adopted')).status === 200 || undefined, 30_000, 'a2 serving again')
    // Give the restarted agent time to reconcile (it passes at once, then every 10 s).
    await new Promise((r) => setTimeout(r, 3000))
    const after = await pod(a2, 'adopted')
    expect(running(after)).toBe(true)
    expect(after!.status!.containerStatuses![0]).toMatchObject({ containerID: containerId, restartCount: 0 })
    expect(() => process.kill(pid, 0)).not.toThrow()
  })

  it('follows the log of a pod on another peer', async () => {
    const [a1, , a3] = vc.peers as [PeerProcess, PeerProcess, PeerProcess]
    await createPod(a1, 'chatty', a3.name, 'i=0; while true; do i=$((i+1)); echo "line $i"; sleep 0.2; done')
    await until(async () => running(await pod(a1, 'chatty')), 15_000, 'the pod Running on a3')
    const seen: string[] = []
    const stop = new AbortController()
    const followed = apiRequest(targets.get(a1.name)!, 'GET', '/api/v1/namespaces/default/pods/chatty/log?follow=true&tailLines=1', {
      signal: stop.signal,
      onChunk: (chunk) => seen.push(...chunk.split('\n').filter((l) => l !== '')),
    }).catch(() => undefined)
    // Lines keep arriving while the request stays open: the log is followed, not read once.
    await until(() => seen.length >= 4 || undefined, 10_000, 'four followed lines')
    stop.abort()
    await followed
    const numbers = seen.map((l) => Number(/^line (\d+)$/.exec(l)?.[1]))
    expect(numbers.every((n, k) => k === 0 || n === numbers[k - 1]! + 1)).toBe(true)
  })
})
