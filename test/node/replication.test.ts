// The ReplicationController's decisions as tables (create, adopt, release,
// which surplus pod goes first, status), and its rounds on a real object store
// fed by a stand-in Raft log: converging to no writes, and a new leader that
// still has to apply the old one's creates not creating the pods again.
import { describe, expect, it } from 'vitest'
import { prepareCreate } from '../../node/api/prepare.js'
import { ReplicationManager } from '../../node/controllers/replication-controller.js'
import { deletionOrder, planReplication, podBodyFromTemplate, replicationStatus, sameStatus, type PodObject, type RcObject } from '../../node/controllers/replication.js'
import { coreKinds } from '../../node/kinds/cluster.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import { MiniRaft } from './mini-raft.js'

const kinds = coreKinds()
const template = { metadata: { labels: { app: 'web', tier: 'front' } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } }

function rc(replicas: number, extra: Partial<RcObject['spec']> = {}): RcObject {
  return { apiVersion: 'v1', kind: 'ReplicationController', metadata: { name: 'web', namespace: 'default', uid: 'rc-uid', generation: 3 }, spec: { replicas, selector: { app: 'web' }, template, ...extra } }
}

interface PodOptions {
  labels?: Record<string, string>
  /** The controller's uid, null for an orphan. */
  owner?: string | null
  phase?: string
  ready?: string
  node?: string
  created?: string
  restarts?: number
  deleting?: boolean
  namespace?: string
}

function pod(name: string, o: PodOptions = {}): PodObject {
  const owner = o.owner === undefined ? 'rc-uid' : o.owner
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: o.namespace ?? 'default',
      uid: `uid-${name}`,
      resourceVersion: '7',
      labels: o.labels ?? { app: 'web', tier: 'front' },
      creationTimestamp: o.created ?? '2026-01-01T00:00:00Z',
      ...(owner === null ? {} : { ownerReferences: [{ apiVersion: 'v1', kind: 'ReplicationController', name: 'x', uid: owner, controller: true }] }),
      ...(o.deleting === true ? { deletionTimestamp: '2026-01-01T00:00:09Z' } : {}),
    },
    spec: o.node === undefined ? {} : { nodeName: o.node },
    status: {
      phase: o.phase ?? 'Pending',
      ...(o.ready === undefined ? {} : { conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: o.ready }] }),
      ...(o.restarts === undefined ? {} : { containerStatuses: [{ restartCount: o.restarts }] }),
    },
  }
}

const names = (pods: readonly ApiObject[]): string[] => pods.map((p) => p.metadata.name ?? '')

describe('planning replicas', () => {
  it.each([
    { case: 'nothing yet', replicas: 3, pods: [], creates: 3, removes: 0 },
    { case: 'some owned', replicas: 3, pods: [pod('a'), pod('b')], creates: 1, removes: 0 },
    { case: 'exactly enough', replicas: 2, pods: [pod('a'), pod('b')], creates: 0, removes: 0 },
    { case: 'finished and deleting pods do not count', replicas: 3, pods: [pod('a', { phase: 'Succeeded' }), pod('b', { phase: 'Failed' }), pod('c', { deleting: true })], creates: 3, removes: 0 },
    { case: 'other controllers\' pods do not count', replicas: 2, pods: [pod('a', { owner: 'other' })], creates: 2, removes: 0 },
    { case: 'other namespaces do not count', replicas: 1, pods: [pod('a', { namespace: 'elsewhere' })], creates: 1, removes: 0 },
    { case: 'scaled to zero', replicas: 0, pods: [pod('a'), pod('b')], creates: 0, removes: 2 },
    { case: 'surplus', replicas: 1, pods: [pod('a'), pod('b'), pod('c')], creates: 0, removes: 2 },
  ])('$case: creates $creates, deletes $removes', ({ replicas, pods, creates, removes }) => {
    const plan = planReplication(rc(replicas), pods)
    expect(plan.createCount).toBe(creates)
    expect(plan.remove).toHaveLength(removes)
  })

  it('adopts matching orphans (keeping their other owners) and counts them, and leaves the rest alone', () => {
    const extraOwner = { apiVersion: 'v1', kind: 'ConfigMap', name: 'cm', uid: 'cm-uid' }
    const withExtra = pod('kept-owner', { owner: null })
    withExtra.metadata.ownerReferences = [extraOwner]
    const plan = planReplication(rc(4), [pod('orphan', { owner: null }), withExtra, pod('stranger', { owner: null, labels: { app: 'db' } }), pod('dying-orphan', { owner: null, deleting: true }), pod('taken', { owner: 'other' })])
    expect(names(plan.adopt)).toEqual(['orphan', 'kept-owner'])
    const ref = { apiVersion: 'v1', kind: 'ReplicationController', name: 'web', uid: 'rc-uid', controller: true, blockOwnerDeletion: true }
    expect(plan.adopt[0]!.metadata.ownerReferences).toEqual([ref])
    expect(plan.adopt[1]!.metadata.ownerReferences).toEqual([extraOwner, ref])
    expect(plan.adopt[0]!.metadata.resourceVersion).toBe('7')
    expect(plan.createCount).toBe(2)
  })

  it('releases owned pods whose labels stopped matching, and replaces them', () => {
    const plan = planReplication(rc(2), [pod('a'), pod('relabelled', { labels: { app: 'debug' } })])
    expect(names(plan.release)).toEqual(['relabelled'])
    expect(plan.release[0]!.metadata.ownerReferences).toBeUndefined()
    expect(plan.createCount).toBe(1)
    expect(plan.adopt).toEqual([])
  })

  it('deletes in Kubernetes\' ActivePods order: unassigned, Pending, Unknown, not ready, ready briefly, restarting, newest', () => {
    const pods = [
      pod('ready-long', { node: 'n', phase: 'Running', ready: '2026-01-01T00:00:00Z' }),
      pod('unassigned-old', {}),
      pod('running-not-ready', { node: 'n', phase: 'Running' }),
      pod('ready-recent', { node: 'n', phase: 'Running', ready: '2026-01-01T01:00:00Z' }),
      pod('unknown', { node: 'n', phase: 'Unknown' }),
      pod('unassigned-new', { created: '2026-01-02T00:00:00Z' }),
      pod('pending-bound', { node: 'n' }),
      pod('ready-long-restarting', { node: 'n', phase: 'Running', ready: '2026-01-01T00:00:00Z', restarts: 3 }),
    ]
    const order = ['unassigned-new', 'unassigned-old', 'pending-bound', 'unknown', 'running-not-ready', 'ready-recent', 'ready-long-restarting', 'ready-long']
    expect(names([...pods].sort(deletionOrder))).toEqual(order)
    expect(names(planReplication(rc(5), pods).remove)).toEqual(order.slice(0, 3))
  })

  it('neither adopts, releases nor scales for a controller being deleted', () => {
    const deleting = rc(3)
    deleting.metadata.deletionTimestamp = '2026-01-01T00:00:00Z'
    const plan = planReplication(deleting, [pod('orphan', { owner: null }), pod('relabelled', { labels: { app: 'x' } })])
    expect(plan).toMatchObject({ adopt: [], release: [], createCount: 0, remove: [] })
  })

  it('builds replicas from the template with generateName and the controller\'s ownerReference', () => {
    const body = podBodyFromTemplate(rc(1))
    const created = prepareCreate(kinds.byKind('v1', 'Pod')!, body, 'default', 'Strict', '2026-01-01T00:00:00.000Z').object
    expect(created.metadata.name).toMatch(/^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/)
    expect(created.metadata.labels).toEqual({ app: 'web', tier: 'front' })
    expect(created.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'ReplicationController', name: 'web', uid: 'rc-uid', controller: true, blockOwnerDeletion: true }])
    expect((created.spec as { containers: { image: string }[] }).containers[0]!.image).toBe('nginx')
    const long = rc(1)
    long.metadata.name = 'a'.repeat(80)
    expect(String((podBodyFromTemplate(long).metadata as { generateName: string }).generateName)).toHaveLength(58)
  })
})

describe('status', () => {
  const now = Date.parse('2026-01-01T00:01:00Z')

  it('counts owned, matching, active pods; fully labelled, ready and available ones; and the generation seen', () => {
    const pods = [
      pod('ready', { phase: 'Running', ready: '2026-01-01T00:00:00Z' }),
      pod('just-ready', { phase: 'Running', ready: '2026-01-01T00:00:50Z' }),
      pod('partly-labelled', { labels: { app: 'web' } }),
      pod('finished', { phase: 'Succeeded' }),
      pod('orphan', { owner: null }),
      pod('foreign', { owner: 'other' }),
    ]
    expect(replicationStatus(rc(3), pods, now)).toEqual({ replicas: 3, fullyLabeledReplicas: 2, readyReplicas: 2, availableReplicas: 2, observedGeneration: 3 })
    // minReadySeconds: ready for 10 s is not yet available.
    expect(replicationStatus(rc(3, { minReadySeconds: 30 }), pods, now)).toMatchObject({ readyReplicas: 2, availableReplicas: 1 })
  })

  it('leaves zero counts out, as Kubernetes\' JSON does, and compares a missing count as 0', () => {
    const status = replicationStatus(rc(1), [], now)
    expect(status).toEqual({ replicas: 0, observedGeneration: 3 })
    expect(sameStatus({ replicas: 0, readyReplicas: 0, observedGeneration: 3 }, status)).toBe(true)
    expect(sameStatus({ replicas: 0 }, status)).toBe(false)
    expect(sameStatus({ replicas: 1, observedGeneration: 3 }, status)).toBe(false)
  })
})

function make(kind: string, body: Record<string, unknown>, namespace?: string): ApiObject {
  return prepareCreate(kinds.byKind('v1', kind)!, { apiVersion: 'v1', kind, ...body }, namespace, 'Strict', new Date().toISOString()).object
}

function pods(raft: MiniRaft): ApiObject[] {
  return raft.store.list(kinds.byKind('v1', 'Pod')!)
}

describe('rounds on a store', () => {
  it('create the replicas, then the status, then write nothing', async () => {
    const raft = new MiniRaft(kinds)
    raft.apply({ op: 'obj.create', object: make('Namespace', { metadata: { name: 'default' } }) })
    const web = make('ReplicationController', { metadata: { name: 'web' }, spec: { replicas: 3, selector: { app: 'web' }, template }, status: {} }, 'default')
    raft.apply({ op: 'obj.create', object: web })
    const manager = new ReplicationManager(raft.context())
    await manager.round()
    expect(pods(raft)).toHaveLength(3)
    expect(raft.store.get({ apiVersion: 'v1', kind: 'ReplicationController', namespace: 'default', name: 'web' })!.status).toMatchObject({ replicas: 3, observedGeneration: 1 })
    const events = raft.store.list(kinds.byKind('v1', 'Event')!) as (ApiObject & { reason: string; message: string })[]
    expect(events.map((e) => e.reason)).toEqual(['SuccessfulCreate', 'SuccessfulCreate', 'SuccessfulCreate'])
    expect(events.map((e) => e.message).sort()).toEqual(names(pods(raft)).map((n) => `Created pod: ${n}`).sort())
    const settled = raft.entries
    await manager.round()
    await manager.round()
    expect(raft.entries).toBe(settled)
  })

  it('count the pods a previous leader created in an entry this peer has not applied yet, instead of creating more', async () => {
    const raft = new MiniRaft(kinds)
    raft.apply({ op: 'obj.create', object: make('Namespace', { metadata: { name: 'default' } }) })
    const web = make('ReplicationController', { metadata: { name: 'web' }, spec: { replicas: 5, selector: { app: 'web' }, template } }, 'default')
    raft.apply({ op: 'obj.create', object: web })
    // The old leader's round: five replicas, committed in one entry the new leader has yet to apply.
    const oldLeaderPods = Array.from({ length: 5 }, () => make('Pod', podBodyFromTemplate(web as RcObject), 'default'))
    raft.committedUnapplied = [{ op: 'obj.batch', commands: oldLeaderPods.map((object) => ({ op: 'obj.create' as const, object })) }]
    await new ReplicationManager(raft.context()).round()
    expect(names(pods(raft)).sort()).toEqual(names(oldLeaderPods).sort())
    const events = raft.store.list(kinds.byKind('v1', 'Event')!) as (ApiObject & { reason: string })[]
    expect(events.filter((e) => e.reason === 'SuccessfulCreate')).toEqual([])
  })
})
