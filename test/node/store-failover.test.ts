// Acknowledged objects survive the leader's SIGKILL, on every peer, including
// the killed one after it restarts and catches up from a snapshot: the log is
// compacted every 100 entries, so by then the entries it lacks are gone.
import { afterEach, describe, expect, it } from 'vitest'
import { apiRequest } from '../../node/cli/client.js'
import { ProcessCluster, leaderName, until, type PeerProcess } from './process-cluster.js'

let cluster: ProcessCluster | null = null
afterEach(async () => {
  await cluster?.destroy()
  cluster = null
})

const snapshotFlags = ['--snapshot-every-entries', '100']

function podBody(name: string): string {
  // For another scheduler: the cluster's own leaves them alone, so their resourceVersions stay as written.
  return JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { batch: name.split('-')[0]! } }, spec: { schedulerName: 'failover-test', containers: [{ name: 'c', image: 'nginx' }] } })
}

/** Create pods through the given peers, 16 at a time; resolves with the names every peer acknowledged with 201. */
async function createPods(c: ProcessCluster, through: PeerProcess[], names: string[]): Promise<string[]> {
  const acknowledged: string[] = []
  const queue = [...names]
  await Promise.all(
    Array.from({ length: 16 }, async (_, worker) => {
      const target = await c.target(through[worker % through.length]!)
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
        const response = await apiRequest(target, 'POST', '/api/v1/namespaces/default/pods', { body: podBody(name), timeoutMs: 10_000 })
        if (response.status !== 201) throw new Error(`create ${name}: HTTP ${response.status} ${response.text}`)
        acknowledged.push(name)
      }
    }),
  )
  return acknowledged
}

/** name → resourceVersion of every pod, as `peer` serves them. */
async function podsOn(c: ProcessCluster, peer: PeerProcess): Promise<Map<string, string>> {
  const response = await apiRequest(await c.target(peer), 'GET', '/api/v1/namespaces/default/pods?linearizable=true', { timeoutMs: 10_000 })
  if (response.status !== 200) throw new Error(`list on ${peer.name}: HTTP ${response.status} ${response.text}`)
  const list = JSON.parse(response.text) as { items: { metadata: { name: string; resourceVersion: string } }[] }
  return new Map(list.items.map((p) => [p.metadata.name, p.metadata.resourceVersion]))
}

describe('objects through a leader failure', () => {
  it('every acknowledged object is on every peer after the leader is SIGKILLed and restarted', async () => {
    const c = await ProcessCluster.create()
    cluster = c
    const peers = await Promise.all(['s1', 's2', 's3'].map((n) => c.add(n)))
    c.start(peers[0]!, snapshotFlags)
    const token = await c.tokenOf(peers[0]!)
    for (const p of peers.slice(1)) c.start(p, ['--join', token, ...snapshotFlags])
    await until(async () => {
      const view = await c.view(peers[0]!)
      return view.peers.filter((p) => p.raftRole === 'leader' || p.raftRole === 'voter').length === 3 && (await c.target(peers[2]!)) !== undefined
    }, 30_000, 'three voters with their APIs up')

    const before = await createPods(c, peers, Array.from({ length: 150 }, (_, k) => `before-${k}`))
    const oldLeaderName = leaderName(await c.view(peers[0]!))
    const oldLeader = peers.find((p) => p.name === oldLeaderName)!
    const appliedBeforeDeath = (await c.view(oldLeader)).appliedIndex
    await c.kill(oldLeader)
    const survivors = peers.filter((p) => p !== oldLeader)
    await until(async () => {
      const name = leaderName(await c.view(survivors[0]!))
      return name !== undefined && name !== oldLeaderName
    }, 10_000, 'a new leader')

    // Enough writes while it is down that the survivors compact past everything it has.
    const after = await createPods(c, survivors, Array.from({ length: 250 }, (_, k) => `after-${k}`))
    const acknowledged = [...before, ...after].sort()
    for (const p of survivors) expect([...(await podsOn(c, p)).keys()].sort()).toEqual(acknowledged)

    // What an operator's Prometheus sees on a survivor: the leader change, the dead peer, the writes.
    const metrics = await apiRequest(await c.target(survivors[0]!), 'GET', '/metrics')
    expect(metrics.status).toBe(200)
    expect(metricValue(metrics.text, 'shoal_raft_leader_changes_total')).toBeGreaterThanOrEqual(1)
    expect(metricValue(metrics.text, 'shoal_raft_commit_index')).toBeGreaterThan(appliedBeforeDeath)
    expect(metricValue(metrics.text, 'shoal_gossip_peers{state="alive"}')).toBe(1)
    expect(metricValue(metrics.text, 'shoal_gossip_peers{state="suspect"}') + metricValue(metrics.text, 'shoal_gossip_peers{state="dead"}')).toBe(1)
    expect(metricValue(metrics.text, 'apiserver_request_total{verb="POST",resource="pods",code="201"}')).toBeGreaterThan(0)

    // The survivors no longer hold the entries it lacks: it can only catch up from a snapshot.
    for (const p of survivors) expect((await c.view(p)).snapshotIndex).toBeGreaterThan(appliedBeforeDeath)
    c.start(oldLeader, snapshotFlags)
    const reference = await podsOn(c, survivors[0]!)
    await until(async () => (await podsOn(c, oldLeader)).size === acknowledged.length, 30_000, 'the restarted peer to catch up')
    // Same objects at the same resourceVersions everywhere: one history, not copies.
    for (const p of peers) expect(await podsOn(c, p)).toEqual(reference)
    expect(oldLeader.output).not.toMatch(/Error|error:/)
  })
})

/** A sample's value in Prometheus text format (0 when absent). */
function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}
