// The Deployment controller, run by the leader. Every round reads the store
// (Deployments, the ReplicaSets of their namespaces, the pods by controller),
// plans each Deployment (deployment-plan.ts) and writes: ReplicaSets claimed,
// created, scaled and deleted together with the deployment's revision
// annotation, then its status once those writes succeeded. Every write is
// conditional (a stored resourceVersion, or a create under a name derived from
// the template), so a round planned on a store that trails the log fails
// harmlessly instead of repeating the old leader's work, and the next round
// replans. Nothing is kept between rounds.
import { prepareCreate } from '../api/prepare.js'
import type { ControlContext } from '../control/controllers.js'
import type { Controller, RoundResult } from '../control/leader-loop.js'
import type { KindDefinition } from '../kinds/kind.js'
import type { ApiObject } from '../kinds/meta.js'
import { refOf, type StoreCommand } from '../store/commands.js'
import { failureMessage, submitInBatches, type BatchOutcome } from './batches.js'
import { planDeployment, type DeploymentPlan } from './deployment-plan.js'
import type { DeploymentObject, ReplicaSetObject } from './deployment-util.js'
import type { PodObject } from './replication.js'
import { podsByController } from './store-scan.js'

/** A ReplicaSet write of a round, to tie its outcome to the events that tell of it. */
interface Write {
  plan: DeploymentPlan
  command: StoreCommand
  /** The ReplicaSet written, or '' for the deployment's own annotations. */
  replicaSet: string
}

export class DeploymentController implements Controller {
  readonly name = 'deployment'

  constructor(private readonly ctx: ControlContext) {}

  async round(): Promise<RoundResult> {
    const deploymentKind = this.ctx.kinds.byKind('apps/v1', 'Deployment')
    const replicaSetKind = this.ctx.kinds.byKind('apps/v1', 'ReplicaSet')
    if (deploymentKind === undefined || replicaSetKind === undefined) return {}
    const deployments = this.ctx.store.list(deploymentKind) as DeploymentObject[]
    if (deployments.length === 0) return {}
    const byNamespace = new Map<string, ReplicaSetObject[]>()
    for (const rs of this.ctx.store.list(replicaSetKind) as ReplicaSetObject[]) {
      const ns = rs.metadata.namespace ?? ''
      let list = byNamespace.get(ns)
      if (list === undefined) byNamespace.set(ns, (list = []))
      list.push(rs)
    }
    const { controlled } = podsByController<PodObject>(this.ctx.store)
    const nowMs = this.ctx.nowMs()
    const plans = deployments.map((deployment) => planDeployment({ deployment, replicaSets: byNamespace.get(deployment.metadata.namespace ?? '') ?? [], podsOf: (uid) => controlled.get(uid) ?? [], nowMs }))
    await this.execute(plans, replicaSetKind)
    const wakeUps = plans.map((p) => p.nextRoundAtMs).filter((t): t is number => t !== undefined)
    return wakeUps.length === 0 ? {} : { nextRoundAtMs: Math.min(...wakeUps) }
  }

  /** The ReplicaSet writes and annotations of every plan in one go, then the statuses of the plans whose writes all succeeded. */
  private async execute(plans: DeploymentPlan[], replicaSetKind: KindDefinition): Promise<void> {
    const writes: Write[] = []
    const told: Promise<void>[] = []
    for (const plan of plans) writes.push(...this.writesOf(plan, replicaSetKind, told))
    const outcomes = writes.length === 0 ? [] : await submitInBatches(this.ctx.submitter, writes.map((w) => w.command))
    const failed = new Set<DeploymentPlan>()
    /** The deployment as its annotation write left it, for the status write's precondition. */
    const annotated = new Map<DeploymentPlan, ApiObject>()
    outcomes.forEach((outcome, k) => {
      const write = writes[k]!
      if (!outcome.ok) return void failed.add(write.plan)
      if (write.replicaSet === '' && outcome.object !== null) annotated.set(write.plan, outcome.object)
    })
    for (const plan of plans) told.push(...this.tell(plan, writes, outcomes))
    const statuses: StoreCommand[] = []
    for (const plan of plans) {
      if (plan.status === null || failed.has(plan)) continue
      const current = annotated.get(plan) ?? plan.deployment
      statuses.push({ op: 'obj.update', object: { ...current, status: plan.status }, subresource: 'status', ...(current.metadata.resourceVersion === undefined ? {} : { expectResourceVersion: current.metadata.resourceVersion }) })
    }
    // A conflict (someone changed the deployment meanwhile) is replanned by the next round, which that change triggers.
    if (statuses.length > 0) await submitInBatches(this.ctx.submitter, statuses)
    await Promise.all(told)
  }

  private writesOf(plan: DeploymentPlan, replicaSetKind: KindDefinition, told: Promise<void>[]): Write[] {
    const out: Write[] = []
    const precondition = (o: ApiObject): { expectResourceVersion?: string } => (o.metadata.resourceVersion === undefined ? {} : { expectResourceVersion: o.metadata.resourceVersion })
    for (const rs of [...plan.claims, ...plan.updates]) out.push({ plan, command: { op: 'obj.update', object: rs, ...precondition(rs) }, replicaSet: rs.metadata.name ?? '' })
    for (const rs of plan.creates) {
      try {
        const object = prepareCreate(replicaSetKind, rs, rs.metadata.namespace, 'Strict', this.ctx.nowIso()).object
        out.push({ plan, command: { op: 'obj.create', object }, replicaSet: rs.metadata.name ?? '' })
      } catch (err) {
        told.push(this.ctx.events.record(plan.deployment, 'Warning', 'FailedCreate', `Failed to create new replica set ${JSON.stringify(rs.metadata.name ?? '')}: ${(err as Error).message}`))
      }
    }
    for (const rs of plan.deletes) {
      out.push({ plan, command: { op: 'obj.delete', ref: refOf(rs), ...(rs.metadata.uid === undefined ? {} : { expectUid: rs.metadata.uid }), ...precondition(rs), propagation: 'Background' }, replicaSet: rs.metadata.name ?? '' })
    }
    if (plan.annotations !== null) {
      const d = plan.deployment
      out.push({ plan, command: { op: 'obj.update', object: { ...d, metadata: { ...d.metadata, annotations: plan.annotations } }, ...precondition(d) }, replicaSet: '' })
    }
    return out
  }

  /** The plan's events, each once the write it tells of succeeded. */
  private tell(plan: DeploymentPlan, writes: readonly Write[], outcomes: readonly BatchOutcome[]): Promise<void>[] {
    const out: Promise<void>[] = []
    for (const event of plan.events) {
      const k = writes.findIndex((w) => w.plan === plan && w.replicaSet === event.replicaSet)
      if (k >= 0 && outcomes[k]?.ok === true) out.push(this.ctx.events.record(plan.deployment, event.type, event.reason, event.message))
    }
    writes.forEach((w, k) => {
      const outcome = outcomes[k]
      if (w.plan !== plan || outcome === undefined || outcome.ok || w.command.op !== 'obj.create') return
      if ('failure' in outcome && outcome.failure.reason === 'AlreadyExists') return
      out.push(this.ctx.events.record(plan.deployment, 'Warning', 'FailedCreate', `Failed to create new replica set ${JSON.stringify(w.replicaSet)}: ${failureMessage(outcome)}`))
    })
    return out
  }
}
