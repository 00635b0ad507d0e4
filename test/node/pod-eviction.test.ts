// Pod eviction and Node events on a real peer (in this process, a single
// voter) whose LeaderLoop runs the controllers, with simulated Nodes (no
// shoal.io/peer-id label, so node lifecycle leaves their conditions to us).
// The eviction clock is the Ready condition's lastTransitionTime, so a test
// can put a Node "not ready since 3 s ago" and watch the rest happen.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prepareCreate } from '../../node/api/prepare.js'
import { submit } from '../../node/api/submit.js'
import { EventRecorder } from '../../node/control/events.js'
import { NodeReadyEvents } from '../../node/controllers/node-events.js'
import { evictionAfterMs } from '../../node/controllers/pod-eviction.js'
import { eventKind, nodeKind } from '../../node/kinds/cluster.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import { podKind } from '../../node/kinds/workloads.js'
import { isoSeconds } from '../../node/nodes/readiness.js'
import { Peer } from '../../node/peer.js'
import { refOf } from '../../node/store/commands.js'
import { startLocalPeer, type LocalPeer } from './local-peer.js'
import { until } from './process-cluster.js'

let peer: Peer
let local: LocalPeer | undefined

beforeAll(async () => {
  local = await startLocalPeer('evictor')
  peer = local.peer
})

afterAll(async () => {
  await local?.stop()
})

async function write(command: Parameters<typeof submit>[1]): Promise<ApiObject> {
  const outcome = (await submit(peer.submitter, command)).outcomes[0]!
  if (!outcome.ok) throw new Error(outcome.failure.message)
  return outcome.object!
}

function readyStatus(status: string, transitionMs: number): Record<string, unknown> {
  const at = isoSeconds(transitionMs)
  return { capacity: { cpu: '4', memory: '8Gi', pods: '110' }, allocatable: { cpu: '4', memory: '8Gi', pods: '110' }, conditions: [{ type: 'Ready', status, reason: 'Simulated', message: 'simulated', lastHeartbeatTime: at, lastTransitionTime: at }] }
}

async function createNode(name: string, status: string, transitionMs: number, createdAtMs = Date.now()): Promise<ApiObject> {
  return write({ op: 'obj.create', object: prepareCreate(nodeKind, { metadata: { name }, status: readyStatus(status, transitionMs) }, undefined, 'Strict', new Date(createdAtMs).toISOString()).object })
}

async function setReady(name: string, status: string, transitionMs: number): Promise<void> {
  const node = peer.state.store.get({ apiVersion: 'v1', kind: 'Node', name })!
  await write({ op: 'obj.update', object: { ...node, status: readyStatus(status, transitionMs) }, subresource: 'status' })
}

async function createPod(name: string, nodeName: string, extra: { phase?: string; tolerations?: unknown[] } = {}): Promise<ApiObject> {
  const body = { metadata: { name }, spec: { nodeName, containers: [{ name: 'c', image: 'nginx' }], ...(extra.tolerations === undefined ? {} : { tolerations: extra.tolerations }) }, ...(extra.phase === undefined ? {} : { status: { phase: extra.phase } }) }
  return write({ op: 'obj.create', object: prepareCreate(podKind, body, 'default', 'Strict', new Date().toISOString()).object })
}

function podExists(name: string): boolean {
  return peer.state.store.get({ apiVersion: 'v1', kind: 'Pod', namespace: 'default', name }) !== undefined
}

type EventJson = ApiObject & { involvedObject: { kind: string; name: string }; type: string; reason: string; message: string; count: number }

function eventsOf(kind: string, name: string): EventJson[] {
  return (peer.state.store.list(eventKind) as EventJson[]).filter((e) => e.involvedObject.kind === kind && e.involvedObject.name === name)
}

describe('evictionAfterMs (which pods wait, and how long)', () => {
  const unreachable = 'node.kubernetes.io/unreachable'
  it.each([
    ['no tolerations', undefined, 5000],
    ['a toleration of another taint', [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' }], 5000],
    ['a NoSchedule toleration', [{ key: unreachable, operator: 'Exists', effect: 'NoSchedule' }], 5000],
    ['tolerating it for ever', [{ key: unreachable, operator: 'Exists', effect: 'NoExecute' }], null],
    ['tolerating everything', [{ operator: 'Exists' }], null],
    ['tolerating it for 30 s and 60 s (the shorter wins)', [{ key: unreachable, operator: 'Exists', tolerationSeconds: 60 }, { key: unreachable, operator: 'Equal', effect: 'NoExecute', tolerationSeconds: 30 }], 30_000],
    ['tolerating it for 0 s', [{ key: unreachable, operator: 'Exists', tolerationSeconds: 0 }], 0],
    ['an Equal toleration with a value the taint does not have', [{ key: unreachable, operator: 'Equal', value: 'x', effect: 'NoExecute' }], 5000],
  ])('%s', (_, tolerations, expected) => {
    expect(evictionAfterMs(tolerations, unreachable, 5000)).toBe(expected)
  })
})

describe('pod eviction', () => {
  it('deletes the unfinished pods of a Node not ready for 5 s, measured from its lastTransitionTime, and records Evicted', async () => {
    const transitionMs = Math.floor(Date.now() / 1000) * 1000 - 3000
    const deadlineMs = transitionMs + 5000
    await createNode('sim-ok', 'True', transitionMs)
    await createNode('sim-lost', 'Unknown', transitionMs)
    const keep = await Promise.all([createPod('on-ok', 'sim-ok'), createPod('lost-done', 'sim-lost', { phase: 'Succeeded' }), createPod('lost-tolerant', 'sim-lost', { tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' }] })])
    await Promise.all([createPod('lost-1', 'sim-lost'), createPod('lost-2', 'sim-lost')])
    await new Promise((r) => setTimeout(r, 300))
    // Not ready for about 3 s: nothing yet.
    expect(Date.now()).toBeLessThan(deadlineMs)
    expect(podExists('lost-1') && podExists('lost-2')).toBe(true)

    await until(() => !podExists('lost-1') && !podExists('lost-2'), 10_000, 'the lost node\'s pods to be deleted')
    const evictedAtMs = Date.now()
    expect(evictedAtMs).toBeGreaterThanOrEqual(deadlineMs)
    // The controller asks for a round at the deadline (rounds otherwise come once a second): on time, not up to a second late.
    expect(evictedAtMs - deadlineMs).toBeLessThan(250)
    for (const pod of keep) expect(podExists(pod.metadata.name!)).toBe(true)

    await until(() => eventsOf('Pod', 'lost-2').length > 0 || undefined, 5000, 'the Evicted event')
    expect(eventsOf('Pod', 'lost-1')).toMatchObject([{ type: 'Normal', reason: 'Evicted', message: 'Marking for deletion Pod default/lost-1: node sim-lost not ready for 5s', count: 1 }])
    expect(eventsOf('Pod', 'lost-tolerant')).toEqual([])

    // Once done, the controller writes nothing more: the store stays still.
    await new Promise((r) => setTimeout(r, 300))
    const applied = peer.state.appliedIndex
    await new Promise((r) => setTimeout(r, 2500))
    expect(peer.state.appliedIndex).toBe(applied)
  })

  it('continues an old clock at once (a new leader does not start the timeout over) and deletes pods bound to a Node that is gone', async () => {
    await createNode('sim-old', 'False', Date.now() - 600_000)
    await createPod('old-1', 'sim-old')
    await createPod('ghost-1', 'sim-ghost')
    const createdAtMs = Date.now()
    await until(() => !podExists('old-1'), 3000, 'the pod of a node not ready for 10 minutes to go')
    expect(Date.now() - createdAtMs).toBeLessThan(2500)
    await until(() => eventsOf('Pod', 'old-1').length > 0 || undefined, 5000, 'its Evicted event')
    expect(eventsOf('Pod', 'old-1')[0]!.message).toBe('Marking for deletion Pod default/old-1: node sim-old not ready for 5s')

    // A Node that does not exist: this leader's own clock, 5 s, checked every 2 s.
    expect(podExists('ghost-1')).toBe(true)
    await until(() => !podExists('ghost-1'), 12_000, 'the pod bound to a missing node to go')
    expect(Date.now() - createdAtMs).toBeGreaterThanOrEqual(5000)
    await until(() => eventsOf('Pod', 'ghost-1').length > 0 || undefined, 5000, 'its Evicted event')
    expect(eventsOf('Pod', 'ghost-1')[0]!.message).toBe('Marking for deletion Pod default/ghost-1: node sim-ghost no longer exists')
  })
})

describe('Node events', () => {
  it('records NodeNotReady and NodeReady once per change, and a leader with a stale memory does not record a change twice', async () => {
    const recorder = new EventRecorder({ store: peer.state.store, submitter: peer.submitter, source: { component: 'test', host: 'test' }, nowIso: () => new Date().toISOString() })
    let skewMs = 0 // this controller's clock jumps ahead: as if it had stopped leading for a while
    const stale = new NodeReadyEvents({ store: peer.state.store, kinds: peer.state.store.kinds, submitter: peer.submitter, events: recorder, nowMs: () => Date.now() + skewMs, nowIso: () => new Date().toISOString() })
    await createNode('sim-flap', 'True', Date.now())
    await stale.round() // it saw the node Ready, then stops leading (no more rounds) while the peer's own loop goes on
    await new Promise((r) => setTimeout(r, 200))
    expect(eventsOf('Node', 'sim-flap')).toEqual([])

    await setReady('sim-flap', 'Unknown', Date.now())
    await until(() => eventsOf('Node', 'sim-flap').length === 1 || undefined, 3000, 'NodeNotReady')
    expect(eventsOf('Node', 'sim-flap')).toMatchObject([{ type: 'Normal', reason: 'NodeNotReady', message: 'Node sim-flap status is now: NodeNotReady', count: 1 }])
    // From one kind of not ready to another: no new event.
    await setReady('sim-flap', 'False', Date.now())
    // The stale controller, leading again after a gap, sees True -> False, but the Event for it is already there.
    skewMs = 5000
    await stale.round()
    await new Promise((r) => setTimeout(r, 500))
    expect(eventsOf('Node', 'sim-flap')).toMatchObject([{ reason: 'NodeNotReady', count: 1 }])

    await new Promise((r) => setTimeout(r, 1000)) // a later second, so the next transition's time differs from the event's
    await setReady('sim-flap', 'True', Date.now())
    await until(() => eventsOf('Node', 'sim-flap').length === 2 || undefined, 3000, 'NodeReady')
    expect(eventsOf('Node', 'sim-flap').find((e) => e.reason === 'NodeReady')).toMatchObject({ type: 'Normal', message: 'Node sim-flap status is now: NodeReady', count: 1 })

    // Not ready again: the same Event counts up.
    await new Promise((r) => setTimeout(r, 1000))
    await setReady('sim-flap', 'Unknown', Date.now())
    await until(() => eventsOf('Node', 'sim-flap').find((e) => e.reason === 'NodeNotReady')?.count === 2 || undefined, 3000, 'NodeNotReady x2')
    await new Promise((r) => setTimeout(r, 1000))
    expect(eventsOf('Node', 'sim-flap').map((e) => [e.reason, e.count]).sort()).toEqual([['NodeNotReady', 2], ['NodeReady', 1]])
    await write({ op: 'obj.delete', ref: refOf(peer.state.store.get({ apiVersion: 'v1', kind: 'Node', name: 'sim-flap' })!), propagation: 'Background' })
  })

  it('a leader seeing a Node for the first time tells only of a change of the last seconds that nobody told of', async () => {
    // Created not ready: no change, no event (sim-lost and sim-old of the eviction tests were created so).
    expect(eventsOf('Node', 'sim-lost')).toEqual([])
    expect(eventsOf('Node', 'sim-old')).toEqual([])
    // Not ready since after its creation, as when the old leader wrote the change and died: the peer's
    // loop sees this Node for the first time and tells; a second fresh leader does not tell again.
    await createNode('sim-orphaned', 'Unknown', Date.now(), Date.now() - 5000)
    await until(() => eventsOf('Node', 'sim-orphaned').length === 1 || undefined, 3000, 'NodeNotReady of a change nobody told of')
    const recorder = new EventRecorder({ store: peer.state.store, submitter: peer.submitter, source: { component: 'test', host: 'test' }, nowIso: () => new Date().toISOString() })
    await new NodeReadyEvents({ store: peer.state.store, kinds: peer.state.store.kinds, submitter: peer.submitter, events: recorder, nowMs: () => Date.now(), nowIso: () => new Date().toISOString() }).round()
    await new Promise((r) => setTimeout(r, 500))
    expect(eventsOf('Node', 'sim-orphaned')).toMatchObject([{ reason: 'NodeNotReady', message: 'Node sim-orphaned status is now: NodeNotReady', count: 1 }])
  })
})
