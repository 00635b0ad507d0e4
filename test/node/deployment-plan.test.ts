// The Deployment kind (defaults, validation) and the controller's decisions as
// tables: maxSurge and maxUnavailable from numbers and percentages, the
// pod-template-hash, each step of a rolling update counted on available pods,
// Recreate, paused and proportional scaling, revisions and rollback, the
// progress deadline, history cleanup and hash collisions.
import { describe, expect, it } from 'vitest'
import { prepareCreate } from '../../node/api/prepare.js'
import { StatusError } from '../../node/api/status.js'
import { planDeployment, type DeploymentPlan } from '../../node/controllers/deployment-plan.js'
import { maxSurge, maxUnavailable, podTemplateHash, type DeploymentObject, type DeploymentStatus, type ReplicaSetObject } from '../../node/controllers/deployment-util.js'
import type { PodObject, PodTemplateView } from '../../node/controllers/replication.js'
import { coreKinds } from '../../node/kinds/cluster.js'

const kinds = coreKinds()
const deploymentKind = kinds.byKind('apps/v1', 'Deployment')!
const nowMs = Date.parse('2026-03-01T12:00:00Z')

const template = (image: string): PodTemplateView => ({ metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image }] } })

function deployment(replicas: number, image: string, o: { surge?: number | string; unavailable?: number | string; recreate?: boolean; paused?: boolean; status?: DeploymentStatus; revision?: string; history?: number } = {}): DeploymentObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'default', uid: 'd-uid', generation: 2, resourceVersion: '50', ...(o.revision === undefined ? {} : { annotations: { 'deployment.kubernetes.io/revision': o.revision } }) },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'web' } },
      template: template(image),
      strategy: o.recreate === true ? { type: 'Recreate' } : { type: 'RollingUpdate', rollingUpdate: { maxSurge: o.surge ?? '25%', maxUnavailable: o.unavailable ?? '25%' } },
      revisionHistoryLimit: o.history ?? 10,
      progressDeadlineSeconds: 600,
      ...(o.paused === true ? { paused: true } : {}),
    },
    status: o.status ?? {},
  }
}

/** A ReplicaSet of `deployment` for `image`, with `available` ready pods (and `pending` more not ready). */
interface RsSpec {
  image: string
  replicas: number
  revision: number
  available?: number
  pending?: number
  created?: string
  desired?: number
  max?: number
}

function replicaSet(r: RsSpec): { rs: ReplicaSetObject; pods: PodObject[] } {
  const hash = podTemplateHash(template(r.image), undefined)
  const name = `web-${hash}`
  const labels = { app: 'web', 'pod-template-hash': hash }
  const rs: ReplicaSetObject = {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name,
      namespace: 'default',
      uid: `uid-${r.image}`,
      resourceVersion: '40',
      generation: 1,
      creationTimestamp: r.created ?? '2026-03-01T00:00:00Z',
      labels,
      annotations: { 'deployment.kubernetes.io/revision': String(r.revision), 'deployment.kubernetes.io/desired-replicas': String(r.desired ?? 6), 'deployment.kubernetes.io/max-replicas': String(r.max ?? 8) },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'd-uid', controller: true }],
    },
    spec: { replicas: r.replicas, minReadySeconds: 0, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: template(r.image).spec! } },
    status: { replicas: (r.available ?? 0) + (r.pending ?? 0), observedGeneration: 1 },
  }
  const pod = (k: number, ready: boolean): PodObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${name}-${k}`, namespace: 'default', uid: `${name}-${k}`, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name, uid: rs.metadata.uid!, controller: true }] },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: '2026-03-01T00:00:00Z' }] },
  })
  const pods = [...Array.from({ length: r.available ?? 0 }, (_, k) => pod(k, true)), ...Array.from({ length: r.pending ?? 0 }, (_, k) => pod(100 + k, false))]
  return { rs, pods }
}

function plan(d: DeploymentObject, sets: RsSpec[], extra: ReplicaSetObject[] = []): DeploymentPlan {
  const built = sets.map(replicaSet)
  const pods = new Map(built.map((b) => [b.rs.metadata.uid!, b.pods]))
  return planDeployment({ deployment: d, replicaSets: [...built.map((b) => b.rs), ...extra], podsOf: (uid) => pods.get(uid) ?? [], nowMs })
}

const sizes = (p: DeploymentPlan): Record<string, number> => Object.fromEntries([...p.creates, ...p.updates].map((rs) => [rs.spec!.template!.spec!.containers ? (rs.spec!.template!.spec!.containers as { image: string }[])[0]!.image : '', rs.spec!.replicas!]))
const progressing = (s: DeploymentStatus | null) => s?.conditions?.find((c) => c.type === 'Progressing')

describe('maxSurge and maxUnavailable', () => {
  it.each([
    { replicas: 10, surge: '25%', unavailable: '25%', wantSurge: 3, wantUnavailable: 2 },
    { replicas: 6, surge: '25%', unavailable: '25%', wantSurge: 2, wantUnavailable: 1 },
    { replicas: 1, surge: '25%', unavailable: '25%', wantSurge: 1, wantUnavailable: 0 },
    { replicas: 3, surge: '10%', unavailable: '10%', wantSurge: 1, wantUnavailable: 0 },
    { replicas: 4, surge: 0, unavailable: '10%', wantSurge: 0, wantUnavailable: 1 },
    { replicas: 3, surge: 1, unavailable: 5, wantSurge: 1, wantUnavailable: 3 },
    { replicas: 100, surge: '25%', unavailable: '25%', wantSurge: 25, wantUnavailable: 25 },
    { replicas: 0, surge: '25%', unavailable: '25%', wantSurge: 0, wantUnavailable: 0 },
  ])('$replicas replicas, maxSurge $surge, maxUnavailable $unavailable: surge $wantSurge, unavailable $wantUnavailable', ({ replicas, surge, unavailable, wantSurge, wantUnavailable }) => {
    const d = deployment(replicas, 'v1', { surge, unavailable })
    expect(maxSurge(d)).toBe(wantSurge)
    expect(maxUnavailable(d)).toBe(wantUnavailable)
  })

  it('Recreate has neither', () => {
    const d = deployment(5, 'v1', { recreate: true })
    expect([maxSurge(d), maxUnavailable(d)]).toEqual([0, 0])
  })
})

function create(body: Record<string, unknown>): DeploymentObject {
  return prepareCreate(deploymentKind, { apiVersion: 'apps/v1', kind: 'Deployment', ...body }, 'default', 'Strict', '2026-03-01T00:00:00Z').object as DeploymentObject
}

function refusal(body: Record<string, unknown>): { code: number; causes: string[] } {
  try {
    create(body)
  } catch (err) {
    if (!(err instanceof StatusError)) throw err
    return { code: err.code, causes: (err.details?.causes ?? []).map((c) => `${c.field}: ${c.message}`) }
  }
  throw new Error('accepted')
}

const spec = { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } } }

describe('the Deployment kind', () => {
  it('defaults as Kubernetes: 1 replica, RollingUpdate 25%/25%, 10 revisions, 600 s deadline; kubectl\'s null creationTimestamp in the template is accepted', () => {
    const d = create({ metadata: { name: 'web' }, spec: { ...spec, template: { ...spec.template, metadata: { creationTimestamp: null, labels: { app: 'web' } } } } })
    expect(d.spec).toMatchObject({ replicas: 1, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } }, revisionHistoryLimit: 10, progressDeadlineSeconds: 600 })
    expect(d.spec!.template!.metadata).toEqual({ labels: { app: 'web' } })
    expect(d.metadata.generation).toBe(1)
  })

  it.each([
    { case: 'both fenceposts 0', patch: { strategy: { rollingUpdate: { maxSurge: 0, maxUnavailable: '0%' } } }, cause: 'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0' },
    { case: 'a percentage without %', patch: { strategy: { rollingUpdate: { maxSurge: '25' } } }, cause: "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"25\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')" },
    { case: 'a negative number', patch: { strategy: { rollingUpdate: { maxUnavailable: -1 } } }, cause: 'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: -1: must be greater than or equal to 0' },
    { case: 'over 100%', patch: { strategy: { rollingUpdate: { maxUnavailable: '110%' } } }, cause: 'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "110%": must not be greater than 100%' },
    { case: 'Recreate with rollingUpdate', patch: { strategy: { type: 'Recreate', rollingUpdate: { maxSurge: 1 } } }, cause: "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'" },
    { case: 'a selector that does not select the template', patch: { selector: { matchLabels: { app: 'other' } } }, cause: 'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`' },
    { case: 'a deadline not above minReadySeconds', patch: { minReadySeconds: 10, progressDeadlineSeconds: 10 }, cause: 'spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds' },
  ])('refuses $case with 422', ({ patch, cause }) => {
    const result = refusal({ metadata: { name: 'web' }, spec: { ...spec, ...patch } })
    expect(result.code).toBe(422)
    expect(result.causes).toContain(cause)
  })

  it('refuses a missing selector with 422', () => {
    expect(refusal({ metadata: { name: 'web' }, spec: { template: spec.template } }).code).toBe(422)
  })
})

describe('the pod-template-hash', () => {
  it('is stable, ignores key order, changes with the template and with the collision count, in Kubernetes\' alphabet', () => {
    const a = podTemplateHash(template('v1'), undefined)
    expect(a).toMatch(/^[bcdfghjklmnpqrstvwxz2456789]{1,10}$/)
    expect(podTemplateHash({ spec: { containers: [{ image: 'v1', name: 'c' }] }, metadata: { labels: { app: 'web' } } }, undefined)).toBe(a)
    expect(podTemplateHash(template('v2'), undefined)).not.toBe(a)
    expect(podTemplateHash(template('v1'), 1)).not.toBe(a)
  })
})

describe('a rolling update of 6 replicas (maxSurge 2, maxUnavailable 1)', () => {
  it('a new deployment gets its ReplicaSet at full size, revision 1, with the hash in name, labels and selector', () => {
    const p = plan(deployment(6, 'v1'), [])
    expect(p.creates).toHaveLength(1)
    const rs = p.creates[0]!
    const hash = podTemplateHash(template('v1'), undefined)
    expect(rs.metadata.name).toBe(`web-${hash}`)
    expect(rs.metadata.labels).toEqual({ app: 'web', 'pod-template-hash': hash })
    expect(rs.spec!.selector).toEqual({ matchLabels: { app: 'web', 'pod-template-hash': hash } })
    expect(rs.spec!.template!.metadata!.labels).toEqual({ app: 'web', 'pod-template-hash': hash })
    expect(rs.spec!.replicas).toBe(6)
    expect(rs.metadata.annotations).toEqual({ 'deployment.kubernetes.io/revision': '1', 'deployment.kubernetes.io/desired-replicas': '6', 'deployment.kubernetes.io/max-replicas': '8' })
    expect(p.annotations).toEqual({ 'deployment.kubernetes.io/revision': '1' })
    expect(p.events.map((e) => e.message)).toEqual([`Scaled up replica set web-${hash} to 6`])
    expect(progressing(p.status)).toMatchObject({ status: 'True', reason: 'NewReplicaSetCreated', message: `Created new replica set "web-${hash}"` })
  })

  it.each([
    { step: 'new template: the new ReplicaSet surges to 2, and one old replica may go (8 - 5 - 2 unavailable = 1)', sets: [{ image: 'v1', replicas: 6, revision: 1, available: 6 }], want: { v2: 2, v1: 5 } },
    { step: 'nothing new available: one old replica goes (6+2 - 5 - 2 unavailable = 1)', sets: [{ image: 'v1', replicas: 6, revision: 1, available: 6 }, { image: 'v2', replicas: 2, revision: 2, pending: 2 }], want: { v1: 5 } },
    { step: 'room under the surge: the new one grows, though nothing is available yet', sets: [{ image: 'v1', replicas: 5, revision: 1, available: 5 }, { image: 'v2', replicas: 2, revision: 2, pending: 2 }], want: { v2: 3 } },
    { step: 'at the surge with nothing new available: nothing moves', sets: [{ image: 'v1', replicas: 5, revision: 1, available: 5 }, { image: 'v2', replicas: 3, revision: 2, pending: 3 }], want: {} },
    { step: 'old pods whose ReplicaSet was just scaled down do not count as staying (4, not 3)', sets: [{ image: 'v1', replicas: 5, revision: 1, available: 6 }, { image: 'v2', replicas: 3, revision: 2, available: 1, pending: 2 }], want: { v1: 4 } },
    { step: 'room under the surge: the new one grows', sets: [{ image: 'v1', replicas: 5, revision: 1, available: 5 }, { image: 'v2', replicas: 2, revision: 2, available: 2 }], want: { v2: 3 } },
    { step: 'at the surge with 2 new available: old ones go down to 5 available', sets: [{ image: 'v1', replicas: 5, revision: 1, available: 5 }, { image: 'v2', replicas: 3, revision: 2, available: 2, pending: 1 }], want: { v1: 3 } },
    { step: 'unavailable old replicas go first, at no cost', sets: [{ image: 'v1', replicas: 5, revision: 1, available: 3, pending: 2 }, { image: 'v2', replicas: 3, revision: 2, pending: 3 }], want: {} },
    { step: 'unavailable old replicas go first when there is room', sets: [{ image: 'v1', replicas: 5, revision: 1, available: 4, pending: 1 }, { image: 'v2', replicas: 3, revision: 2, available: 2, pending: 1 }], want: { v1: 3 } },
    { step: 'the last old ones go once the new ones are available', sets: [{ image: 'v1', replicas: 1, revision: 1, available: 1 }, { image: 'v2', replicas: 6, revision: 2, available: 6 }], want: { v1: 0 } },
  ])('$step', ({ sets, want }) => {
    const p = plan(deployment(6, 'v2', { surge: 2, unavailable: 1 }), sets)
    expect(sizes(p)).toEqual(want)
    for (const rs of [...p.creates, ...p.updates]) expect(rs.metadata.annotations).toMatchObject({ 'deployment.kubernetes.io/desired-replicas': '6', 'deployment.kubernetes.io/max-replicas': '8' })
  })

  it('never plans more than replicas + maxSurge, nor takes availability below replicas - maxUnavailable, from any state', () => {
    for (let oldReplicas = 0; oldReplicas <= 6; oldReplicas++) {
      for (let newReplicas = 0; newReplicas <= 8 - oldReplicas; newReplicas++) {
        for (let oldAvailable = 0; oldAvailable <= oldReplicas; oldAvailable++) {
          for (let newAvailable = 0; newAvailable <= newReplicas; newAvailable++) {
            const sets = [
              { image: 'v1', replicas: oldReplicas, revision: 1, available: oldAvailable, pending: oldReplicas - oldAvailable },
              { image: 'v2', replicas: newReplicas, revision: 2, available: newAvailable, pending: newReplicas - newAvailable },
            ]
            const after = { v1: oldReplicas, v2: newReplicas, ...sizes(plan(deployment(6, 'v2', { surge: 2, unavailable: 1 }), sets)) }
            expect(after.v1 + after.v2).toBeLessThanOrEqual(Math.max(8, oldReplicas + newReplicas))
            // What stays available: old ones the RS keeps (it deletes unavailable ones first) plus new ones.
            const kept = Math.min(oldAvailable, after.v1) + Math.min(newAvailable, after.v2)
            expect(kept).toBeGreaterThanOrEqual(Math.min(5, oldAvailable + newAvailable))
          }
        }
      }
    }
  })

  it('complete: Progressing NewReplicaSetAvailable, Available, the counts', () => {
    const p = plan(deployment(6, 'v2', { revision: '2' }), [{ image: 'v1', replicas: 0, revision: 1 }, { image: 'v2', replicas: 6, revision: 2, available: 6, desired: 6, max: 8 }])
    const name = `web-${podTemplateHash(template('v2'), undefined)}`
    expect(p.status).toMatchObject({ observedGeneration: 2, replicas: 6, updatedReplicas: 6, readyReplicas: 6, availableReplicas: 6 })
    expect(p.status!.unavailableReplicas).toBeUndefined()
    expect(p.status!.conditions!.map((c) => [c.type, c.status, c.reason, c.message])).toEqual([
      ['Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.'],
      ['Progressing', 'True', 'NewReplicaSetAvailable', `ReplicaSet "${name}" has successfully progressed.`],
    ])
  })
})

describe('progress deadline', () => {
  const since = (seconds: number): string => new Date(nowMs - seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z')
  const stuck = (updatedAgoSeconds: number): DeploymentStatus => ({
    observedGeneration: 2,
    replicas: 8,
    updatedReplicas: 3,
    readyReplicas: 5,
    availableReplicas: 5,
    unavailableReplicas: 3,
    conditions: [{ type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated', message: 'x', lastUpdateTime: since(updatedAgoSeconds), lastTransitionTime: since(900) }],
  })
  const sets = [{ image: 'v1', replicas: 5, revision: 1, available: 5 }, { image: 'v2', replicas: 3, revision: 2, pending: 3 }]

  it('no progress for progressDeadlineSeconds: Progressing=False ProgressDeadlineExceeded, and the old pods stay', () => {
    const p = plan(deployment(6, 'v2', { surge: 2, unavailable: 1, revision: '2', status: stuck(601) }), sets)
    expect(sizes(p)).toEqual({})
    expect(progressing(p.status)).toMatchObject({ status: 'False', reason: 'ProgressDeadlineExceeded', message: `ReplicaSet "web-${podTemplateHash(template('v2'), undefined)}" has timed out progressing.` })
    expect(p.nextRoundAtMs).toBeUndefined()
  })

  it('before the deadline: nothing changes, and a round is asked for when it falls due', () => {
    const p = plan(deployment(6, 'v2', { surge: 2, unavailable: 1, revision: '2', status: stuck(100) }), sets)
    expect(p.status?.conditions?.find((c) => c.type === 'Progressing')?.reason ?? 'ReplicaSetUpdated').toBe('ReplicaSetUpdated')
    expect(p.nextRoundAtMs).toBe(nowMs + 500_000 + 1)
  })

  it('progress (a new pod ready) moves lastUpdateTime and keeps the transition time', () => {
    const p = plan(deployment(6, 'v2', { surge: 2, unavailable: 1, revision: '2', status: stuck(300) }), [{ image: 'v1', replicas: 5, revision: 1, available: 5 }, { image: 'v2', replicas: 3, revision: 2, available: 1, pending: 2 }])
    expect(progressing(p.status)).toMatchObject({ status: 'True', reason: 'ReplicaSetUpdated', lastUpdateTime: since(0), lastTransitionTime: since(900) })
  })
})

describe('Recreate', () => {
  it('scales the old ReplicaSet to 0 first, waits for its pods, then makes the new one at full size', () => {
    const first = plan(deployment(3, 'v2', { recreate: true }), [{ image: 'v1', replicas: 3, revision: 1, available: 3, desired: 3, max: 3 }])
    expect(sizes(first)).toEqual({ v1: 0 })
    expect(first.creates).toEqual([])
    const waiting = plan(deployment(3, 'v2', { recreate: true }), [{ image: 'v1', replicas: 0, revision: 1, available: 2, desired: 3, max: 3 }])
    expect(sizes(waiting)).toEqual({})
    const gone = plan(deployment(3, 'v2', { recreate: true }), [{ image: 'v1', replicas: 0, revision: 1, desired: 3, max: 3 }])
    expect(sizes(gone)).toEqual({ v2: 3 })
  })
})

describe('paused and scaling', () => {
  it('paused: a new template makes no ReplicaSet, the condition says paused', () => {
    const p = plan(deployment(6, 'v2', { paused: true }), [{ image: 'v1', replicas: 6, revision: 1, available: 6 }])
    expect(p.creates).toEqual([])
    expect(progressing(p.status)).toMatchObject({ status: 'Unknown', reason: 'DeploymentPaused', message: 'Deployment is paused' })
  })

  it('resumed mid-rollout: the condition says so', () => {
    const pausedStatus: DeploymentStatus = { observedGeneration: 2, replicas: 8, updatedReplicas: 3, readyReplicas: 5, availableReplicas: 5, unavailableReplicas: 3, conditions: [{ type: 'Progressing', status: 'Unknown', reason: 'DeploymentPaused', message: 'Deployment is paused', lastUpdateTime: '2026-03-01T00:00:00Z', lastTransitionTime: '2026-03-01T00:00:00Z' }] }
    const p = plan(deployment(6, 'v2', { surge: 2, unavailable: 1, status: pausedStatus, revision: '2' }), [{ image: 'v1', replicas: 5, revision: 1, available: 5 }, { image: 'v2', replicas: 3, revision: 2, pending: 3 }])
    expect(progressing(p.status)).toMatchObject({ reason: 'DeploymentResumed', message: 'Deployment is resumed' })
  })

  it('scaling mid-rollout (10 -> 15, maxSurge 3) adds proportionally: 3 to the ReplicaSet of 8, 2 to the one of 5 (Kubernetes\' documented example)', () => {
    const d = deployment(15, 'v2', { surge: 3, unavailable: 2, revision: '2' })
    const p = plan(d, [{ image: 'v1', replicas: 8, revision: 1, available: 8, desired: 10, max: 13 }, { image: 'v2', replicas: 5, revision: 2, pending: 5, desired: 10, max: 13, created: '2026-03-01T01:00:00Z' }])
    expect(sizes(p)).toEqual({ v1: 11, v2: 7 })
    expect(p.events.map((e) => e.message).sort()).toEqual([`Scaled up replica set web-${podTemplateHash(template('v1'), undefined)} to 11 from 8`, `Scaled up replica set web-${podTemplateHash(template('v2'), undefined)} to 7 from 5`].sort())
  })

  it('paused and scaled down: proportionally too', () => {
    const d = deployment(5, 'v2', { surge: 3, unavailable: 2, revision: '2', paused: true })
    const p = plan(d, [{ image: 'v1', replicas: 8, revision: 1, available: 8, desired: 10, max: 13 }, { image: 'v2', replicas: 5, revision: 2, pending: 5, desired: 10, max: 13, created: '2026-03-01T01:00:00Z' }])
    const after = { v1: 8, v2: 5, ...sizes(p) }
    expect(after.v1 + after.v2).toBe(8)
    expect(after.v1).toBeGreaterThan(after.v2)
  })

  it('scaling a settled deployment resizes its one ReplicaSet', () => {
    const p = plan(deployment(9, 'v1', { revision: '1' }), [{ image: 'v1', replicas: 6, revision: 1, available: 6 }])
    expect(sizes(p)).toEqual({ v1: 9 })
  })
})

describe('revisions, rollback and history', () => {
  it('a template that matches an old ReplicaSet reuses it with the next revision (kubectl rollout undo), keeping the old one in revision-history', () => {
    const p = plan(deployment(6, 'v1', { surge: 2, unavailable: 1, revision: '2' }), [{ image: 'v1', replicas: 0, revision: 1 }, { image: 'v2', replicas: 6, revision: 2, available: 6, created: '2026-03-01T01:00:00Z' }])
    expect(p.creates).toEqual([])
    const reused = p.updates.find((rs) => rs.metadata.uid === 'uid-v1')!
    expect(reused.spec!.replicas).toBe(2)
    expect(reused.metadata.annotations).toMatchObject({ 'deployment.kubernetes.io/revision': '3', 'deployment.kubernetes.io/revision-history': '1' })
    expect(p.annotations).toEqual({ 'deployment.kubernetes.io/revision': '3' })
  })

  it('copies the deployment\'s own annotations (change-cause) to the new ReplicaSet, not the revision or last-applied ones', () => {
    const d = deployment(2, 'v1')
    d.metadata.annotations = { 'kubernetes.io/change-cause': 'kubectl set image', 'kubectl.kubernetes.io/last-applied-configuration': '{}' }
    const rs = plan(d, []).creates[0]!
    expect(rs.metadata.annotations).toMatchObject({ 'kubernetes.io/change-cause': 'kubectl set image' })
    expect(rs.metadata.annotations!['kubectl.kubernetes.io/last-applied-configuration']).toBeUndefined()
  })

  it('a complete rollout deletes the oldest empty ReplicaSets past revisionHistoryLimit (3 of 4 here), skipping one that still has pods', () => {
    const sets = [
      { image: 'v1', replicas: 0, revision: 1 },
      { image: 'v2', replicas: 0, revision: 2, available: 1 },
      { image: 'v3', replicas: 0, revision: 3 },
      { image: 'v4', replicas: 0, revision: 4 },
      { image: 'v5', replicas: 3, revision: 5, available: 3, desired: 3, max: 4 },
    ]
    const done: DeploymentStatus = { observedGeneration: 2, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3 }
    const p = plan(deployment(3, 'v5', { history: 1, revision: '5', status: done }), sets)
    expect(p.deletes.map((rs) => rs.metadata.uid)).toEqual(['uid-v1', 'uid-v3'])
  })

  it('a name taken by another object is a collision: collisionCount goes up and nothing is created', () => {
    const foreign = { ...replicaSet({ image: 'v2', replicas: 1, revision: 1 }).rs, metadata: { ...replicaSet({ image: 'v2', replicas: 1, revision: 1 }).rs.metadata, uid: 'foreign', ownerReferences: [], labels: { other: 'x' } } }
    const p = plan(deployment(3, 'v2'), [], [foreign])
    expect(p.creates).toEqual([])
    expect(p.status!.collisionCount).toBe(1)
    const next = plan(deployment(3, 'v2', { status: { collisionCount: 1 } }), [], [foreign])
    expect(next.creates[0]!.metadata.name).toBe(`web-${podTemplateHash(template('v2'), 1)}`)
  })
})
