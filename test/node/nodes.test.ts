// Node objects: what a peer says about its host, when the leader calls a peer
// Ready, and the pods/log answer while no agent runs containers.
import { describe, expect, it } from 'vitest'
import type { MemberView } from '../../net/gossip.js'
import { logContainer, podLog } from '../../node/api/pod-log.js'
import { coreKinds, nodeKind } from '../../node/kinds/cluster.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import { allocatableOf, capacityOf, describeHost, internalIpOf, kubernetesArch, labelValueOf, osImageOf, peerVersionOf, type HostFacts } from '../../node/nodes/host-info.js'
import { NodeLifecycle, peerIdLabel } from '../../node/nodes/node-lifecycle.js'
import { NodeSelf, sameJson } from '../../node/nodes/node-self.js'
import { decideReady, isoSeconds, nextConditions, readinessTimings, type NodeCondition, type PeerView, type ReadyVerdict } from '../../node/nodes/readiness.js'
import type { PeerRecord } from '../../node/registry.js'
import type { StoreCommand } from '../../node/store/commands.js'
import { ObjectStore } from '../../node/store/object-store.js'

const idA = '12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const idB = '12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB'
const idC = '12D3KooWCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC'

describe('decideReady', () => {
  const member = (state: 'alive' | 'suspect' | 'dead' | 'left', everHeard = true, stateSinceMs = 0): PeerView['member'] => ({ state, everHeard, stateSinceMs })
  const cases: [string, PeerView, ReadyVerdict['keep'], string?][] = [
    ['the leader itself', { isSelf: true, member: null, leaderForMs: 0 }, false, 'True'],
    ['alive', { isSelf: false, member: member('alive'), leaderForMs: 0 }, false, 'True'],
    ['alive right after becoming leader', { isSelf: false, member: member('alive', true), leaderForMs: 10 }, false, 'True'],
    ['not tracked by gossip yet', { isSelf: false, member: null, leaderForMs: 60_000 }, true],
    ['dead after being heard', { isSelf: false, member: member('dead'), leaderForMs: 10 }, false, 'Unknown'],
    ['dead, never heard, within the new leader grace', { isSelf: false, member: member('dead', false), leaderForMs: 1000 }, true],
    ['dead, never heard, after the grace', { isSelf: false, member: member('dead', false), leaderForMs: readinessTimings.leaderGraceMs }, false, 'Unknown'],
    ['suspect for a moment', { isSelf: false, member: member('suspect', true, 2000), leaderForMs: 60_000 }, true],
    ['suspect (answers probes, publishes nothing) for 40 s', { isSelf: false, member: member('suspect', true, 40_000), leaderForMs: 60_000 }, false, 'Unknown'],
    ['never heard, suspect, within the grace', { isSelf: false, member: member('suspect', false, 40_000), leaderForMs: 0 }, true],
    ['left gossip', { isSelf: false, member: member('left'), leaderForMs: 60_000 }, false, 'Unknown'],
  ]
  for (const [what, view, keep, status] of cases) {
    it(what, () => {
      const verdict = decideReady(view)
      expect(verdict.keep).toBe(keep)
      if (!verdict.keep) expect(verdict.status).toBe(status)
    })
  }

  it('says why in Kubernetes terms', () => {
    expect(decideReady({ isSelf: false, member: member('alive'), leaderForMs: 0 })).toEqual({ keep: false, status: 'True', reason: 'ShoalPeerReady', message: 'peer is alive' })
    expect(decideReady({ isSelf: false, member: member('dead'), leaderForMs: 0 })).toEqual({ keep: false, status: 'Unknown', reason: 'NodeStatusUnknown', message: 'peer stopped gossiping' })
  })
})

describe('nextConditions', () => {
  const t0 = Date.parse('2026-03-01T10:00:00Z')
  const alive = decideReady({ isSelf: false, member: { state: 'alive', everHeard: true, stateSinceMs: 0 }, leaderForMs: 0 })
  const dead = decideReady({ isSelf: false, member: { state: 'dead', everHeard: true, stateSinceMs: 0 }, leaderForMs: 0 })
  const ready = (c: NodeCondition[]) => c.find((x) => x.type === 'Ready')!

  it('a new Node gets the pressure conditions False and Ready True, all stamped now, to the second', () => {
    const c = nextConditions([], alive, { nowMs: t0 + 123, lastHeardAtMs: t0 })!
    expect(c.map((x) => [x.type, x.status, x.reason])).toEqual([
      ['MemoryPressure', 'False', 'KubeletHasSufficientMemory'],
      ['DiskPressure', 'False', 'KubeletHasNoDiskPressure'],
      ['PIDPressure', 'False', 'KubeletHasSufficientPID'],
      ['Ready', 'True', 'ShoalPeerReady'],
    ])
    expect(new Set(c.flatMap((x) => [x.lastHeartbeatTime, x.lastTransitionTime]))).toEqual(new Set(['2026-03-01T10:00:00Z']))
  })

  it('writes nothing while nothing changes, refreshes the heartbeat after 40 s, keeps the transition time', () => {
    const c0 = nextConditions([], alive, { nowMs: t0, lastHeardAtMs: t0 })!
    expect(nextConditions(c0, alive, { nowMs: t0 + 39_000, lastHeardAtMs: t0 + 39_000 })).toBeNull()
    const c1 = nextConditions(c0, alive, { nowMs: t0 + 40_000, lastHeardAtMs: t0 + 40_000 })!
    expect(ready(c1).lastHeartbeatTime).toBe(isoSeconds(t0 + 40_000))
    expect(ready(c1).lastTransitionTime).toBe(isoSeconds(t0))
    expect(c1.every((x) => x.lastHeartbeatTime === isoSeconds(t0 + 40_000))).toBe(true)
  })

  it('a dead peer turns Unknown at once, with the time it was last heard as its heartbeat; so do the pressure conditions', () => {
    const c0 = nextConditions([], alive, { nowMs: t0, lastHeardAtMs: t0 })!
    const c1 = nextConditions(c0, dead, { nowMs: t0 + 5000, lastHeardAtMs: t0 + 3000 })!
    expect(ready(c1)).toEqual({ type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown', message: 'peer stopped gossiping', lastTransitionTime: isoSeconds(t0 + 5000), lastHeartbeatTime: isoSeconds(t0 + 3000) })
    expect(c1.filter((x) => x.type !== 'Ready').every((x) => x.status === 'Unknown' && x.lastTransitionTime === isoSeconds(t0 + 5000))).toBe(true)
    // Still dead a minute later: nothing to write, not even a heartbeat.
    expect(nextConditions(c1, dead, { nowMs: t0 + 65_000, lastHeardAtMs: t0 + 3000 })).toBeNull()
    // Back: True, a new transition time.
    const c2 = nextConditions(c1, alive, { nowMs: t0 + 70_000, lastHeardAtMs: t0 + 70_000 })!
    expect(ready(c2).status).toBe('True')
    expect(ready(c2).lastTransitionTime).toBe(isoSeconds(t0 + 70_000))
    expect(c2.filter((x) => x.type !== 'Ready').every((x) => x.status === 'False')).toBe(true)
  })

  it('a kept verdict changes nothing, even when the heartbeat is old', () => {
    const c0 = nextConditions([], alive, { nowMs: t0, lastHeardAtMs: t0 })!
    expect(nextConditions(c0, { keep: true }, { nowMs: t0 + 120_000, lastHeardAtMs: null })).toBeNull()
  })

  it('keeps conditions it does not own, and ignores key order in stored ones', () => {
    const other: NodeCondition = { type: 'NetworkUnavailable', status: 'False', reason: 'RouteCreated', message: 'x', lastHeartbeatTime: isoSeconds(t0), lastTransitionTime: isoSeconds(t0) }
    const c0 = [...nextConditions([], alive, { nowMs: t0, lastHeardAtMs: t0 })!, other]
    const reordered = c0.map((c) => Object.fromEntries(Object.entries(c).reverse()) as unknown as NodeCondition)
    expect(nextConditions(reordered, alive, { nowMs: t0 + 1000, lastHeardAtMs: t0 + 1000 })).toBeNull()
    const c1 = nextConditions(c0, dead, { nowMs: t0 + 1000, lastHeardAtMs: t0 })!
    expect(c1.at(-1)).toEqual(other)
  })
})

const facts: HostFacts = {
  cpus: 4,
  memoryBytes: 16_725_159_936,
  nodeArch: 'x64',
  nodePlatform: 'linux',
  kernelVersion: '6.1.0-18-amd64',
  osRelease: 'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n',
  machineId: '3d1219c7c4c5404aaa1f6d2a48adfda4',
  bootId: 'b0a1',
  interfaceIpv4: ['10.1.2.3'],
  hostname: 'box',
}

describe('host info', () => {
  it('capacity and allocatable as Kubernetes writes them, minus the peer reserve', () => {
    expect(capacityOf(facts)).toEqual({ cpu: '4', memory: '16333164Ki', pods: '110' })
    expect(allocatableOf(facts)).toEqual({ cpu: '3900m', memory: `${16333164 - 262144}Ki`, pods: '110' })
    expect(allocatableOf({ cpus: 1, memoryBytes: 100 })).toEqual({ cpu: '900m', memory: '0Ki', pods: '110' })
  })

  it('InternalIP: the first non-loopback IPv4 of the peer, then of the host, else 127.0.0.1', () => {
    expect(internalIpOf(['/ip4/127.0.0.1/tcp/1/p2p/x', '/ip4/192.168.1.9/tcp/7946/p2p/x'], ['10.1.2.3'])).toBe('192.168.1.9')
    expect(internalIpOf(['/ip4/127.0.0.1/tcp/1', '/ip6/::1/tcp/1'], ['10.1.2.3'])).toBe('10.1.2.3')
    expect(internalIpOf(['/ip4/0.0.0.0/tcp/1'], [])).toBe('127.0.0.1')
  })

  it('osImage from PRETTY_NAME, GOARCH names, label-safe names', () => {
    expect(osImageOf(facts.osRelease)).toBe('Debian GNU/Linux 12 (bookworm)')
    expect(osImageOf("PRETTY_NAME='Alpine Linux v3.19'")).toBe('Alpine Linux v3.19')
    expect(osImageOf(null)).toBe('Unknown')
    expect([kubernetesArch('x64'), kubernetesArch('arm64'), kubernetesArch('ia32')]).toEqual(['amd64', 'arm64', '386'])
    expect(labelValueOf(`${'a'.repeat(62)}.b`)).toBe('a'.repeat(62))
  })

  it('describes the host as a valid Node', () => {
    const d = describeHost(facts, { name: 'alpha', peerId: idA, listenAddresses: ['/ip4/127.0.0.1/tcp/1'], apiPort: 7947, shoalVersion: '0.1.0', runtimeVersion: 'process://v20.20.2' })
    expect(d.labels).toEqual({ 'kubernetes.io/hostname': 'alpha', 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', [peerIdLabel]: idA })
    expect(d.status.addresses).toEqual([{ type: 'InternalIP', address: '10.1.2.3' }, { type: 'Hostname', address: 'alpha' }])
    expect(d.status.nodeInfo).toMatchObject({ osImage: 'Debian GNU/Linux 12 (bookworm)', kernelVersion: '6.1.0-18-amd64', architecture: 'amd64', operatingSystem: 'linux', machineID: facts.machineId, containerRuntimeVersion: 'process://v20.20.2', kubeletVersion: peerVersionOf('0.1.0') })
    expect(peerVersionOf('0.1.0')).toBe('v1.32.0+shoal.0.1.0')
    expect(d.status.daemonEndpoints).toEqual({ kubeletEndpoint: { Port: 7947 } })
  })
})

/** A replica and a submit that applies to it, like a one-peer cluster. */
function replica() {
  const store = new ObjectStore(coreKinds())
  const writes: StoreCommand[] = []
  let index = 0
  const submit = async (command: StoreCommand) => {
    index += 1
    writes.push(command)
    store.apply(index, command, [], [])
    return { index, outcomes: store.outcomeOf(index)! }
  }
  return { store, writes, submit }
}

function nodeOf(store: ObjectStore, name: string): ApiObject & { status: { conditions: NodeCondition[]; addresses: { type: string; address: string }[] } } {
  return store.get({ apiVersion: 'v1', kind: 'Node', name }) as never
}

function readyStatus(node: ApiObject): string | undefined {
  return ((node.status ?? {}) as { conditions?: NodeCondition[] }).conditions?.find((c) => c.type === 'Ready')?.status
}

function record(peerId: string, name: string, leftAtMs: number | null = null): PeerRecord {
  return { peerId, name, addresses: [], apiAddress: null, joinedAtMs: 0, leftAtMs }
}

describe('NodeSelf', () => {
  function self(r: ReturnType<typeof replica>, listen: string[], member = true) {
    const sleeps: number[] = []
    const s = new NodeSelf({
      peerId: idA,
      name: 'alpha',
      store: r.store,
      submit: r.submit,
      isMember: () => member,
      describe: () => describeHost(facts, { name: 'alpha', peerId: idA, listenAddresses: listen, apiPort: 7947, shoalVersion: '0.1.0' }),
      nowMs: () => Date.parse('2026-03-01T10:00:00Z'),
      sleep: async (ms) => void sleeps.push(ms),
    })
    return { s, sleeps }
  }

  it('creates its Node Ready, then writes nothing while the host is the same', async () => {
    const r = replica()
    const { s } = self(r, [])
    expect(await s.round()).toBe('created')
    const node = nodeOf(r.store, 'alpha')
    expect(readyStatus(node)).toBe('True')
    expect(node.metadata.labels?.[peerIdLabel]).toBe(idA)
    expect(await s.round()).toBe('unchanged')
    expect(await s.round()).toBe('unchanged')
    expect(r.writes).toHaveLength(1)
  })

  it('waits until it is a member; a peer that left does not bring its Node back', async () => {
    const r = replica()
    expect(await self(r, [], false).s.round()).toBe('waiting')
    expect(r.writes).toHaveLength(0)
  })

  it('rewrites only what it owns: new addresses keep the leader conditions and the user labels', async () => {
    const r = replica()
    await self(r, []).s.round()
    const node = nodeOf(r.store, 'alpha')
    const conditions = [{ ...node.status.conditions[3]!, status: 'Unknown' as const }]
    await r.submit({ op: 'obj.update', object: { ...node, status: { ...node.status, conditions } }, subresource: 'status' })
    await r.submit({ op: 'obj.update', object: { ...nodeOf(r.store, 'alpha'), metadata: { ...nodeOf(r.store, 'alpha').metadata, labels: { ...node.metadata.labels, team: 'blue' } } } })
    expect(await self(r, ['/ip4/192.168.7.7/tcp/1']).s.round()).toBe('updated')
    const after = nodeOf(r.store, 'alpha')
    expect(after.status.addresses[0]).toEqual({ type: 'InternalIP', address: '192.168.7.7' })
    expect(after.status.conditions).toEqual(conditions)
    expect(after.metadata.labels?.team).toBe('blue')
  })

  it('retries a conflicting write with backoff, a bounded number of times', async () => {
    const r = replica()
    await self(r, []).s.round()
    let conflicts = 2
    const racing = async (command: StoreCommand) => {
      // Someone else writes the Node just before each of our first writes lands.
      if (conflicts-- > 0) await r.submit({ op: 'obj.update', object: nodeOf(r.store, 'alpha'), subresource: 'status' })
      return r.submit(command)
    }
    const { s, sleeps } = self({ ...r, submit: racing }, ['/ip4/192.168.7.7/tcp/1'])
    expect(await s.round()).toBe('updated')
    expect(sleeps).toHaveLength(2)
    expect(sleeps[1]!).toBeGreaterThan(sleeps[0]!)
    conflicts = 100
    const stuck = self({ ...r, submit: racing }, ['/ip4/192.168.8.8/tcp/1'])
    await expect(stuck.s.round()).rejects.toMatchObject({ code: 409 })
    expect(stuck.sleeps).toHaveLength(4)
  })
})

describe('NodeLifecycle', () => {
  function setup() {
    const r = replica()
    const members = new Map<string, MemberView>()
    const tracked: string[] = []
    const peers = new Map([idA, idB, idC].map((id, k) => [id, record(id, ['alpha', 'beta', 'gamma'][k]!)]))
    let nowMs = Date.parse('2026-03-01T10:00:00Z')
    let term: number | null = 2
    const lifecycle = new NodeLifecycle({
      selfPeerId: idA,
      leaderTerm: () => term,
      store: r.store,
      peers: () => peers,
      gossip: { member: (id) => members.get(id) ?? null, track: (ids) => void tracked.push(...ids) },
      submit: r.submit,
      nowMs: () => nowMs,
    })
    const member = (peerId: string, state: MemberView['state'], heard = true) => members.set(peerId, { peerId, state, health: null, lastHeardMs: heard ? 100 : null, stateSinceMs: 0 })
    return { r, lifecycle, peers, members, tracked, member, advance: (ms: number) => (nowMs += ms), setTerm: (t: number | null) => (term = t) }
  }

  async function createNodes(r: ReturnType<typeof replica>) {
    for (const [id, name] of [[idA, 'alpha'], [idB, 'beta'], [idC, 'gamma']] as const) {
      await new NodeSelf({ peerId: id, name, store: r.store, submit: r.submit, isMember: () => true, describe: () => describeHost(facts, { name, peerId: id, listenAddresses: [], apiPort: 1, shoalVersion: '0.1.0' }), nowMs: () => Date.parse('2026-03-01T10:00:00Z') }).round()
    }
  }

  it('does nothing unless it leads', async () => {
    const { r, lifecycle, setTerm } = setup()
    await createNodes(r)
    setTerm(null)
    expect(await lifecycle.round()).toEqual({ updated: [], deleted: [] })
  })

  it('alive peers stay Ready with no writes; a dead one goes Unknown in one entry; it comes back Ready', async () => {
    const { r, lifecycle, member, advance } = setup()
    await createNodes(r)
    member(idB, 'alive')
    member(idC, 'alive')
    const before = r.writes.length
    expect(await lifecycle.round()).toEqual({ updated: [], deleted: [] })
    expect(r.writes.length).toBe(before)
    member(idC, 'dead')
    advance(1000)
    expect((await lifecycle.round()).updated).toEqual(['gamma'])
    expect(r.writes.length).toBe(before + 1)
    expect(readyStatus(nodeOf(r.store, 'gamma'))).toBe('Unknown')
    expect(nodeOf(r.store, 'gamma').status.conditions.find((c) => c.type === 'Ready')!.message).toBe('peer stopped gossiping')
    expect(readyStatus(nodeOf(r.store, 'beta'))).toBe('True')
    member(idC, 'alive')
    advance(1000)
    await lifecycle.round()
    expect(readyStatus(nodeOf(r.store, 'gamma'))).toBe('True')
  })

  it('refreshes heartbeats every 40 s, not every round', async () => {
    const { r, lifecycle, member, advance } = setup()
    await createNodes(r)
    member(idB, 'alive')
    member(idC, 'alive')
    const before = r.writes.length
    for (let k = 0; k < 39; k++) {
      advance(1000)
      await lifecycle.round()
    }
    expect(r.writes.length).toBe(before)
    advance(1000)
    expect((await lifecycle.round()).updated.sort()).toEqual(['alpha', 'beta', 'gamma'])
    expect(r.writes.length).toBe(before + 1)
  })

  it('a new leader keeps the state of peers it has not heard from during its grace, and tracks them in gossip', async () => {
    const { r, lifecycle, member, advance, setTerm, tracked } = setup()
    await createNodes(r)
    setTerm(3)
    member(idB, 'alive')
    await lifecycle.round()
    expect(tracked).toEqual([idC])
    member(idC, 'dead', false)
    advance(1000)
    expect((await lifecycle.round()).updated).toEqual([])
    expect(readyStatus(nodeOf(r.store, 'gamma'))).toBe('True')
    advance(readinessTimings.leaderGraceMs)
    expect((await lifecycle.round()).updated).toEqual(['gamma'])
    expect(readyStatus(nodeOf(r.store, 'gamma'))).toBe('Unknown')
  })

  it('deletes the Node of a peer that left the cluster, and leaves Nodes it does not know alone', async () => {
    const { r, lifecycle, peers, member } = setup()
    await createNodes(r)
    await r.submit({ op: 'obj.create', object: { apiVersion: 'v1', kind: 'Node', metadata: { name: 'handmade', uid: 'u1' } } })
    member(idB, 'alive')
    member(idC, 'left')
    peers.set(idC, record(idC, 'gamma', 12345))
    expect(await lifecycle.round()).toEqual({ updated: [], deleted: ['gamma'] })
    expect(r.store.list(nodeKind).map((n) => n.metadata.name)).toEqual(['alpha', 'beta', 'handmade'])
  })
})

describe('pods/log', () => {
  const pod = (containers: string[], init: string[] = []): ApiObject =>
    ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'default' }, spec: { containers: containers.map((name) => ({ name, image: 'x' })), initContainers: init.map((name) => ({ name, image: 'x' })) } }) as ApiObject

  it('names the waiting container, as Kubernetes does before a container starts', () => {
    expect(() => podLog(pod(['nginx']), new URLSearchParams())).toThrow('container "nginx" in pod "web" is waiting to start: no agent runs pods yet')
    expect(() => podLog(pod(['a', 'b']), new URLSearchParams('container=b'))).toThrow('container "b" in pod "web" is waiting to start')
    expect(() => podLog(pod(['nginx']), new URLSearchParams('previous=true'))).toThrow('previous terminated container "nginx" in pod "web" not found')
  })

  it('asks for a container name when the pod has several, and refuses unknown ones', () => {
    expect(() => logContainer(pod(['a', 'b']), null)).toThrow('a container name must be specified for pod web, choose one of: [a b]')
    expect(() => logContainer(pod(['a', 'b'], ['init']), null)).toThrow('choose one of: [a b] or one of the init containers: [init]')
    expect(() => logContainer(pod(['a']), 'c')).toThrow('container c is not valid for pod web')
    expect(logContainer(pod(['a'], ['init']), 'init')).toBe('init')
    try {
      logContainer(pod(['a', 'b']), null)
    } catch (err) {
      expect(err).toMatchObject({ name: 'StatusError', code: 400, reason: 'BadRequest' })
    }
  })
})

describe('sameJson', () => {
  it('compares values, not key order', () => {
    expect(sameJson({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true)
    expect(sameJson({ a: 1 }, { a: 1, b: 2 })).toBe(false)
    expect(sameJson([1, 2], [2, 1])).toBe(false)
  })
})
