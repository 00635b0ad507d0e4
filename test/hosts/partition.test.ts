// Peers on separate hosts (network namespaces joined by a bridge): isolate
// the leader, so it is a minority of one. It must not commit; the majority
// elects a new leader and goes on; once healed, everyone converges.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { leaderName, until } from '../node/process-cluster.js'
import { checkNetnsAvailable, type VirtualNetwork } from './netns.js'
import { nsFetch, startNsCluster, targetOf, viewOf, type NsCluster } from './ns-api.js'

const availability = await checkNetnsAvailable()
if (!availability.ok) console.warn(`[test/hosts/partition] skipping the multi-host tests: ${availability.reason}`)

describe.skipIf(!availability.ok)('peers on separate hosts', () => {
  let ns: NsCluster
  let vnet: VirtualNetwork

  beforeAll(async () => {
    ns = await startNsCluster('partition', 'h')
    vnet = ns.vnet
  }, 120_000)

  afterAll(async () => {
    await ns?.destroy()
  })

  it('a partitioned minority cannot commit, the majority goes on, and after healing all converge', async () => {
    const first = vnet.hosts[0]!
    await until(async () => {
      const v = await viewOf(vnet, first)
      return v.peers.length === 3 && v.peers.every((p) => p.raftRole !== 'learner' && p.raftRole !== 'none' && p.gossipState === 'alive')
    }, 60_000, 'three voters, all alive')
    expect((await nsFetch(vnet, first, targetOf(first), '/shoal/v1/settings/before', { method: 'PUT', body: 'one' })).status).toBe(200)

    const oldLeader = leaderName(await viewOf(vnet, first))!
    const minority = ns.hostOf.get(oldLeader)!
    const majority = vnet.hosts.filter((h) => h !== minority)
    await vnet.disconnect(minority)

    // The isolated old leader cannot commit a write, and says so.
    const refused = await nsFetch(vnet, minority, targetOf(minority), '/shoal/v1/settings/minority', { method: 'PUT', body: 'lost', timeoutMs: 10_000 })
    expect(refused.status).toBe(504)
    expect(JSON.parse(refused.body)).toMatchObject({ kind: 'Status', reason: 'Timeout' })
    // The majority elects a new leader and commits.
    const newLeader = await until(async () => {
      const name = leaderName(await viewOf(vnet, majority[0]!))
      return name !== undefined && name !== oldLeader ? name : undefined
    }, 15_000, 'a new leader in the majority')
    expect((await nsFetch(vnet, majority[0]!, targetOf(majority[0]!), '/shoal/v1/settings/majority', { method: 'PUT', body: 'kept' })).status).toBe(200)

    await vnet.reconnect(minority)
    await until(async () => {
      const views = await Promise.all(vnet.hosts.map((h) => viewOf(vnet, h)))
      const leaders = new Set(views.map((v) => v.leaderId))
      const commits = new Set(views.map((v) => v.appliedIndex))
      return leaders.size === 1 && commits.size === 1 && views.every((v) => v.leaderId !== null)
    }, 30_000, 'all peers to agree on the leader and applied index')
    const healed = await nsFetch(vnet, minority, targetOf(minority), '/shoal/v1/settings/majority?linearizable=true')
    expect(JSON.parse(healed.body)).toMatchObject({ value: 'kept' })
    const lost = await nsFetch(vnet, minority, targetOf(minority), '/shoal/v1/settings/minority?linearizable=true')
    expect(lost.status).toBe(404)
    expect(leaderName(await viewOf(vnet, minority))).toBe(newLeader)
  }, 180_000)
})
