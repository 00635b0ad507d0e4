// apps/v1 ReplicaSet: what the API accepts (a set-based selector that is given,
// selects the template's labels and never changes), the controller's decisions
// with set-based selectors (adopt, release, ownerReferences to apps/v1), its
// status with minReadySeconds and the round it asks for when a pod becomes
// available, and its rounds on a store next to a ReplicationController.
import { describe, expect, it } from 'vitest'
import { prepareCreate, prepareUpdate } from '../../node/api/prepare.js'
import type { StatusError } from '../../node/api/status.js'
import { scaleOf } from '../../node/api/write.js'
import { ReplicationManager, replicaSets } from '../../node/controllers/replication-controller.js'
import { nextAvailableAtMs, planReplication, podBodyFromTemplate, replicationStatus, type PodObject, type RcObject } from '../../node/controllers/replication.js'
import { coreKinds } from '../../node/kinds/cluster.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import { MiniRaft } from './mini-raft.js'

const kinds = coreKinds()
const rsKind = kinds.byKind('apps/v1', 'ReplicaSet')!
const nowIso = '2026-01-01T00:00:00.000Z'
const containers = [{ name: 'c', image: 'nginx' }]

function rsBody(spec: Record<string, unknown>, name = 'web'): Record<string, unknown> {
  return { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name }, spec: { replicas: 2, template: { metadata: { labels: { app: 'web', track: 'stable' } }, spec: { containers } }, ...spec } }
}

function refusal(body: Record<string, unknown>): StatusError {
  try {
    prepareCreate(rsKind, body, 'default', 'Strict', nowIso)
  } catch (err) {
    return err as StatusError
  }
  throw new Error('the ReplicaSet was accepted')
}

describe('the ReplicaSet kind', () => {
  it('is apps/v1, rs for short, in the `all` category, scalable', () => {
    expect(kinds.resolve('rs')).toBe(rsKind)
    expect(kinds.byResource('apps', 'v1', 'replicasets')).toBe(rsKind)
    expect(rsKind.categories).toEqual(['all'])
    expect(rsKind.subresources.scale).toBeDefined()
  })

  it('accepts a set-based selector that selects the template, and defaults only replicas and the pod spec', () => {
    const selector = { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'track', operator: 'In', values: ['stable', 'canary'] }, { key: 'legacy', operator: 'DoesNotExist' }] }
    const { object } = prepareCreate(rsKind, { ...rsBody({ selector }), spec: { selector, template: (rsBody({}).spec as { template: unknown }).template } }, 'default', 'Strict', nowIso)
    expect(object.spec).toMatchObject({ replicas: 1, selector, template: { spec: { restartPolicy: 'Always' } } })
    expect(object.metadata.labels).toBeUndefined()
    expect(object.status).toEqual({ replicas: 0 })
  })

  it('refuses a selector that does not select the template\'s labels with 422, as Kubernetes words it', () => {
    const err = refusal(rsBody({ selector: { matchLabels: { app: 'db' } } }))
    expect(err.code).toBe(422)
    expect(err.message).toBe('ReplicaSet.apps "web" is invalid: spec.template.metadata.labels: Invalid value: {"app":"web","track":"stable"}: `selector` does not match template `labels`')
    expect(refusal(rsBody({ selector: { matchExpressions: [{ key: 'track', operator: 'NotIn', values: ['stable'] }] } })).code).toBe(422)
  })

  it('refuses a missing or empty selector, bad operators and values given to Exists', () => {
    expect(refusal(rsBody({})).message).toContain('spec.selector: Required value')
    expect(refusal(rsBody({ selector: {} })).message).toContain('spec.selector: Invalid value: {}: empty selector is invalid for deployment')
    expect(refusal(rsBody({ selector: { matchExpressions: [{ key: 'app', operator: 'Equals', values: ['web'] }] } })).message).toContain('spec.selector.matchExpressions[0].operator: Invalid value: "Equals": not a valid selector operator')
    expect(refusal(rsBody({ selector: { matchExpressions: [{ key: 'app', operator: 'Exists', values: ['web'] }] } })).message).toContain('spec.selector.matchExpressions[0].values: Forbidden')
    expect(refusal(rsBody({ selector: { matchExpressions: [{ key: 'app', operator: 'In' }] } })).message).toContain("spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'")
    const never = rsBody({ selector: { matchLabels: { app: 'web' } } })
    ;(never.spec as { template: { spec: Record<string, unknown> } }).template.spec.restartPolicy = 'Never'
    expect(refusal(never).message).toContain('spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"')
  })

  it('keeps its selector: an update that changes it is refused, one that keeps it goes through', () => {
    const { object } = prepareCreate(rsKind, rsBody({ selector: { matchLabels: { app: 'web' } } }), 'default', 'Strict', nowIso)
    const changed = structuredClone(object) as ApiObject & { spec: { selector: unknown; replicas: number } }
    changed.spec.selector = { matchLabels: { app: 'web', track: 'stable' } }
    expect(() => prepareUpdate(rsKind, changed, object, 'Strict')).toThrow(/spec\.selector: Invalid value: .*field is immutable/)
    const scaled = structuredClone(object) as ApiObject & { spec: { replicas: number } }
    scaled.spec.replicas = 7
    expect(prepareUpdate(rsKind, scaled, object, 'Strict').object.spec).toMatchObject({ replicas: 7 })
  })

  it('shows its selector in canonical form in the Scale', () => {
    const { object } = prepareCreate(rsKind, rsBody({ selector: { matchLabels: { track: 'stable', app: 'web' }, matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['qa', 'dev'] }] } }), 'default', 'Strict', nowIso)
    expect(scaleOf(rsKind, object)).toMatchObject({ kind: 'Scale', apiVersion: 'autoscaling/v1', spec: { replicas: 2 }, status: { replicas: 0, selector: 'app=web,env notin (dev,qa),track=stable' } })
  })
})

const template = { metadata: { labels: { app: 'web', track: 'stable' } }, spec: { containers } }

function rs(replicas: number, extra: Partial<NonNullable<RcObject['spec']>> = {}): RcObject {
  const selector = { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'track', operator: 'In', values: ['stable', 'canary'] }] }
  return { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'web', namespace: 'default', uid: 'rs-uid', generation: 2 }, spec: { replicas, selector, template, ...extra } }
}

function pod(name: string, labels: Record<string, string>, owner: string | null = 'rs-uid', ready?: string): PodObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, resourceVersion: '5', labels, ...(owner === null ? {} : { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: owner, controller: true }] }) },
    spec: {},
    status: { phase: ready === undefined ? 'Pending' : 'Running', ...(ready === undefined ? {} : { conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: ready }] }) },
  }
}

const names = (pods: readonly ApiObject[]): string[] => pods.map((p) => p.metadata.name ?? '')

describe('the controller with a set-based selector', () => {
  it('adopts the orphans its expressions select, with an apps/v1 controller reference, and leaves the others', () => {
    const plan = planReplication(rs(3), [pod('canary', { app: 'web', track: 'canary' }, null), pod('other-track', { app: 'web', track: 'beta' }, null), pod('no-track', { app: 'web' }, null)])
    expect(names(plan.adopt)).toEqual(['canary'])
    expect(plan.adopt[0]!.metadata.ownerReferences).toEqual([{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs-uid', controller: true, blockOwnerDeletion: true }])
    expect(plan.createCount).toBe(2)
  })

  it('releases an owned pod whose labels leave the set, and replaces it', () => {
    const plan = planReplication(rs(2), [pod('a', { app: 'web', track: 'stable' }), pod('moved', { app: 'web', track: 'beta' })])
    expect(names(plan.release)).toEqual(['moved'])
    expect(plan.release[0]!.metadata.ownerReferences).toBeUndefined()
    expect(plan.createCount).toBe(1)
  })

  it('scales down to the replicas asked for, not-ready pods first', () => {
    const pods = [pod('ready', { app: 'web', track: 'stable' }, 'rs-uid', '2026-01-01T00:00:00Z'), pod('pending-1', { app: 'web', track: 'stable' }), pod('pending-2', { app: 'web', track: 'canary' })]
    expect(names(planReplication(rs(1), pods).remove).sort()).toEqual(['pending-1', 'pending-2'])
  })

  it('builds replicas owned by the ReplicaSet', () => {
    const body = podBodyFromTemplate(rs(1)) as { metadata: { generateName: string; ownerReferences: unknown[]; labels: unknown } }
    expect(body.metadata).toMatchObject({ generateName: 'web-', labels: { app: 'web', track: 'stable' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs-uid', controller: true }] })
  })

  it('counts a pod available only minReadySeconds after it turned ready, and says when that will be', () => {
    const now = Date.parse('2026-01-01T00:01:00Z')
    const pods = [pod('old', { app: 'web', track: 'stable' }, 'rs-uid', '2026-01-01T00:00:00Z'), pod('new', { app: 'web', track: 'stable' }, 'rs-uid', '2026-01-01T00:00:50Z')]
    expect(replicationStatus(rs(2, { minReadySeconds: 30 }), pods, now)).toEqual({ replicas: 2, fullyLabeledReplicas: 2, readyReplicas: 2, availableReplicas: 1, observedGeneration: 2 })
    expect(nextAvailableAtMs(rs(2, { minReadySeconds: 30 }), pods, now)).toBe(Date.parse('2026-01-01T00:01:20Z'))
    expect(nextAvailableAtMs(rs(2), pods, now)).toBeUndefined()
  })
})

/** The stand-in Raft log, with shortcuts to this file's objects. */
class OneEntryRaft extends MiniRaft {
  constructor() {
    super(kinds)
  }

  create(apiVersion: string, kind: string, body: Record<string, unknown>, namespace?: string): ApiObject {
    const object = prepareCreate(kinds.byKind(apiVersion, kind)!, { apiVersion, kind, ...body }, namespace, 'Strict', nowIso).object
    this.apply({ op: 'obj.create', object })
    return object
  }

  get(apiVersion: string, kind: string, name: string): ApiObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> } {
    return this.store.get({ apiVersion, kind, namespace: 'default', name })!
  }

  podsOf(owner: ApiObject): ApiObject[] {
    return this.store.list(kinds.byKind('v1', 'Pod')!).filter((p) => p.metadata.ownerReferences?.some((r) => r.uid === owner.metadata.uid && r.controller === true))
  }
}

describe('rounds on a store', () => {
  it('a ReplicaSet and a ReplicationController each keep their own pods; the ReplicaSet adopts its orphan, scales, and settles', async () => {
    const raft = new OneEntryRaft()
    raft.create('v1', 'Namespace', { metadata: { name: 'default' } })
    raft.create('v1', 'Pod', { metadata: { name: 'stray', labels: { app: 'web', track: 'canary' } }, spec: { containers } }, 'default')
    const web = raft.create('apps/v1', 'ReplicaSet', { metadata: { name: 'web' }, spec: { replicas: 3, selector: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'track', operator: 'Exists' }] }, template } }, 'default')
    const legacy = raft.create('v1', 'ReplicationController', { metadata: { name: 'legacy' }, spec: { replicas: 2, selector: { app: 'legacy' }, template: { metadata: { labels: { app: 'legacy' } }, spec: { containers } } } }, 'default')
    const ctx = raft.context(() => Date.now())
    const rsManager = new ReplicationManager(ctx, replicaSets)
    const rcManager = new ReplicationManager(ctx)
    expect(rsManager.name).not.toBe(rcManager.name)
    await rsManager.round()
    await rcManager.round()
    expect(names(raft.podsOf(web)).sort()).toContain('stray')
    expect(raft.podsOf(web)).toHaveLength(3)
    expect(raft.podsOf(legacy)).toHaveLength(2)
    expect(raft.get('v1', 'Pod', 'stray').metadata.ownerReferences).toEqual([{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: web.metadata.uid, controller: true, blockOwnerDeletion: true }])
    expect(raft.get('apps/v1', 'ReplicaSet', 'web').status).toMatchObject({ replicas: 3, fullyLabeledReplicas: 2, observedGeneration: 1 })

    const scaled = structuredClone(raft.get('apps/v1', 'ReplicaSet', 'web'))
    scaled.spec!.replicas = 1
    raft.apply({ op: 'obj.update', object: scaled })
    await rsManager.round()
    expect(raft.podsOf(web)).toHaveLength(1)
    expect(raft.podsOf(legacy)).toHaveLength(2)
    expect(raft.get('apps/v1', 'ReplicaSet', 'web').status).toMatchObject({ replicas: 1, observedGeneration: 2 })
    const settled = raft.entries
    await rsManager.round()
    await rcManager.round()
    expect(raft.entries).toBe(settled)
  })

  it('asks for a round when a ready pod becomes available, and reports it available then', async () => {
    const raft = new OneEntryRaft()
    let nowMs = Date.parse('2026-01-01T00:00:10Z')
    raft.create('v1', 'Namespace', { metadata: { name: 'default' } })
    const web = raft.create('apps/v1', 'ReplicaSet', { metadata: { name: 'web' }, spec: { replicas: 1, minReadySeconds: 5, selector: { matchLabels: { app: 'web' } }, template } }, 'default')
    const manager = new ReplicationManager(raft.context(() => nowMs), replicaSets)
    expect(await manager.round()).toEqual({})
    const replica = structuredClone(raft.podsOf(web)[0]!)
    replica.status = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-01-01T00:00:10Z' }] }
    raft.apply({ op: 'obj.update', object: replica, subresource: 'status' })
    expect(await manager.round()).toEqual({ nextRoundAtMs: Date.parse('2026-01-01T00:00:15Z') })
    expect(raft.get('apps/v1', 'ReplicaSet', 'web').status).toMatchObject({ readyReplicas: 1 })
    expect(raft.get('apps/v1', 'ReplicaSet', 'web').status?.availableReplicas).toBeUndefined()
    nowMs = Date.parse('2026-01-01T00:00:15Z')
    expect(await manager.round()).toEqual({})
    expect(raft.get('apps/v1', 'ReplicaSet', 'web').status).toMatchObject({ readyReplicas: 1, availableReplicas: 1 })
  })
})
