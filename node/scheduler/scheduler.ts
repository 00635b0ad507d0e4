// The scheduler, run by the leader: every round it plans all pending pods
// against the nodes and what is bound to them, and writes the bindings, up to
// 256 pods per Raft entry. A binding sets `spec.nodeName` on the pod's
// resourceVersion, so a pod changed meanwhile (or bound by a previous leader's
// late entry) is not bound twice: the conflict fails that one update and the
// next round plans again. The PodScheduled condition lives in the status,
// which a plain update keeps, so it follows in a second entry on the version
// the binding produced (a status command in the same entry could not be made
// conditional on the binding having succeeded). A pod that fits nowhere stays
// Pending with a FailedScheduling event, re-recorded only when its reason
// changes or a minute has passed, so a round that changes nothing writes nothing.
import { submit } from '../api/submit.js'
import { submitInBatches } from '../controllers/batches.js'
import type { ControlContext } from '../control/controllers.js'
import { EventRecorder, type EventType } from '../control/events.js'
import type { Controller } from '../control/leader-loop.js'
import type { ApiObject } from '../kinds/meta.js'
import type { StoreCommand } from '../store/commands.js'
import { planBindings, type Binding, type Unschedulable } from './plan.js'
import { SchedulerPodIndex } from './pod-index.js'
import { isFinished, podSpec } from './snapshot.js'

/** Pods bound per Raft entry. */
export const bindingsPerEntryMax = 256
/** Pods bound per round (as many as the RC controller creates in one); the rest wait for the next round, which the bindings trigger. */
export const bindingsPerRoundMax = 2000
/** FailedScheduling events recorded at once. */
export const eventsInFlightMax = 256
/** An unchanged FailedScheduling is recorded again (its count goes up) after this long. */
export const failureRepeatMs = 60_000

export const schedulerName = 'default-scheduler'

interface PodCondition {
  type?: string
  status?: string
  reason?: string
  message?: string
  lastProbeTime?: string | null
  lastTransitionTime?: string
}

interface PodStatusView {
  conditions?: PodCondition[]
}

interface EventToRecord {
  pod: ApiObject
  type: EventType
  reason: string
  message: string
}

/** Ours to place: not bound, not being deleted, not finished, and for this scheduler. */
export function isPending(pod: ApiObject): boolean {
  const spec = podSpec(pod) as { nodeName?: string; schedulerName?: string }
  if ((spec.nodeName ?? '') !== '' || pod.metadata.deletionTimestamp !== undefined || isFinished(pod)) return false
  return spec.schedulerName === undefined || spec.schedulerName === '' || spec.schedulerName === schedulerName
}

export class Scheduler implements Controller {
  readonly name = 'scheduler'
  private readonly events: EventRecorder
  /** The FailedScheduling last recorded per unschedulable pod (uid); only pods still unschedulable are kept. */
  private readonly lastFailure = new Map<string, { message: string; atMs: number }>()
  /** Pending and bound pods, from the change feed; rebuilt from the store in every term this peer leads. */
  private readonly pods: SchedulerPodIndex

  constructor(private readonly ctx: ControlContext) {
    this.pods = new SchedulerPodIndex(ctx.store, isPending)
    // Events come from "default-scheduler", as kubectl describe shows them in Kubernetes.
    // A round tells of all its bindings at once (their Scheduled events go out together, 256 an entry): the recorder must take them all.
    this.events = new EventRecorder({ store: ctx.store, submitter: ctx.submitter, source: { component: schedulerName, host: '' }, nowIso: ctx.nowIso, pendingMax: bindingsPerRoundMax + eventsInFlightMax })
  }

  /** A new term: the next round reads the store afresh. */
  leadershipStarted(): void {
    this.pods.stop()
  }

  leadershipEnded(): void {
    this.pods.stop()
  }

  async round(): Promise<void> {
    const { store, kinds } = this.ctx
    const podKind = kinds.byKind('v1', 'Pod')
    const nodeKind = kinds.byKind('v1', 'Node')
    if (podKind === undefined || nodeKind === undefined) return
    if (!this.pods.running) this.pods.start()
    if (this.pods.pending.size === 0) {
      this.lastFailure.clear()
      return
    }
    const plan = planBindings(store.list(nodeKind), [...this.pods.bound.values()], [...this.pods.pending.values()])
    await this.bind(plan.bindings.slice(0, bindingsPerRoundMax))
    await Promise.all([this.reportFailures(plan.unschedulable), this.markUnschedulable(plan.unschedulable)])
  }

  /** Entries go out together (pipelined through Raft), not one after another. */
  private async bind(bindings: readonly Binding[]): Promise<void> {
    const chunks: Binding[][] = []
    for (let start = 0; start < bindings.length; start += bindingsPerEntryMax) chunks.push(bindings.slice(start, start + bindingsPerEntryMax))
    await Promise.all(chunks.map((chunk) => this.bindChunk(chunk)))
  }

  private async bindChunk(chunk: readonly Binding[]): Promise<void> {
    const commands: StoreCommand[] = chunk.map(({ pod, nodeName }) => ({
      op: 'obj.update',
      object: { ...pod, spec: { ...(pod.spec as object), nodeName } },
      ...(pod.metadata.resourceVersion === undefined ? {} : { expectResourceVersion: pod.metadata.resourceVersion }),
    }))
    const result = await submit(this.ctx.submitter, { op: 'obj.batch', commands })
    const boundPods: ApiObject[] = []
    const scheduled: EventToRecord[] = []
    result.outcomes.forEach((outcome, k) => {
      if (!outcome.ok || outcome.object === null) return
      const { pod, nodeName } = chunk[k]!
      boundPods.push(outcome.object)
      scheduled.push({ pod, type: 'Normal', reason: 'Scheduled', message: `Successfully assigned ${pod.metadata.namespace ?? 'default'}/${pod.metadata.name} to ${nodeName}` })
    })
    await Promise.all([this.markScheduled(boundPods, String(result.index)), this.record(scheduled)])
  }

  /** PodScheduled=True on pods just bound in the entry at `version` (a pod changed since keeps its status). */
  private async markScheduled(pods: readonly ApiObject[], version: string): Promise<void> {
    if (pods.length === 0) return
    const now = this.ctx.nowIso().replace(/\.\d+Z$/, 'Z')
    const commands: StoreCommand[] = pods.map((pod) => {
      const status = (pod.status ?? {}) as PodStatusView & Record<string, unknown>
      const conditions = (status.conditions ?? []).filter((c) => c.type !== 'PodScheduled')
      conditions.push({ type: 'PodScheduled', status: 'True', lastTransitionTime: now })
      return { op: 'obj.update', subresource: 'status', object: { ...pod, status: { ...status, conditions } }, expectResourceVersion: version }
    })
    await submit(this.ctx.submitter, { op: 'obj.batch', commands })
  }

  /**
   * PodScheduled=False, reason Unschedulable, with the FailedScheduling message, as kube-scheduler
   * sets it; written only where the pod does not say so already, so a pod that keeps waiting costs no writes.
   */
  private async markUnschedulable(unschedulable: readonly Unschedulable[]): Promise<void> {
    const now = this.ctx.nowIso().replace(/\.\d+Z$/, 'Z')
    const commands: StoreCommand[] = []
    for (const { pod, message } of unschedulable) {
      const status = (pod.status ?? {}) as PodStatusView & Record<string, unknown>
      const current = (status.conditions ?? []).find((c) => c.type === 'PodScheduled')
      if (current?.status === 'False' && current.reason === 'Unschedulable' && current.message === message) continue
      const lastTransitionTime = current?.status === 'False' && current.lastTransitionTime !== undefined ? current.lastTransitionTime : now
      const condition: PodCondition = { type: 'PodScheduled', status: 'False', lastProbeTime: null, lastTransitionTime, reason: 'Unschedulable', message }
      const conditions = [...(status.conditions ?? []).filter((c) => c.type !== 'PodScheduled'), condition]
      commands.push({ op: 'obj.update', subresource: 'status', object: { ...pod, status: { ...status, conditions } }, ...(pod.metadata.resourceVersion === undefined ? {} : { expectResourceVersion: pod.metadata.resourceVersion }) })
    }
    // A conflict (the pod changed meanwhile) is retried by the next round, which that change triggers.
    if (commands.length > 0) await submitInBatches(this.ctx.submitter, commands)
  }

  private async reportFailures(unschedulable: readonly Unschedulable[]): Promise<void> {
    const nowMs = this.ctx.nowMs()
    const stillFailing = new Set<string>()
    const toRecord: EventToRecord[] = []
    for (const { pod, message } of unschedulable) {
      const uid = pod.metadata.uid ?? `${pod.metadata.namespace}/${pod.metadata.name}`
      stillFailing.add(uid)
      const last = this.lastFailure.get(uid)
      if (last !== undefined && last.message === message && nowMs - last.atMs < failureRepeatMs) continue
      this.lastFailure.set(uid, { message, atMs: nowMs })
      toRecord.push({ pod, type: 'Warning', reason: 'FailedScheduling', message })
    }
    for (const uid of this.lastFailure.keys()) if (!stillFailing.has(uid)) this.lastFailure.delete(uid)
    await this.record(toRecord)
  }

  private async record(events: readonly EventToRecord[]): Promise<void> {
    for (let start = 0; start < events.length; start += eventsInFlightMax) {
      await Promise.all(events.slice(start, start + eventsInFlightMax).map((e) => this.events.record(e.pod, e.type, e.reason, e.message)))
    }
  }
}
