// Pod eviction: once a Node's Ready condition has not been True for the
// eviction timeout (`--pod-eviction-timeout`, 5 s by default, against
// Kubernetes' 5 minutes: gossip detects a dead peer in seconds), the pods
// bound to it are deleted so their controllers replace them elsewhere. The
// clock is the condition's lastTransitionTime, in the store, so a new leader
// carries on the same clock rather than starting a fresh one. Pods bound to a
// Node that no longer exists (its peer left) are deleted the same way.
//
// Like Kubernetes' taint manager, a pod that tolerates the NoExecute taint the
// condition stands for (`node.kubernetes.io/not-ready` for False,
// `node.kubernetes.io/unreachable` for Unknown) stays: for its
// tolerationSeconds, or for ever without them. Finished pods stay too.
import { submit } from '../api/submit.js'
import type { ControlContext } from '../control/controllers.js'
import type { Controller, RoundResult } from '../control/leader-loop.js'
import { nodeKind } from '../kinds/cluster.js'
import type { ApiObject } from '../kinds/meta.js'
import { podKind } from '../kinds/workloads.js'
import { refOf, type StoreCommand } from '../store/commands.js'
import { readyCondition } from './node-events.js'

export const defaultPodEvictionTimeoutMs = 5000
/** Pods deleted per round, in one Raft entry; the next round takes the rest. */
export const evictionsPerRoundMax = 256
/** Every pod is read at least this often (Nodes gone, tolerationSeconds); otherwise only when a Node is past the timeout. */
export const missingNodeScanEveryMs = 2000

export interface Toleration {
  key?: string
  operator?: string
  value?: string
  effect?: string
  tolerationSeconds?: number
}

interface PodView {
  spec?: { nodeName?: string; tolerations?: Toleration[] }
  status?: { phase?: string }
}

/** The NoExecute taint Kubernetes puts on a Node whose Ready condition has this status. */
export function taintKeyOf(readyStatus: string): string {
  return readyStatus === 'False' ? 'node.kubernetes.io/not-ready' : 'node.kubernetes.io/unreachable'
}

function tolerates(t: Toleration, taintKey: string): boolean {
  if (t.effect !== undefined && t.effect !== '' && t.effect !== 'NoExecute') return false
  if (t.operator === 'Exists') return t.key === undefined || t.key === '' || t.key === taintKey
  return t.key === taintKey && (t.value ?? '') === ''
}

/**
 * How long `pod` may stay on a Node carrying `taintKey` before it is evicted:
 * the shortest tolerationSeconds among the tolerations that match, null (for
 * ever) when one matches without a limit, `timeoutMs` when none matches.
 */
export function evictionAfterMs(tolerations: readonly Toleration[] | undefined, taintKey: string, timeoutMs: number): number | null {
  const matching = (tolerations ?? []).filter((t) => tolerates(t, taintKey))
  if (matching.length === 0) return timeoutMs
  if (matching.some((t) => t.tolerationSeconds === undefined)) return null
  return Math.max(0, Math.min(...matching.map((t) => t.tolerationSeconds!))) * 1000
}

function finished(pod: ApiObject): boolean {
  const phase = (pod as ApiObject & PodView).status?.phase
  return phase === 'Succeeded' || phase === 'Failed'
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10}s`
}

interface Eviction {
  pod: ApiObject
  message: string
}

export class PodEviction implements Controller {
  readonly name = 'pod-eviction'
  /** Names of missing Nodes that pods are still bound to -> when this leader first saw them missing. */
  private readonly missingSinceMs = new Map<string, number>()
  /** Nodes past the timeout (`name@lastTransitionTime`) whose last scan found nothing to evict: no need to read every pod each round. */
  private cleared = new Set<string>()
  private lastScanMs = -Infinity

  constructor(
    private readonly ctx: ControlContext,
    private readonly timeoutMs: number = defaultPodEvictionTimeoutMs,
  ) {}

  /** Evicts what is due, and asks for the next round when the next Node's timeout runs out, so eviction is on time rather than up to a round late. */
  async round(): Promise<RoundResult> {
    const nowMs = this.ctx.nowMs()
    const nodes = new Map(this.ctx.store.list(nodeKind).map((n) => [n.metadata.name ?? '', n]))
    await this.evictDue(nodes, nowMs)
    return this.nextDeadline(nodes, nowMs)
  }

  /** The earliest time a not-ready or missing Node's timeout runs out, still ahead. */
  private nextDeadline(nodes: ReadonlyMap<string, ApiObject>, nowMs: number): RoundResult {
    let nextMs = Infinity
    for (const node of nodes.values()) {
      const notReadyMs = this.notReadyForMs(node, nowMs)
      if (notReadyMs >= 0 && notReadyMs < this.timeoutMs) nextMs = Math.min(nextMs, nowMs - notReadyMs + this.timeoutMs)
    }
    for (const sinceMs of this.missingSinceMs.values()) if (sinceMs + this.timeoutMs > nowMs) nextMs = Math.min(nextMs, sinceMs + this.timeoutMs)
    return nextMs === Infinity ? {} : { nextRoundAtMs: nextMs }
  }

  private async evictDue(nodes: ReadonlyMap<string, ApiObject>, nowMs: number): Promise<void> {
    const overdue = [...nodes.values()].filter((n) => this.notReadyForMs(n, nowMs) >= this.timeoutMs).map((n) => `${n.metadata.name}@${readyCondition(n)!.lastTransitionTime}`)
    // Tolerations with their own seconds and vanished Nodes are caught by the periodic scan.
    if (overdue.every((key) => this.cleared.has(key)) && nowMs - this.lastScanMs < missingNodeScanEveryMs) return
    this.lastScanMs = nowMs
    const evictions = this.evictions(nodes, nowMs)
    const evictedFrom = new Set(evictions.map((e) => (e.pod as ApiObject & PodView).spec?.nodeName))
    this.cleared = new Set(evictions.length >= evictionsPerRoundMax ? [] : overdue.filter((key) => !evictedFrom.has(key.slice(0, key.lastIndexOf('@')))))
    if (evictions.length === 0) return
    const commands: StoreCommand[] = evictions.map(({ pod }) => ({ op: 'obj.delete', ref: refOf(pod), ...(pod.metadata.uid === undefined ? {} : { expectUid: pod.metadata.uid }), propagation: 'Background' }))
    const result = await submit(this.ctx.submitter, { op: 'obj.batch', commands })
    // A pod already gone (deleted meanwhile) fails only its own command: nothing to tell about it.
    await Promise.all(evictions.filter((_, k) => result.outcomes[k]?.ok === true).map(({ pod, message }) => this.ctx.events.record(pod, 'Normal', 'Evicted', message)))
  }

  /** How long past its lastTransitionTime a not-Ready Node is (negative: Ready, or no condition yet). */
  private notReadyForMs(node: ApiObject, nowMs: number): number {
    const ready = readyCondition(node)
    if (ready === undefined || ready.status === 'True') return -1
    const since = Date.parse(ready.lastTransitionTime)
    return Number.isNaN(since) ? -1 : nowMs - since
  }

  private evictions(nodes: ReadonlyMap<string, ApiObject>, nowMs: number): Eviction[] {
    const out: Eviction[] = []
    const missing = new Set<string>()
    for (const pod of this.ctx.store.list(podKind)) {
      if (out.length >= evictionsPerRoundMax) break
      const { spec } = pod as ApiObject & PodView
      const nodeName = spec?.nodeName
      if (nodeName === undefined || nodeName === '' || finished(pod)) continue
      const where = `Marking for deletion Pod ${pod.metadata.namespace}/${pod.metadata.name}: node ${nodeName}`
      const node = nodes.get(nodeName)
      if (node === undefined) {
        missing.add(nodeName)
        const since = this.missingSinceMs.get(nodeName) ?? nowMs
        this.missingSinceMs.set(nodeName, since)
        if (nowMs - since >= this.timeoutMs) out.push({ pod, message: `${where} no longer exists` })
        continue
      }
      const notReadyMs = this.notReadyForMs(node, nowMs)
      if (notReadyMs < 0) continue
      const limitMs = evictionAfterMs(spec?.tolerations, taintKeyOf(readyCondition(node)!.status), this.timeoutMs)
      if (limitMs !== null && notReadyMs >= limitMs) out.push({ pod, message: `${where} not ready for ${seconds(limitMs)}` })
    }
    // Forget Nodes no pod names any more (a scan cut short by the bound keeps them all).
    if (out.length < evictionsPerRoundMax) for (const name of this.missingSinceMs.keys()) if (!missing.has(name)) this.missingSinceMs.delete(name)
    return out
  }
}
