// Node objects in a cluster of peer processes: every peer has a Ready Node,
// a SIGKILLed peer turns Unknown and comes back, and pods/log answers as Kubernetes does.
import { afterEach, describe, expect, it } from 'vitest'
import type { NodeCondition } from '../../node/nodes/readiness.js'
import { ProcessCluster, leaderName, until, type PeerProcess } from './process-cluster.js'

interface NodeJson {
  metadata: { name: string; resourceVersion: string; labels: Record<string, string> }
  status: { capacity: Record<string, string>; allocatable: Record<string, string>; addresses: { type: string; address: string }[]; nodeInfo: Record<string, string>; conditions?: NodeCondition[] }
}

describe('Node objects of peer processes', () => {
  let cluster: ProcessCluster | null = null
  afterEach(async () => {
    await cluster?.destroy()
    cluster = null
  })

  async function nodes(c: ProcessCluster, peer: PeerProcess): Promise<NodeJson[]> {
    const response = await c.request(peer, 'GET', '/api/v1/nodes')
    if (response.status !== 200) throw new Error(`GET /api/v1/nodes: HTTP ${response.status} ${response.text}`)
    return (JSON.parse(response.text) as { items: NodeJson[] }).items
  }

  function readyOf(node: NodeJson | undefined): string | undefined {
    return node?.status.conditions?.find((c) => c.type === 'Ready')?.status
  }

  it('every peer has a Ready Node; a killed peer turns Unknown and Ready again on restart; pods/log answers as Kubernetes does', async () => {
    const c = await ProcessCluster.create()
    cluster = c
    const peers = await Promise.all(['n1', 'n2', 'n3'].map((n) => c.add(n)))
    c.start(peers[0]!)
    const token = await c.tokenOf(peers[0]!)
    for (const p of peers.slice(1)) c.start(p, ['--join', token])
    const all = await until(async () => {
      const items = await nodes(c, peers[2]!)
      return items.length === 3 && items.every((n) => readyOf(n) === 'True') ? items : undefined
    }, 30_000, 'three Ready nodes')
    expect(all.map((n) => n.metadata.name)).toEqual(['n1', 'n2', 'n3'])
    for (const n of all) {
      expect(n.metadata.labels['kubernetes.io/hostname']).toBe(n.metadata.name)
      expect(n.metadata.labels['shoal.io/peer-id']).toMatch(/^12D3KooW/)
      expect(n.status.capacity).toMatchObject({ cpu: expect.stringMatching(/^\d+$/), memory: expect.stringMatching(/^\d+Ki$/), pods: '110' })
      expect(Number.parseInt(n.status.allocatable.memory!)).toBeLessThan(Number.parseInt(n.status.capacity.memory!))
      expect(n.status.addresses.find((a) => a.type === 'InternalIP')?.address).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
      expect(n.status.addresses).toContainEqual({ type: 'Hostname', address: n.metadata.name })
      expect(n.status.nodeInfo).toMatchObject({ operatingSystem: 'linux', kubeletVersion: expect.stringMatching(/^v1\.\d+\.\d+\+shoal\./), kernelVersion: expect.any(String), osImage: expect.any(String) })
      expect(n.status.conditions!.map((x) => x.type).sort()).toEqual(['DiskPressure', 'MemoryPressure', 'PIDPressure', 'Ready'])
    }
    // Steady state writes nothing through Raft: the Nodes keep their resourceVersions.
    await new Promise((r) => setTimeout(r, 2500))
    expect((await nodes(c, peers[0]!)).map((n) => n.metadata.resourceVersion)).toEqual(all.map((n) => n.metadata.resourceVersion))

    // SIGKILL the leader: the new one declares its Node Unknown within seconds.
    const leader = leaderName(await c.view(peers[0]!))
    const victim = peers.find((p) => p.name === leader)!
    const survivors = peers.filter((p) => p !== victim)
    await c.kill(victim)
    const killedAt = Date.now()
    for (const p of survivors) {
      const gone = await until(async () => {
        const node = (await nodes(c, p)).find((n) => n.metadata.name === victim.name)
        return readyOf(node) === 'Unknown' ? node : undefined
      }, 10_000, `${victim.name} Unknown as seen from ${p.name}`)
      expect(gone!.status.conditions!.find((x) => x.type === 'Ready')).toMatchObject({ reason: 'NodeStatusUnknown', message: 'peer stopped gossiping' })
    }
    expect(Date.now() - killedAt).toBeLessThan(8000)
    expect((await nodes(c, survivors[0]!)).filter((n) => n.metadata.name !== victim.name).map(readyOf)).toEqual(['True', 'True'])

    c.start(victim)
    await until(async () => readyOf((await nodes(c, survivors[1]!)).find((n) => n.metadata.name === victim.name)) === 'True', 20_000, `${victim.name} Ready again`)

    // pods/log: 404 for no pod, 400 for a pod no scheduler binds (another schedulerName), as Kubernetes words it.
    const p = survivors[0]!
    const missing = await c.request(p, 'GET', '/api/v1/namespaces/default/pods/nope/log')
    expect(missing.status).toBe(404)
    expect(JSON.parse(missing.text)).toMatchObject({ kind: 'Status', reason: 'NotFound', message: 'pods "nope" not found' })
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web' }, spec: { schedulerName: 'nobody', containers: [{ name: 'nginx', image: 'nginx' }, { name: 'sidecar', image: 'busybox' }] } }
    expect((await c.request(p, 'POST', '/api/v1/namespaces/default/pods', JSON.stringify(pod))).status).toBe(201)
    const unnamed = await c.request(p, 'GET', '/api/v1/namespaces/default/pods/web/log')
    expect(unnamed.status).toBe(400)
    expect(JSON.parse(unnamed.text)).toMatchObject({ reason: 'BadRequest', message: 'a container name must be specified for pod web, choose one of: [nginx sidecar]' })
    const named = await c.request(p, 'GET', '/api/v1/namespaces/default/pods/web/log?container=nginx&follow=true')
    expect(named.status).toBe(400)
    expect(JSON.parse(named.text).message).toBe('pod web does not have a host assigned')
    const resources = JSON.parse((await c.request(p, 'GET', '/api/v1')).text) as { resources: { name: string; verbs: string[] }[] }
    expect(resources.resources.find((r) => r.name === 'pods/log')?.verbs).toEqual(['get'])
  })
})
