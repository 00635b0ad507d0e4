// The Deployment controller's rounds on a real object store fed by a stand-in
// Raft log, with the ReplicaSet controller making the pods and a stand-in
// agent making them ready a few at a time: a rolling update that never plans
// past maxSurge nor drops below replicas - maxUnavailable ready pods, a leader
// change in the middle (including writes the old leader committed that the new
// one has not applied yet), rollback to an old template, a version that never
// gets ready, and rounds that write nothing once nothing needs doing.
import { describe, expect, it } from 'vitest'
import { prepareCreate } from '../../node/api/prepare.js'
import type { SubmitResult } from '../../node/api/submit.js'
import type { ControlContext } from '../../node/control/controllers.js'
import { DeploymentController } from '../../node/controllers/deployment-controller.js'
import type { DeploymentObject, ReplicaSetObject } from '../../node/controllers/deployment-util.js'
import { ReplicationManager, replicaSets } from '../../node/controllers/replication-controller.js'
import { isActivePod, isPodReady, type PodObject } from '../../node/controllers/replication.js'
import { coreKinds } from '../../node/kinds/cluster.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import type { StoreCommand } from '../../node/store/commands.js'
import { MiniRaft } from './mini-raft.js'

const kinds = coreKinds()
const kind = (apiVersion: string, k: string) => kinds.byKind(apiVersion, k)!

/** The stand-in Raft log with a clock of its own, whose leader can lose leadership after committing. */
class FailoverRaft extends MiniRaft {
  /** The leader dies once its entries commit: they stay unapplied here and its submits fail. */
  leaderDies = false
  clockMs = Date.parse('2026-03-01T12:00:00Z')

  constructor() {
    super(kinds)
  }

  override async submit(command: StoreCommand): Promise<SubmitResult> {
    if (this.leaderDies) {
      this.committedUnapplied.push(command)
      throw new Error('leadership lost')
    }
    return super.submit(command)
  }

  override context(): ControlContext {
    return super.context(() => this.clockMs)
  }

  deployment(): DeploymentObject {
    return this.store.get({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'default', name: 'web' }) as DeploymentObject
  }

  replicaSets(): ReplicaSetObject[] {
    return this.store.list(kind('apps/v1', 'ReplicaSet')) as ReplicaSetObject[]
  }

  pods(): PodObject[] {
    return (this.store.list(kind('v1', 'Pod')) as PodObject[]).filter(isActivePod)
  }
}

function template(image: string): Record<string, unknown> {
  return { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image }] } }
}

function setUp(replicas: number, progressDeadlineSeconds = 600): FailoverRaft {
  const raft = new FailoverRaft()
  raft.apply({ op: 'obj.create', object: prepareCreate(kind('v1', 'Namespace'), { metadata: { name: 'default' } }, undefined, 'Strict', new Date(raft.clockMs).toISOString()).object })
  const body = { metadata: { name: 'web' }, spec: { replicas, selector: { matchLabels: { app: 'web' } }, template: template('v1'), progressDeadlineSeconds } }
  raft.apply({ op: 'obj.create', object: prepareCreate(kind('apps/v1', 'Deployment'), body, 'default', 'Strict', new Date(raft.clockMs).toISOString()).object })
  return raft
}

/** What an agent would report: up to `count` pods of good images Running and Ready (images named bad* never get ready). */
function readyUp(raft: FailoverRaft, count: number): void {
  const waiting = raft.pods().filter((p) => !isPodReady(p) && !imageOf(p).startsWith('bad'))
  for (const pod of waiting.slice(0, count)) {
    const at = new Date(raft.clockMs).toISOString().replace(/\.\d+Z$/, 'Z')
    raft.apply({ op: 'obj.update', object: { ...pod, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: at }] } }, subresource: 'status' })
  }
}

function imageOf(pod: PodObject): string {
  return ((pod.spec as { containers?: { image?: string }[] } | undefined)?.containers?.[0]?.image ?? '') as string
}

function setImage(raft: FailoverRaft, image: string): void {
  const d = structuredClone(raft.deployment())
  ;(d.spec as Record<string, unknown>).template = template(image)
  raft.apply({ op: 'obj.update', object: prepareUpdateLike(d) })
}

/** The deployment as the API would store the update (defaults applied), so the template compares equal to its ReplicaSet's. */
function prepareUpdateLike(d: DeploymentObject): ApiObject {
  kind('apps/v1', 'Deployment').defaults!(d)
  return d
}

interface Bounds {
  replicas: number
  surge: number
  unavailable: number
}

/** One round of each controller (a new leader gets new ones), then the bounds a user would check. */
async function step(raft: FailoverRaft, managers: { deployments: DeploymentController; replicaSets: ReplicationManager }, bounds: Bounds): Promise<void> {
  await managers.deployments.round()
  const planned = raft.replicaSets().reduce((n, rs) => n + (rs.spec?.replicas ?? 0), 0)
  expect(planned).toBeLessThanOrEqual(bounds.replicas + bounds.surge)
  await managers.replicaSets.round()
  expect(raft.pods().length).toBeLessThanOrEqual(bounds.replicas + bounds.surge)
  raft.clockMs += 1000
}

function readyCount(raft: FailoverRaft): number {
  return raft.pods().filter(isPodReady).length
}

function complete(raft: FailoverRaft): boolean {
  const d = raft.deployment()
  const s = d.status ?? {}
  const want = d.spec?.replicas ?? 0
  return (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) && s.updatedReplicas === want && s.replicas === want && s.availableReplicas === want
}

function newManagers(raft: FailoverRaft): { deployments: DeploymentController; replicaSets: ReplicationManager } {
  return { deployments: new DeploymentController(raft.context()), replicaSets: new ReplicationManager(raft.context(), replicaSets) }
}

async function rollOut(raft: FailoverRaft, bounds: Bounds, options: { failoverAt?: number; stepsMax?: number } = {}): Promise<number> {
  let managers = newManagers(raft)
  for (let k = 0; k < (options.stepsMax ?? 60); k++) {
    if (k === options.failoverAt) {
      // The old leader's round commits its writes and dies; the new one has not applied them yet.
      raft.leaderDies = true
      await managers.deployments.round()
      raft.leaderDies = false
      managers = newManagers(raft)
    }
    await step(raft, managers, bounds)
    expect(readyCount(raft)).toBeGreaterThanOrEqual(bounds.replicas - bounds.unavailable)
    if (complete(raft)) return k
    readyUp(raft, 1)
  }
  throw new Error(`no complete rollout: ${JSON.stringify(raft.deployment().status)}`)
}

const revisionOf = (o: ApiObject): string | undefined => o.metadata.annotations?.['deployment.kubernetes.io/revision']
const imageOfRs = (rs: ReplicaSetObject): string => ((rs.spec?.template?.spec as { containers: { image: string }[] }).containers[0]!.image)

describe('rollouts on a store', () => {
  const bounds = { replicas: 6, surge: 2, unavailable: 1 }

  it('brings up the first version, then rolls to a new one within the bounds, then rolls back to the old ReplicaSet with a new revision; then writes nothing', async () => {
    const raft = setUp(6)
    let managers = newManagers(raft)
    for (let k = 0; k < 20 && !complete(raft); k++) {
      await step(raft, managers, bounds)
      readyUp(raft, 6)
    }
    expect(complete(raft)).toBe(true)
    expect(revisionOf(raft.deployment())).toBe('1')
    expect(raft.deployment().metadata.generation).toBe(1)

    setImage(raft, 'v2')
    expect(raft.deployment().metadata.generation).toBe(2)
    await rollOut(raft, bounds)
    expect(revisionOf(raft.deployment())).toBe('2')
    expect(raft.pods().map(imageOf)).toEqual(Array(6).fill('v2'))
    const events = (raft.store.list(kind('v1', 'Event')) as (ApiObject & { reason: string; message: string })[]).filter((e) => e.reason === 'ScalingReplicaSet')
    expect(events.some((e) => /^Scaled down replica set web-\w+ to \d from \d$/.test(e.message))).toBe(true)

    // kubectl rollout undo: the template back as the old ReplicaSet has it, in kubectl's encoding
    // (`resources: {}` on every container, though the manifest had none).
    const v1 = raft.replicaSets().find((rs) => imageOfRs(rs) === 'v1')!
    const undone = structuredClone(raft.deployment())
    ;(undone.spec as Record<string, unknown>).template = { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'v1', resources: {} }] } }
    raft.apply({ op: 'obj.update', object: prepareUpdateLike(undone) })
    await rollOut(raft, bounds)
    expect(raft.replicaSets().map((rs) => [imageOfRs(rs), rs.spec?.replicas, revisionOf(rs)]).sort()).toEqual([['v1', 6, '3'], ['v2', 0, '2']])
    expect(raft.replicaSets().find((rs) => imageOfRs(rs) === 'v1')!.metadata.uid).toBe(v1.metadata.uid)
    expect(revisionOf(raft.deployment())).toBe('3')
    expect(raft.deployment().status?.conditions?.find((c) => c.type === 'Progressing')?.reason).toBe('NewReplicaSetAvailable')

    managers = newManagers(raft)
    await step(raft, managers, bounds)
    const settled = raft.store.appliedIndex
    await step(raft, managers, bounds)
    await step(raft, managers, bounds)
    expect(raft.store.appliedIndex).toBe(settled)
  })

  it.each([2, 3, 5, 8])('a new leader after round %i (the old one\'s last writes committed, not yet applied) carries on without passing the bounds', async (failoverAt) => {
    const raft = setUp(6)
    const managers = newManagers(raft)
    for (let k = 0; k < 20 && !complete(raft); k++) {
      await step(raft, managers, bounds)
      readyUp(raft, 6)
    }
    setImage(raft, 'v2')
    await rollOut(raft, bounds, { failoverAt })
    expect(raft.pods().map(imageOf)).toEqual(Array(6).fill('v2'))
    expect(raft.replicaSets().filter((rs) => imageOfRs(rs) === 'v2')).toHaveLength(1)
  })

  it('a version that never gets ready stops after maxUnavailable old pods and reports ProgressDeadlineExceeded; the old ones stay', async () => {
    const raft = setUp(6, 30)
    const managers = newManagers(raft)
    for (let k = 0; k < 20 && !complete(raft); k++) {
      await step(raft, managers, bounds)
      readyUp(raft, 6)
    }
    setImage(raft, 'bad')
    for (let k = 0; k < 40; k++) {
      await step(raft, managers, bounds)
      expect(readyCount(raft)).toBeGreaterThanOrEqual(5)
      readyUp(raft, 6)
    }
    const progressing = raft.deployment().status?.conditions?.find((c) => c.type === 'Progressing')
    expect(progressing).toMatchObject({ status: 'False', reason: 'ProgressDeadlineExceeded' })
    expect(raft.pods().filter((p) => imageOf(p) === 'v1' && isPodReady(p))).toHaveLength(5)
    expect(raft.pods().filter((p) => imageOf(p) === 'bad')).toHaveLength(3)
  })
})
