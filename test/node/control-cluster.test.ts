// The leader's scheduler and controllers on 3 real peer processes, with a test
// agent standing in for the pod runtime: it marks every pod bound to a live
// peer's Node Running. A replication controller spreads, scales, survives the
// leader's SIGKILL mid-scale with exactly its replica count, and a SIGKILLed
// peer's pods come back Running on the others. The scenarios follow one
// another on one cluster (starting one takes seconds).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiRequest, errorMessage, type ApiTarget } from '../../node/cli/client.js'
import { leaderName, startVotingCluster, until, type PeerProcess, type VotingCluster } from './process-cluster.js'
import { TestAgent } from './test-agent.js'

interface PodJson {
  metadata: { name: string; uid: string; ownerReferences?: { uid: string; controller?: boolean }[] }
  spec: { nodeName?: string }
  status?: { phase?: string; podIP?: string }
}

interface EventJson {
  involvedObject: { name: string }
  type: string
  reason: string
  message: string
}

const rcPath = '/api/v1/namespaces/default/replicationcontrollers'

let vc: VotingCluster
let agent: TestAgent
const targets = new Map<string, ApiTarget>()
/** Peers killed and not yet restarted: requests avoid them. Lists are linearizable, so any other peer gives the current state. */
const down = new Set<string>()

beforeAll(async () => {
  vc = await startVotingCluster(['c1', 'c2', 'c3'])
  for (const p of vc.peers) targets.set(p.name, await vc.cluster.target(p))
  agent = new TestAgent({ targets: [...targets.values()], nodeNames: vc.peers.map((p) => p.name) }).start()
  await until(async () => {
    const nodes = (await get<{ status?: { conditions?: { type: string; status: string }[] } }>('/api/v1/nodes'))
    return nodes.length === 3 && nodes.every((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
  }, 20_000, 'three Ready nodes')
})

afterAll(async () => {
  await agent?.stop()
  await vc?.cluster.destroy()
})

function alive(): PeerProcess {
  const peer = vc.peers.find((p) => !down.has(p.name))
  if (peer === undefined) throw new Error('no live peer')
  return peer
}

async function call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: unknown; message: string }> {
  const response = await apiRequest(targets.get(alive().name)!, method, path, { ...(body === undefined ? {} : { body: JSON.stringify(body), contentType }), timeoutMs: 8000 })
  return { status: response.status, json: response.text === '' ? null : JSON.parse(response.text), message: errorMessage(response) }
}

/** A linearizable list: a peer that just restarted answers only once it caught up with the leader. */
async function get<T>(path: string): Promise<T[]> {
  const answer = await call('GET', `${path}${path.includes('?') ? '&' : '?'}linearizable=true`)
  if (answer.status !== 200) throw new Error(`GET ${path}: HTTP ${answer.status} ${answer.message}`)
  return (answer.json as { items: T[] }).items
}

const webPods = (): Promise<PodJson[]> => get<PodJson>('/api/v1/namespaces/default/pods?labelSelector=app%3Dweb')

/** As kubectl scale does: a merge PATCH of the scale subresource, without a resourceVersion (the server retries a conflict itself). */
async function scale(replicas: number): Promise<void> {
  const answer = await call('PATCH', `${rcPath}/web/scale`, { spec: { replicas } }, 'application/merge-patch+json')
  if (answer.status !== 200) throw new Error(`scale to ${replicas}: HTTP ${answer.status} ${answer.message}`)
}

function perNode(pods: PodJson[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const p of pods) counts[p.spec.nodeName ?? '<none>'] = (counts[p.spec.nodeName ?? '<none>'] ?? 0) + 1
  return counts
}

/** Exactly `replicas` pods of the RC, every one Running on a live node. */
async function allRunning(replicas: number, what: string, timeoutMs = 20_000): Promise<PodJson[]> {
  return until(async () => {
    const pods = await webPods()
    const ok = pods.length === replicas && pods.every((p) => p.status?.phase === 'Running' && p.spec.nodeName !== undefined && !down.has(p.spec.nodeName))
    return ok ? pods : undefined
  }, timeoutMs, `${what} (agent: ${agent.lastError || 'no error'})`)
}

async function killPeer(peer: PeerProcess): Promise<number> {
  down.add(peer.name)
  agent.forgetNode(peer.name) // its agent dies with it
  await vc.cluster.kill(peer)
  return Date.now()
}

describe('scheduler and controllers on 3 peer processes', () => {
  it('spreads an RC of 30 evenly, 10 per node, all Running', async () => {
    const rc = { apiVersion: 'v1', kind: 'ReplicationController', metadata: { name: 'web' }, spec: { replicas: 30, selector: { app: 'web' }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'nginx', image: 'nginx', resources: { requests: { cpu: '10m', memory: '16Mi' } } }] } } } }
    const created = await call('POST', rcPath, rc)
    expect(created.status, created.message).toBe(201)
    const pods = await allRunning(30, '30 pods Running')
    expect(perNode(pods)).toEqual({ c1: 10, c2: 10, c3: 10 })
    expect(new Set(pods.map((p) => p.status!.podIP)).size).toBe(30)
    await until(async () => ((await call('GET', `${rcPath}/web`)).json as { status?: { readyReplicas?: number } }).status?.readyReplicas === 30 || undefined, 10_000, 'the RC to report 30 ready')
  })

  it('scales down and up through the scale subresource', async () => {
    await scale(12)
    await allRunning(12, '12 pods after scaling down')
    await scale(30)
    const pods = await allRunning(30, '30 pods after scaling up again')
    expect(Object.values(perNode(pods)).every((n) => n >= 8)).toBe(true)
  })

  it('leaves a pod that fits nowhere Pending with a FailedScheduling event saying why', async () => {
    const huge = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'huge' }, spec: { containers: [{ name: 'c', image: 'nginx', resources: { requests: { memory: '100Ti' } } }] } }
    expect((await call('POST', '/api/v1/namespaces/default/pods', huge)).status).toBe(201)
    const event = await until(async () => (await get<EventJson>('/api/v1/namespaces/default/events')).find((e) => e.involvedObject.name === 'huge' && e.reason === 'FailedScheduling'), 10_000, 'FailedScheduling for the huge pod')
    expect(event.type).toBe('Warning')
    expect(event.message).toBe('0/3 nodes are available: 3 Insufficient memory.')
    const pod = (await call('GET', '/api/v1/namespaces/default/pods/huge')).json as PodJson
    expect(pod.spec.nodeName).toBeUndefined()
    expect(pod.status?.phase).toBe('Pending')
    expect((await call('DELETE', '/api/v1/namespaces/default/pods/huge')).status).toBe(200)
  })

  it('ends a scale from 30 to 90 with exactly 90 pods when the leader is SIGKILLed right after the scale call', async () => {
    const leaderNow = leaderName(await vc.cluster.view(alive()))
    const leader = vc.peers.find((p) => p.name === leaderNow)!
    await scale(90)
    await killPeer(leader)
    // Never more pods than asked for, while the new leader takes over and the old leader's pods are replaced.
    let most = 0
    const pods = await until(async () => {
      const now = await webPods()
      most = Math.max(most, now.length)
      return now.length === 90 && now.every((p) => p.status?.phase === 'Running' && !down.has(p.spec.nodeName ?? '')) ? now : undefined
    }, 30_000, `90 pods Running on the survivors (agent: ${agent.lastError || 'no error'})`)
    expect(most).toBe(90)
    expect(new Set(pods.map((p) => p.metadata.name)).size).toBe(90)
    const rcUid = ((await call('GET', `${rcPath}/web`)).json as { metadata: { uid: string } }).metadata.uid
    expect(pods.every((p) => p.metadata.ownerReferences?.filter((o) => o.controller === true).map((o) => o.uid).join() === rcUid)).toBe(true)
    // And it stays there.
    await new Promise((r) => setTimeout(r, 1500))
    expect((await webPods()).length).toBe(90)

    // The old leader comes back (as a voter, so the next scenario keeps a quorum); its Node turns Ready again.
    vc.cluster.start(leader)
    down.delete(leader.name)
    await until(async () => (await get<{ metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }>('/api/v1/nodes')).find((n) => n.metadata.name === leader.name)?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), 20_000, `${leader.name} Ready again`)
    agent.addNode(leader.name)
    expect(perNode(await webPods())[leader.name]).toBeUndefined() // its old pods were replaced, not kept
  })

  it('replaces a SIGKILLed peer\'s pods on the others', async () => {
    const before = await webPods()
    const counts = perNode(before)
    const victim = vc.peers.filter((p) => !down.has(p.name)).sort((a, b) => (counts[b.name] ?? 0) - (counts[a.name] ?? 0))[0]!
    const carried = counts[victim.name] ?? 0
    expect(carried).toBeGreaterThan(0)
    const killedAtMs = await killPeer(victim)
    const pods = await allRunning(90, `${carried} pods of ${victim.name} replaced`, 30_000)
    const elapsedMs = Date.now() - killedAtMs
    console.log(`node loss: ${carried} pods of ${victim.name} Running elsewhere ${(elapsedMs / 1000).toFixed(1)} s after SIGKILL`)
    expect(perNode(pods)[victim.name]).toBeUndefined()
    const evicted = (await get<EventJson>('/api/v1/namespaces/default/events')).filter((e) => e.reason === 'Evicted' && e.message.includes(`node ${victim.name} not ready for 5s`))
    expect(evicted.length).toBe(carried)
    const nodeEvents = (await get<EventJson>('/api/v1/namespaces/default/events')).filter((e) => e.involvedObject.name === victim.name && e.reason === 'NodeNotReady')
    expect(nodeEvents).toMatchObject([{ type: 'Normal', message: `Node ${victim.name} status is now: NodeNotReady` }])
  })
})
