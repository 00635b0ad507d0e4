// The scheduler as a controller: on an object store (its writes counted) and on a real peer, with shoal cordon, uncordon and drain.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Submitter, SubmitResult } from '../../node/api/submit.js'
import { apiRequest, resolveTarget, type ApiTarget } from '../../node/cli/client.js'
import { cordon, drain, uncordon } from '../../node/cli/node-commands.js'
import { EventRecorder } from '../../node/control/events.js'
import { coreKinds } from '../../node/kinds/cluster.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import { planBindings } from '../../node/scheduler/plan.js'
import { SchedulerPodIndex } from '../../node/scheduler/pod-index.js'
import { Scheduler, bindingsPerRoundMax } from '../../node/scheduler/scheduler.js'
import type { StoreCommand } from '../../node/store/commands.js'
import { ObjectStore } from '../../node/store/object-store.js'
import type { WatchEvent } from '../../node/store/watch.js'
import { Peer } from '../../node/peer.js'
import { startLocalPeer, type LocalPeer } from './local-peer.js'
import { until } from './process-cluster.js'
import { perNode, simNode, simPod } from './scheduler-fixtures.js'

/** Applies commands straight to an object store, one entry per submit (no Raft): the controller's writes, countable. */
class StoreSubmitter implements Submitter {
  index = 1000
  readonly entries: StoreCommand[] = []

  constructor(readonly store: ObjectStore) {}

  async submit(command: StoreCommand): Promise<SubmitResult> {
    const index = ++this.index
    this.entries.push(command)
    const events: WatchEvent[] = []
    this.store.apply(index, command, [], events)
    this.store.appliedIndex = index
    // As the peer applies an entry: the changes go to the watches in the same turn.
    for (const e of events) this.store.watches.publish(e)
    return { index, outcomes: this.store.outcomeOf(index)! }
  }

  /** Entries that bound pods, with how many pods each. */
  bindingEntries(): number[] {
    return this.entries.filter((e) => e.op === 'obj.batch' && e.commands[0]?.op === 'obj.update' && e.commands[0].subresource === undefined && e.commands[0].object.kind === 'Pod').map((e) => (e.op === 'obj.batch' ? e.commands.length : 0))
  }
}

function storeWith(objects: ApiObject[]): { store: ObjectStore; submitter: StoreSubmitter; scheduler: Scheduler } {
  const store = new ObjectStore(coreKinds())
  const submitter = new StoreSubmitter(store)
  for (const o of [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }, ...objects]) {
    const { resourceVersion: _, ...metadata } = o.metadata
    void submitter.submit({ op: 'obj.create', object: { ...o, metadata } })
  }
  submitter.entries.length = 0
  const nowIso = (): string => new Date().toISOString()
  const events = new EventRecorder({ store, submitter, source: { component: 'test', host: 'test' }, nowIso })
  return { store, submitter, scheduler: new Scheduler({ store, kinds: store.kinds, submitter, events, nowMs: () => Date.now(), nowIso }) }
}

const eventsOf = (store: ObjectStore, reason: string) => store.list(store.kinds.byKind('v1', 'Event')!).filter((e) => (e as ApiObject & { reason: string }).reason === reason) as (ApiObject & { message: string; count: number })[]

describe('the scheduler controller on an object store', () => {
  it('binds in entries of at most 256 pods, keeps the status, and marks the pods scheduled', async () => {
    const nodes = Array.from({ length: 3 }, (_, k) => simNode(`n${k}`, { pods: '300' }))
    const { store, submitter, scheduler } = storeWith([...nodes, ...Array.from({ length: 600 }, (_, k) => simPod(`p${String(k).padStart(3, '0')}`, { owner: 'web' }))])
    await scheduler.round()
    expect(submitter.bindingEntries()).toEqual([256, 256, 88])
    const pods = store.list(store.kinds.byKind('v1', 'Pod')!) as (ApiObject & { spec: { nodeName?: string }; status: { phase: string; conditions?: { type: string; status: string }[] } })[]
    expect(perNode(pods.map((p) => ({ nodeName: p.spec.nodeName ?? '' })))).toEqual({ n0: 200, n1: 200, n2: 200 })
    for (const p of pods) {
      expect(p.status.phase).toBe('Pending')
      expect(p.status.conditions).toContainEqual(expect.objectContaining({ type: 'PodScheduled', status: 'True' }))
    }
    expect(eventsOf(store, 'Scheduled').map((e) => e.message)).toContain('Successfully assigned default/p000 to n0')
    // Nothing left to do: the next round writes nothing.
    submitter.entries.length = 0
    await scheduler.round()
    expect(submitter.entries).toEqual([])
  })

  it('does not bind a pod that changed since it was read', async () => {
    const { store, submitter, scheduler } = storeWith([simNode('n0'), simPod('p')])
    const ref = { apiVersion: 'v1', kind: 'Pod', namespace: 'default', name: 'p' }
    const read = store.get(ref)!
    // Someone else binds it first (a late entry from an earlier leader) before the scheduler's view has it: it plans on the old version.
    ;(scheduler as unknown as { pods: SchedulerPodIndex }).pods.start()
    const publish = store.watches.publish.bind(store.watches)
    store.watches.publish = () => {}
    await submitter.submit({ op: 'obj.update', object: { ...read, spec: { ...(read.spec as object), nodeName: 'elsewhere' } } })
    store.watches.publish = publish
    await scheduler.round()
    expect((store.get(ref)!.spec as { nodeName: string }).nodeName).toBe('elsewhere')
    expect(eventsOf(store, 'Scheduled')).toEqual([])
  })

  it('records FailedScheduling once, and again only when the reason changes', async () => {
    let nowMs = Date.parse('2025-01-01T00:00:00Z')
    const { store, submitter, scheduler } = storeWith([simNode('small', { memory: '1Gi' }), simPod('big', { memory: '2Gi' })])
    ;(scheduler as unknown as { ctx: { nowMs: () => number } }).ctx.nowMs = () => nowMs
    await scheduler.round()
    expect(eventsOf(store, 'FailedScheduling').map((e) => [e.message, e.count])).toEqual([['0/1 nodes are available: 1 Insufficient memory.', 1]])
    submitter.entries.length = 0
    for (let k = 0; k < 5; k++) await scheduler.round()
    expect(submitter.entries).toEqual([])
    nowMs += 61_000
    await scheduler.round()
    expect(eventsOf(store, 'FailedScheduling').map((e) => e.count)).toEqual([2])
    await submitter.submit({ op: 'obj.create', object: simNode('cordoned', { unschedulable: true, memory: '4Gi' }) })
    await scheduler.round()
    expect(eventsOf(store, 'FailedScheduling').map((e) => e.message).sort()).toEqual(['0/1 nodes are available: 1 Insufficient memory.', '0/2 nodes are available: 1 Insufficient memory, 1 node(s) were unschedulable.'])
  })

  it('says PodScheduled=False, Unschedulable, with the FailedScheduling message, written only when the message changes', async () => {
    const { store, submitter, scheduler } = storeWith([simNode('small', { memory: '1Gi' }), simPod('big', { memory: '2Gi' })])
    const scheduledCondition = () => ((store.get({ apiVersion: 'v1', kind: 'Pod', namespace: 'default', name: 'big' })!.status as { conditions?: Record<string, unknown>[] }).conditions ?? []).filter((c) => c.type === 'PodScheduled')
    await scheduler.round()
    const first = scheduledCondition()
    expect(first).toEqual([expect.objectContaining({ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient memory.' })])
    submitter.entries.length = 0
    for (let k = 0; k < 5; k++) await scheduler.round()
    expect(submitter.entries).toEqual([])
    await submitter.submit({ op: 'obj.create', object: simNode('cordoned', { unschedulable: true, memory: '4Gi' }) })
    await scheduler.round()
    expect(scheduledCondition()).toEqual([
      expect.objectContaining({ status: 'False', reason: 'Unschedulable', message: '0/2 nodes are available: 1 Insufficient memory, 1 node(s) were unschedulable.', lastTransitionTime: first[0]!.lastTransitionTime }),
    ])
    await submitter.submit({ op: 'obj.create', object: simNode('roomy', { memory: '4Gi' }) })
    await scheduler.round()
    expect(scheduledCondition()).toEqual([expect.objectContaining({ type: 'PodScheduled', status: 'True' })])
    expect(scheduledCondition()[0]).not.toHaveProperty('reason')
  })

  it('plans a round of 10,000 pending pods over 100 nodes quickly (time printed, not asserted)', async () => {
    const nodes = Array.from({ length: 100 }, (_, k) => simNode(`node-${String(k).padStart(3, '0')}`, { cpu: '64', memory: '256Gi', pods: '110' }))
    const pods = Array.from({ length: 10_000 }, (_, k) => simPod(`big-${String(k).padStart(5, '0')}`, { owner: 'big', cpu: '10m', memory: '64Mi' }))
    const { store, submitter, scheduler } = storeWith([...nodes, ...pods])
    let started = performance.now()
    planBindings(store.list(store.kinds.byKind('v1', 'Node')!), [], store.list(store.kinds.byKind('v1', 'Pod')!))
    const planMs = performance.now() - started
    started = performance.now()
    await scheduler.round()
    const bindMs = performance.now() - started
    const boundAfter = (): number => store.list(store.kinds.byKind('v1', 'Pod')!).filter((p) => (p.spec as { nodeName?: string }).nodeName !== undefined).length
    // A round binds at most bindingsPerRoundMax; the next ones take the rest.
    expect(boundAfter()).toBe(bindingsPerRoundMax)
    for (let round = 1; round < 10_000 / bindingsPerRoundMax; round++) await scheduler.round()
    const podList = store.list(store.kinds.byKind('v1', 'Pod')!)
    expect(podList.filter((p) => (p.spec as { nodeName?: string }).nodeName !== undefined)).toHaveLength(10_000)
    expect(new Set(Object.values(perNode(podList.map((p) => ({ nodeName: (p.spec as { nodeName: string }).nodeName })))))).toEqual(new Set([100]))
    expect(submitter.bindingEntries()).toHaveLength(40)
    // Every binding is told: none of the 10,000 Scheduled events is dropped for being too many at once.
    expect(eventsOf(store, 'Scheduled')).toHaveLength(10_000)

    // The same pods, none of which fits: the path taken on every store change while they wait.
    const waiting = storeWith([...nodes, ...pods.map((p) => ({ ...p, spec: { ...(p.spec as object), nodeSelector: { pool: 'none' } } }))])
    await waiting.scheduler.round()
    // The first round set PodScheduled=False on each; the rounds after it write nothing.
    waiting.submitter.entries.length = 0
    started = performance.now()
    await waiting.scheduler.round()
    const waitMs = performance.now() - started
    expect(waiting.submitter.entries.filter((e) => e.op !== 'obj.create')).toEqual([])
    console.log(
      `scheduler round over 10,000 pending pods and 100 nodes: plan ${planMs.toFixed(0)} ms; whole round ${bindMs.toFixed(0)} ms ` +
        `(binding ${bindingsPerRoundMax}, with this store applying their binding and status entries and Scheduled events in-line); ${waitMs.toFixed(0)} ms when none fits (no writes)`,
    )
  })
})

describe('the scheduler on a real peer, and shoal cordon, uncordon and drain', () => {
  let peer: Peer
  let local: LocalPeer | undefined
  let dataDir = ''
  let target: ApiTarget
  const waitMs = 15_000

  beforeAll(async () => {
    local = await startLocalPeer('sched-peer')
    peer = local.peer
    dataDir = local.dataDir
    target = await resolveTarget({ 'data-dir': dataDir })
    await until(() => peer.state.store.get({ apiVersion: 'v1', kind: 'Node', name: 'sched-peer' }), 30_000, "the peer's own Node")
  })

  afterAll(async () => {
    await local?.stop()
  })

  async function api<T = ApiObject>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await apiRequest(target, method, path, { timeoutMs: 10_000, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
    if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${response.text}`)
    return JSON.parse(response.text) as T
  }

  /** A simulated Node, as a test agent would report one: created, then its status (capacity, Ready) written. */
  async function addNode(name: string, memory: string): Promise<void> {
    const created = await api('POST', '/api/v1/nodes', { metadata: { name, labels: { pool: 'sim', name } } })
    const allocatable = { cpu: '4', memory, pods: '20' }
    await api('PUT', `/api/v1/nodes/${name}/status`, { ...created, status: { capacity: allocatable, allocatable, conditions: [{ type: 'Ready', status: 'True', reason: 'TestAgentReady' }] } })
  }

  async function addPod(name: string, spec: Record<string, unknown>, ownerReferences?: unknown[]): Promise<ApiObject> {
    return api('POST', '/api/v1/namespaces/default/pods', { metadata: { name, ...(ownerReferences === undefined ? {} : { ownerReferences }) }, spec: { containers: [{ name: 'c', image: 'nginx' }], ...spec } })
  }

  const pod = (name: string) => peer.state.store.get({ apiVersion: 'v1', kind: 'Pod', namespace: 'default', name }) as (ApiObject & { spec: { nodeName?: string }; status: { phase?: string; conditions?: { type: string; status: string }[] } }) | undefined
  const eventsFor = (uid: string | undefined, reason: string) =>
    eventsOf(peer.state.store, reason).filter((e) => (e as unknown as { involvedObject: { uid?: string } }).involvedObject.uid === uid)

  /** Run a CLI command in this process, with what it prints. */
  async function shoal(run: (args: string[]) => Promise<number>, ...args: string[]): Promise<{ code: number | string; stdout: string; stderr: string }> {
    let stdout = ''
    let stderr = ''
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true))
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true))
    try {
      return { code: await run(['--data-dir', dataDir, ...args]), stdout, stderr }
    } catch (e) {
      return { code: `${(e as Error).name}: ${(e as Error).message}`, stdout, stderr }
    } finally {
      out.mockRestore()
      err.mockRestore()
    }
  }

  it('leaves a pod that fits nowhere Pending with one FailedScheduling, and binds it once a node has room', async () => {
    await addNode('sim-small', '1Gi')
    const hungry = await addPod('hungry', { nodeSelector: { pool: 'sim' }, containers: [{ name: 'c', image: 'nginx', resources: { requests: { memory: '2Gi' } } }] })
    const expected = "0/2 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node affinity/selector."
    await until(() => eventsFor(hungry.metadata.uid, 'FailedScheduling').length > 0, waitMs, 'a FailedScheduling event')
    // Plenty of rounds: every write below pokes the scheduler, and it also runs every second.
    for (let k = 0; k < 5; k++) await addPod(`filler-${k}`, {})
    await until(() => [0, 1, 2, 3, 4].every((k) => (pod(`filler-${k}`)?.spec.nodeName ?? '') !== ''), waitMs, 'the fillers to be bound')
    await new Promise((r) => setTimeout(r, 1500))
    expect(eventsFor(hungry.metadata.uid, 'FailedScheduling').map((e) => [e.type, e.message, e.count, (e as unknown as { source: { component: string } }).source.component])).toEqual([
      ['Warning', expected, 1, 'default-scheduler'],
    ])
    expect(pod('hungry')!.spec.nodeName).toBeUndefined()

    await addNode('sim-big', '8Gi')
    await until(() => pod('hungry')?.spec.nodeName === 'sim-big' && pod('hungry')!.status.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'True'), waitMs, 'hungry bound to sim-big')
    expect(pod('hungry')!.status.phase).toBe('Pending')
    await until(() => eventsFor(hungry.metadata.uid, 'Scheduled').length > 0, waitMs, 'a Scheduled event')
    expect(eventsFor(hungry.metadata.uid, 'Scheduled').map((e) => [e.type, e.message])).toEqual([['Normal', 'Successfully assigned default/hungry to sim-big']])
  })

  it('cordons, uncordons and drains a node as kubectl does', async () => {
    const owner = { apiVersion: 'v1', kind: 'ReplicationController', name: 'gone', uid: 'uid-of-a-controller', controller: true }
    await addPod('owned', { nodeSelector: { name: 'sim-big' } }, [owner])
    await until(() => pod('owned')?.spec.nodeName === 'sim-big', waitMs, 'owned bound to sim-big')

    expect(await shoal(cordon, 'sim-big')).toEqual({ code: 0, stdout: 'node/sim-big cordoned\n', stderr: '' })
    expect(await shoal(cordon, 'node/sim-big')).toEqual({ code: 0, stdout: 'node/sim-big already cordoned\n', stderr: '' })
    const late = await addPod('late', { nodeSelector: { name: 'sim-big' } })
    const refusal = "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match Pod's node affinity/selector."
    await until(() => eventsFor(late.metadata.uid, 'FailedScheduling').some((e) => e.message === refusal), waitMs, 'late refused by the cordon')

    expect(await shoal(uncordon, 'sim-big')).toEqual({ code: 0, stdout: 'node/sim-big uncordoned\n', stderr: '' })
    await until(() => pod('late')?.spec.nodeName === 'sim-big', waitMs, 'late bound once uncordoned')

    const refused = await shoal(drain, 'sim-big')
    expect(refused.code).toBe('DrainRefusedError: cannot delete Pods that declare no controller (use --force to override): default/hungry, default/late')
    expect(refused.stdout).toBe('node/sim-big cordoned\n')
    expect(pod('owned')).toBeDefined()

    const forced = await shoal(drain, 'sim-big', '--force')
    expect(forced.code).toBe(0)
    expect(forced.stderr).toBe('Warning: deleting Pods that declare no controller: default/hungry, default/late\n')
    expect(forced.stdout.split('\n').filter(Boolean).sort()).toEqual(
      ['node/sim-big already cordoned', 'evicting pod default/hungry', 'evicting pod default/late', 'evicting pod default/owned', 'pod/hungry evicted', 'pod/late evicted', 'pod/owned evicted', 'node/sim-big drained'].sort(),
    )
    expect(forced.stdout.split('\n').at(-2)).toBe('node/sim-big drained')
    expect(['hungry', 'late', 'owned'].map(pod)).toEqual([undefined, undefined, undefined])
    expect((peer.state.store.get({ apiVersion: 'v1', kind: 'Node', name: 'sim-big' })!.spec as { unschedulable?: boolean }).unschedulable).toBe(true)
  })
})
