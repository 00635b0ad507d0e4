// The ReplicationController and ReplicaSet controllers, run by the leader: one
// instance per kind, the same code (the selector is the only difference, and
// replication.ts reads it from the object). Every round starts from the store:
// plan (replication.ts), then adopt, release, create and delete in batched Raft
// entries, then write each controller's status when it changed. A round that
// has nothing to do writes nothing.
import { prepareCreate } from '../api/prepare.js'
import type { KindDefinition } from '../kinds/kind.js'
import type { ApiObject } from '../kinds/meta.js'
import { refOf, type StoreCommand } from '../store/commands.js'
import type { ControlContext } from '../control/controllers.js'
import type { Controller, RoundResult } from '../control/leader-loop.js'
import { catchUp, failureMessage, submitInBatches, type BatchOutcome } from './batches.js'
import { ReplicaIndex } from './replica-index.js'
import { createsPerRoundMax, deletesPerRoundMax, nextAvailableAtMs, planReplication, podBodyFromTemplate, replicationStatus, sameStatus, statusFromCounts, type RcObject, type ReplicationPlan } from './replication.js'

/** What one command of a round was for, to tell its outcome as an event. */
interface Intent {
  rc: RcObject
  what: 'create' | 'delete' | 'update'
  podName: string
}

/** Replicas built between turns of the event loop. */
const buildSlicePods = 500
/** Controllers whose last FailedCreate message we remember (so a broken template is told once, not every round). */
const failureNotesMax = 10_000

/** Which kind an instance controls, and the controller's name in the leader loop. */
export interface ReplicatedKind {
  apiVersion: string
  kind: string
  name: string
}

export const replicationControllers: ReplicatedKind = { apiVersion: 'v1', kind: 'ReplicationController', name: 'replication' }
export const replicaSets: ReplicatedKind = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'replicaset' }

export class ReplicationManager implements Controller {
  readonly name: string
  private readonly podKind: KindDefinition
  private readonly rcKind: KindDefinition
  /** rc uid -> the last FailedCreate message recorded for it. */
  private readonly failureNotes = new Map<string, string>()
  /** Each controller's pods, from the change feed; rebuilt from the store in every term this peer leads. */
  private readonly index: ReplicaIndex

  constructor(
    private readonly ctx: ControlContext,
    controlled: ReplicatedKind = replicationControllers,
  ) {
    this.name = controlled.name
    this.podKind = kindOf(ctx, 'v1', 'Pod')
    this.rcKind = kindOf(ctx, controlled.apiVersion, controlled.kind)
    this.index = new ReplicaIndex(ctx.store)
  }

  /**
   * The store holds everything this controller wrote: it caught up (an empty entry) in this term,
   * and every write since has an outcome. Only then are creates and deletes decided without a catch-up.
   */
  private settled = false

  /** A new term: the next round reads the store afresh, and catches up before creating or deleting. */
  leadershipStarted(): void {
    this.index.stop()
    this.settled = false
  }

  leadershipEnded(): void {
    this.index.stop()
    this.settled = false
  }

  async round(): Promise<RoundResult> {
    let plans = this.plan()
    if (!this.settled && plans.some((p) => p.createCount > 0 || p.remove.length > 0)) {
      // Creating and deleting are not idempotent: decide them on a store that has caught up.
      await catchUp(this.ctx.submitter)
      this.settled = true
      plans = this.plan()
    }
    // The events of this round's writes go out alongside the statuses, which read the store those writes made.
    const { told } = plans.some((p) => p.createCount > 0 || p.remove.length > 0 || p.adopt.length > 0 || p.release.length > 0) ? await this.execute(plans) : { told: Promise.resolve() }
    const [, nextRoundAtMs] = await Promise.all([told, this.writeStatuses()])
    return nextRoundAtMs === undefined ? {} : { nextRoundAtMs }
  }

  /**
   * Every controller's plan, from the pods it controls and the orphans of its
   * namespace; a pod adopted by one controller is not offered to the next
   * (overlapping selectors).
   */
  private plan(): ReplicationPlan[] {
    const rcs = this.rcs()
    const adopted = new Set<string>()
    let creates = createsPerRoundMax
    let deletes = deletesPerRoundMax
    return rcs.map((rc) => {
      const plan = this.planOne(rc, adopted)
      plan.createCount = Math.min(plan.createCount, creates)
      plan.remove = plan.remove.slice(0, deletes)
      creates -= plan.createCount
      deletes -= plan.remove.length
      return plan
    })
  }

  /** The controllers, with the index running (and forgetting the counts of controllers gone). */
  private rcs(): RcObject[] {
    const rcs = this.ctx.store.list(this.rcKind) as RcObject[]
    if (rcs.length === 0) {
      this.index.stop()
      return []
    }
    if (!this.index.running) this.index.start()
    this.index.keepTallies(new Set(rcs.map((rc) => rc.metadata.uid ?? '')))
    return rcs
  }

  private planOne(rc: RcObject, adopted: Set<string>): ReplicationPlan {
    const namespace = rc.metadata.namespace ?? ''
    const tally = this.index.tally(rc)
    const wanted = rc.spec?.replicas ?? 1
    // Nothing to adopt, release or choose for deletion: the counts decide what planReplication would decide from the pods.
    if (rc.metadata.deletionTimestamp === undefined && tally.release === 0 && !this.index.hasOrphans(namespace) && tally.replicas <= wanted) {
      return { rc, adopt: [], release: [], createCount: wanted - tally.replicas, remove: [] }
    }
    const orphans = [...this.index.orphans(namespace)].filter((p) => !adopted.has(p.metadata.uid ?? ''))
    const plan = planReplication(rc, [...this.index.controlledBy(rc.metadata.uid ?? ''), ...orphans])
    for (const p of plan.adopt) adopted.add(p.metadata.uid ?? '')
    return plan
  }

  /** Submits the round's writes; resolves, once they are applied, with the promise of their events. */
  private async execute(plans: ReplicationPlan[]): Promise<{ told: Promise<void> }> {
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
      for (const pod of await this.newPods(plan, failures)) add({ op: 'obj.create', object: pod }, { rc, what: 'create', podName: pod.metadata.name ?? '' })
      for (const pod of plan.remove) {
        add({ op: 'obj.delete', ref: refOf(pod), ...(pod.metadata.uid === undefined ? {} : { expectUid: pod.metadata.uid }), propagation: 'Background' }, { rc, what: 'delete', podName: pod.metadata.name ?? '' })
      }
    }
    const outcomes = await this.submit(commands)
    return { told: Promise.all([...failures, ...outcomes.map((o, k) => this.tell(intents[k]!, o))]).then(() => {}) }
  }

  /** Writes whose fate is unknown (the entry failed as a whole: it may still commit) call for a catch-up before the next creates or deletes. */
  private async submit(commands: readonly StoreCommand[]): Promise<BatchOutcome[]> {
    const outcomes = await submitInBatches(this.ctx.submitter, commands)
    if (outcomes.some((o) => !o.ok && 'error' in o)) this.settled = false
    return outcomes
  }

  /**
   * The replicas to create for `plan`, as the API would make them; a template the API refuses is told once as FailedCreate.
   * Thousands take a while: the event loop gets a turn between slices, so Raft's heartbeats are not held up.
   */
  private async newPods(plan: ReplicationPlan, failures: Promise<void>[]): Promise<ApiObject[]> {
    const out: ApiObject[] = []
    const namespace = plan.rc.metadata.namespace
    try {
      for (let k = 0; k < plan.createCount; k++) {
        if (k > 0 && k % buildSlicePods === 0) await new Promise((r) => setImmediate(r))
        out.push(prepareCreate(this.podKind, podBodyFromTemplate(plan.rc), namespace, 'Strict', this.ctx.nowIso()).object)
      }
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

  /**
   * Each controller's status from the store as it is now (after this round's writes), written only where it changed.
   * Resolves with when a ready pod next becomes available (minReadySeconds), for a round then.
   */
  private async writeStatuses(): Promise<number | undefined> {
    const rcs = this.rcs()
    const nowMs = this.ctx.nowMs()
    const commands: StoreCommand[] = []
    let wakeAtMs: number | undefined
    for (const rc of rcs) {
      const availableAtMs = nextAvailableAtMs(rc, this.index.controlledBy(rc.metadata.uid ?? ''), nowMs)
      if (availableAtMs !== undefined && (wakeAtMs === undefined || availableAtMs < wakeAtMs)) wakeAtMs = availableAtMs
      const status = this.statusOf(rc, nowMs)
      if (sameStatus(rc.status, status)) continue
      const updated: ApiObject = { ...rc, status }
      commands.push({ op: 'obj.update', object: updated, subresource: 'status', ...(rc.metadata.resourceVersion === undefined ? {} : { expectResourceVersion: rc.metadata.resourceVersion }) })
    }
    // A conflict (the controller changed meanwhile) is retried by the next round, which its change triggers.
    if (commands.length > 0) await this.submit(commands)
    return wakeAtMs
  }

  /** From the counts; only availability after minReadySeconds depends on the clock, so it reads the pods. */
  private statusOf(rc: RcObject, nowMs: number): ReturnType<typeof replicationStatus> {
    if ((rc.spec?.minReadySeconds ?? 0) > 0) return replicationStatus(rc, [...this.index.controlledBy(rc.metadata.uid ?? '')], nowMs)
    const t = this.index.tally(rc)
    return statusFromCounts(rc, { replicas: t.replicas, fullyLabeledReplicas: t.fullyLabeled, readyReplicas: t.ready, availableReplicas: t.ready })
  }
}

function kindOf(ctx: ControlContext, apiVersion: string, kind: string): KindDefinition {
  const def = ctx.kinds.byKind(apiVersion, kind)
  if (def === undefined) throw new Error(`the ${kind} kind is not registered`)
  return def
}
