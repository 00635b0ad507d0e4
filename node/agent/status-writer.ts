// The agent's pod status writes. A status set while another write is in
// flight replaces the queued one for that pod (only the newest counts), and
// everything queued goes out together: up to batchCommandsMax pods per Raft
// entry, entries sent together. 100 pods starting at once become a few
// entries, not 100 round trips. A write refused because the pod is gone or
// was replaced (another uid) is dropped; one that failed for want of a leader
// is retried after a pause, unless a newer status replaced it meanwhile.
import { submitInBatches, failureMessage } from '../controllers/batches.js'
import { batchCommandsMax, type Submitter } from '../api/submit.js'
import type { StoreCommand } from '../store/commands.js'
import type { PodJson, PodStatusJson } from './pod-types.js'

/** Pods whose status waits to be written; more are refused until the queue drains (the agent retries on its next sync). */
export const statusQueueMax = 5000
/** Pause after a write failed for want of a leader or quorum. */
export const statusRetryDelayMs = 500

interface Pending {
  pod: PodJson
  status: PodStatusJson
  json: string
}

export class PodStatusWriter {
  private readonly queued = new Map<string, Pending>()
  /** uid -> the status JSON being written now, so the same status is not queued twice. */
  private readonly inflight = new Map<string, string>()
  private flushing: Promise<void> | null = null
  private stopped = false
  /** Statuses written, for tests and metrics. */
  written = 0
  /** Raft entries those statuses took. */
  entries = 0

  constructor(private readonly options: { submitter: Submitter; onError: (message: string) => void }) {}

  /** Write `status` for `pod` unless it is what the store holds or what is already on its way. */
  set(pod: PodJson, status: PodStatusJson): boolean {
    const uid = pod.metadata.uid ?? ''
    const json = JSON.stringify(status)
    if (json === JSON.stringify(pod.status ?? {})) {
      this.queued.delete(uid)
      return true
    }
    if (this.inflight.get(uid) === json || this.queued.get(uid)?.json === json) return true
    if (!this.queued.has(uid) && this.queued.size >= statusQueueMax) return false
    this.queued.set(uid, { pod, status, json })
    this.kick()
    return true
  }

  /** Drop what is queued for a pod that is gone. */
  forget(uid: string): void {
    this.queued.delete(uid)
  }

  /** Resolves once everything queued so far was written (or dropped). */
  async drained(): Promise<void> {
    while (this.flushing !== null) await this.flushing
  }

  stop(): void {
    this.stopped = true
    this.queued.clear()
  }

  private kick(): void {
    if (this.flushing !== null || this.stopped) return
    this.flushing = this.flushAll().finally(() => {
      this.flushing = null
      if (this.queued.size > 0 && !this.stopped) this.kick()
    })
  }

  private async flushAll(): Promise<void> {
    await Promise.resolve()
    const batch = [...this.queued.values()]
    this.queued.clear()
    for (const p of batch) this.inflight.set(p.pod.metadata.uid ?? '', p.json)
    const commands: StoreCommand[] = batch.map((p) => ({ op: 'obj.update', object: { ...p.pod, status: p.status }, subresource: 'status' }))
    this.entries += Math.ceil(commands.length / batchCommandsMax)
    const outcomes = await submitInBatches(this.options.submitter, commands)
    let retry = false
    outcomes.forEach((outcome, k) => {
      const p = batch[k]!
      const uid = p.pod.metadata.uid ?? ''
      this.inflight.delete(uid)
      if (outcome.ok) {
        this.written++
        return
      }
      if ('error' in outcome) {
        // No leader or no quorum: try again, unless a newer status is queued already.
        if (!this.queued.has(uid)) this.queued.set(uid, p)
        retry = true
        return
      }
      if (outcome.failure.code !== 404 && outcome.failure.code !== 409) this.options.onError(`status of ${p.pod.metadata.namespace}/${p.pod.metadata.name}: ${failureMessage(outcome)}`)
    })
    if (retry) await new Promise((r) => setTimeout(r, statusRetryDelayMs))
  }
}
