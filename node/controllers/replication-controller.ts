// The ReplicationController controller, run by the leader. Every round starts
// from the store: plan (replication.ts), then adopt, release, create and
// delete in batched Raft entries, then write each controller's status when it
// changed. A round that has nothing to do writes nothing.
import { prepareCreate } from '../api/prepare.js'
import type { KindDefinition } from '../kinds/kind.js'
import type { ApiObject } from '../kinds/meta.js'
import { refOf, type StoreCommand } from '../store/commands.js'
import type { ControlContext } from '../control/controllers.js'
import type { Controller } from '../control/leader-loop.js'
import { catchUp, failureMessage, submitInBatches, type BatchOutcome } from './batches.js'
import { podsByController } from './store-scan.js'
import { createsPerRoundMax, deletesPerRoundMax, planReplication, podBodyFromTemplate, replicationStatus, sameStatus, type PodObject, type RcObject, type ReplicationPlan } from './replication.js'

/** What one command of a round was for, to tell its outcome as an event. */
interface Intent {
  rc: RcObject
  what: 'create' | 'delete' | 'update'
  podName: string
}

/** Controllers whose last FailedCreate message we remember (so a broken template is told once, not every round). */
const failureNotesMax = 10_000

export class ReplicationManager implements Controller {
  readonly name = 'replication'
  private readonly podKind: KindDefinition
  private readonly rcKind: KindDefinition
  /** rc uid -> the last FailedCreate message recorded for it. */
  private readonly failureNotes = new Map<string, string>()

  constructor(private readonly ctx: ControlContext) {
    this.podKind = kindOf(ctx, 'Pod')
    this.rcKind = kindOf(ctx, 'ReplicationController')
  }

  async round(): Promise<void> {
    let plans = this.plan()
    if (plans.some((p) => p.createCount > 0 || p.remove.length > 0)) {
      // Creating and deleting are not idempotent: decide them on a store that has caught up.
      await catchUp(this.ctx.submitter)
      plans = this.plan()
    }
    if (plans.some((p) => p.createCount > 0 || p.remove.length > 0 || p.adopt.length > 0 || p.release.length > 0)) await this.execute(plans)
    await this.writeStatuses()
  }

  /**
   * Every controller's plan, from the pods it controls and the orphans of its
   * namespace (one pass over the pods); a pod adopted by one controller is not
   * offered to the next (overlapping selectors).
   */
  private plan(): ReplicationPlan[] {
    const rcs = this.ctx.store.list(this.rcKind) as RcObject[]
    if (rcs.length === 0) return []
    const { controlled, orphans } = podsByController<PodObject>(this.ctx.store)
    const adopted = new Set<string>()
    let creates = createsPerRoundMax
    let deletes = deletesPerRoundMax
    return rcs.map((rc) => {
      const candidates = [...(controlled.get(rc.metadata.uid ?? '') ?? []), ...(orphans.get(rc.metadata.namespace ?? '') ?? []).filter((p) => !adopted.has(p.metadata.uid ?? ''))]
      const plan = planReplication(rc, candidates)
      for (const p of plan.adopt) adopted.add(p.metadata.uid ?? '')
      plan.createCount = Math.min(plan.createCount, creates)
      plan.remove = plan.remove.slice(0, deletes)
      creates -= plan.createCount
      deletes -= plan.remove.length
      return plan
    })
  }

  private async execute(plans: ReplicationPlan[]): Promise<void> {
    const commands: StoreCommand[] = []
    const intents: Intent[] = []
    const add = (command: StoreCommand, intent: Intent): void => {
      commands.push(command)
      intents.push(intent)
    }
    const failures: Promise<void>[] = []
    for (const plan of plans) {
      const { rc } = plan
      for (const pod of [...plan.adopt, ...plan.release]) {
        add({ op: 'obj.update', object: pod, ...(pod.metadata.resourceVersion === undefined ? {} : { expectResourceVersion: pod.metadata.resourceVersion }) }, { rc, what: 'update', podName: pod.metadata.name ?? '' })
      }
      for (const pod of this.newPods(plan, failures)) add({ op: 'obj.create', object: pod }, { rc, what: 'create', podName: pod.metadata.name ?? '' })
      for (const pod of plan.remove) {
        add({ op: 'obj.delete', ref: refOf(pod), ...(pod.metadata.uid === undefined ? {} : { expectUid: pod.metadata.uid }), propagation: 'Background' }, { rc, what: 'delete', podName: pod.metadata.name ?? '' })
      }
    }
    const outcomes = await submitInBatches(this.ctx.submitter, commands)
    await Promise.all([...failures, ...outcomes.map((o, k) => this.tell(intents[k]!, o))])
  }

  /** The replicas to create for `plan`, as the API would make them; a template the API refuses is told once as FailedCreate. */
  private newPods(plan: ReplicationPlan, failures: Promise<void>[]): ApiObject[] {
    const out: ApiObject[] = []
    const namespace = plan.rc.metadata.namespace
    try {
      for (let k = 0; k < plan.createCount; k++) out.push(prepareCreate(this.podKind, podBodyFromTemplate(plan.rc), namespace, 'Strict', this.ctx.nowIso()).object)
    } catch (err) {
      failures.push(this.failedCreate(plan.rc, (err as Error).message))
    }
    return out
  }

  private async tell(intent: Intent, outcome: BatchOutcome): Promise<void> {
    const { rc, what, podName } = intent
    if (what === 'create') {
      if (outcome.ok) {
        this.failureNotes.delete(rc.metadata.uid ?? '')
        await this.ctx.events.record(rc, 'Normal', 'SuccessfulCreate', `Created pod: ${podName}`)
      } else await this.failedCreate(rc, failureMessage(outcome))
    } else if (what === 'delete' && outcome.ok) {
      await this.ctx.events.record(rc, 'Normal', 'SuccessfulDelete', `Deleted pod: ${podName}`)
    }
  }

  private async failedCreate(rc: RcObject, message: string): Promise<void> {
    const uid = rc.metadata.uid ?? ''
    const text = `Error creating: ${message}`
    if (this.failureNotes.get(uid) === text) return
    if (this.failureNotes.size >= failureNotesMax) this.failureNotes.clear()
    this.failureNotes.set(uid, text)
    await this.ctx.events.record(rc, 'Warning', 'FailedCreate', text)
  }

  /** Each controller's status from the store as it is now (after this round's writes), written only where it changed. */
  private async writeStatuses(): Promise<void> {
    const rcs = this.ctx.store.list(this.rcKind) as RcObject[]
    if (rcs.length === 0) return
    const { controlled } = podsByController<PodObject>(this.ctx.store)
    const nowMs = this.ctx.nowMs()
    const commands: StoreCommand[] = []
    for (const rc of rcs) {
      const status = replicationStatus(rc, controlled.get(rc.metadata.uid ?? '') ?? [], nowMs)
      if (sameStatus(rc.status, status)) continue
      const updated: ApiObject = { ...rc, status }
      commands.push({ op: 'obj.update', object: updated, subresource: 'status', ...(rc.metadata.resourceVersion === undefined ? {} : { expectResourceVersion: rc.metadata.resourceVersion }) })
    }
    // A conflict (the controller changed meanwhile) is retried by the next round, which its change triggers.
    if (commands.length > 0) await submitInBatches(this.ctx.submitter, commands)
  }
}

function kindOf(ctx: ControlContext, kind: string): KindDefinition {
  const def = ctx.kinds.byKind('v1', kind)
  if (def === undefined) throw new Error(`the ${kind} kind is not registered`)
  return def
}
