// Peers on separate hosts (network namespaces joined by a bridge): isolate
// the leader, so it is a minority of one. It must not commit; the majority
// elects a new leader and goes on; once healed, everyone converges.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterView } from '../../node/http-api.js'
import type { ApiTarget } from '../../node/cli/client.js'
import { ProcessCluster, leaderName, until, type PeerProcess } from '../node/process-cluster.js'
import { VirtualNetwork, checkNetnsAvailable, type VirtualHost } from './netns.js'

const availability = await checkNetnsAvailable()
if (!availability.ok) console.warn(`[test/hosts/partition] skipping the multi-host tests: ${availability.reason}`)

/**
 * A request from inside a host's namespace (the test itself lives outside every
 * namespace), over HTTPS to the peer's API at 127.0.0.1 there, trusting the
 * cluster CA and carrying the admin token from the peer's kubeconfig.
 */
async function nsFetch(vnet: VirtualNetwork, host: VirtualHost, target: ApiTarget, path: string, init: { method?: string; body?: string; timeoutMs?: number } = {}): Promise<{ status: number; body: string }> {
  const script = `const https = require('node:https')
    const req = https.request('https://127.0.0.1:7947' + process.env.SHOAL_PATH, { method: process.env.SHOAL_METHOD, ca: process.env.SHOAL_CA, headers: { authorization: 'Bearer ' + process.env.SHOAL_TOKEN } }, (res) => {
      let body = ''; res.setEncoding('utf8'); res.on('data', (c) => (body += c)); res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, body })))
    })
    req.setTimeout(${init.timeoutMs ?? 3000}, () => req.destroy(new Error('timeout')))
    req.on('error', (e) => process.stdout.write(JSON.stringify({ status: 0, body: e.message })))
    if (process.env.SHOAL_BODY) req.write(process.env.SHOAL_BODY)
    req.end()`
  const env = `SHOAL_PATH=${path}`
  const result = await vnet.exec(host, 'env', [env, `SHOAL_METHOD=${init.method ?? 'GET'}`, `SHOAL_CA=${target.caPem ?? ''}`, `SHOAL_TOKEN=${target.token ?? ''}`, `SHOAL_BODY=${init.body ?? ''}`, process.execPath, '-e', script], 15_000)
  return JSON.parse(result.stdout || '{"status":0,"body":"no output"}') as { status: number; body: string }
}

async function viewOf(vnet: VirtualNetwork, host: VirtualHost): Promise<ClusterView> {
  const r = await nsFetch(vnet, host, targetOf(host), '/shoal/v1/cluster')
  if (r.status !== 200) throw new Error(`cluster view: ${r.status} ${r.body}`)
  return JSON.parse(r.body) as ClusterView
}

const targets = new Map<VirtualHost, ApiTarget>()
function targetOf(host: VirtualHost): ApiTarget {
  const target = targets.get(host)
  if (target === undefined) throw new Error(`no kubeconfig read for ${host.name} yet`)
  return target
}

describe.skipIf(!availability.ok)('peers on separate hosts', () => {
  let vnet: VirtualNetwork
  let cluster: ProcessCluster
  const peers: PeerProcess[] = []
  const hostOf = new Map<string, VirtualHost>()

  beforeAll(async () => {
    vnet = await VirtualNetwork.create({ hosts: 3, label: 'partition' })
    cluster = await ProcessCluster.create()
    for (const [k, host] of vnet.hosts.entries()) {
      const peer = await cluster.add(`h${k + 1}`, { ip: host.ip })
      peers.push(peer)
      hostOf.set(peer.name, host)
    }
    const launcher = (peer: PeerProcess) => (command: string, args: string[]) => vnet.spawn(hostOf.get(peer.name)!, command, args)
    cluster.start(peers[0]!, [], launcher(peers[0]!))
    const token = await cluster.tokenOf(peers[0]!)
    for (const p of peers.slice(1)) cluster.start(p, ['--join', token], launcher(p))
    for (const p of peers) targets.set(hostOf.get(p.name)!, await cluster.target(p))
  }, 120_000)

  afterAll(async () => {
    await cluster?.destroy()
    await vnet?.destroy()
  })

  it('a partitioned minority cannot commit, the majority goes on, and after healing all converge', async () => {
    const first = vnet.hosts[0]!
    await until(async () => {
      const v = await viewOf(vnet, first)
      return v.peers.length === 3 && v.peers.every((p) => p.raftRole !== 'learner' && p.raftRole !== 'none' && p.gossipState === 'alive')
    }, 60_000, 'three voters, all alive')
    expect((await nsFetch(vnet, first, targetOf(first), '/shoal/v1/settings/before', { method: 'PUT', body: 'one' })).status).toBe(200)

    const oldLeader = leaderName(await viewOf(vnet, first))!
    const minority = hostOf.get(oldLeader)!
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
