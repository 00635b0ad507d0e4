// NodeReady / NodeNotReady events, as Kubernetes' node lifecycle controller
// records them ("Node NAME status is now: NodeNotReady", type Normal), when a
// Node's Ready condition crosses between True and not True. Node lifecycle
// writes the conditions; this controller watches them change in the store.
// A leader remembers the Ready status it last saw per Node and records the
// changes it sees. A fresh leader starts from the current state, except for a
// change of the last few seconds that no Event tells of yet (the old leader
// wrote it and died). A peer that leads again after a gap may remember a
// stale status, so then it first checks the store for the same Event written
// since it last looked (by the leader in between).
import type { ControlContext } from '../control/controllers.js'
import { eventName } from '../control/events.js'
import type { Controller } from '../control/leader-loop.js'
import { nodeKind } from '../kinds/cluster.js'
import type { ApiObject } from '../kinds/meta.js'
import type { NodeCondition } from '../nodes/readiness.js'

/** The Ready condition of a Node, if it has one yet. */
export function readyCondition(node: ApiObject): NodeCondition | undefined {
  const conditions = ((node.status ?? {}) as { conditions?: NodeCondition[] }).conditions ?? []
  return conditions.find((c) => c.type === 'Ready')
}

/** Rounds run at least every second while leading; a longer gap means this peer stopped leading meanwhile. */
export const leadershipGapMs = 3000

/** A fresh leader still tells of a change it did not see if it is this recent and nobody told of it. */
export const recentChangeMs = 10_000

interface Seen {
  ready: boolean
  atMs: number
}

export class NodeReadyEvents implements Controller {
  readonly name = 'node-events'
  /** Node uid -> whether its Ready condition was True when last seen, and when (one entry per existing Node). */
  private readonly seen = new Map<string, Seen>()

  constructor(private readonly ctx: ControlContext) {}

  async round(): Promise<void> {
    const nowMs = this.ctx.nowMs()
    const records: Promise<void>[] = []
    const present = new Set<string>()
    for (const node of this.ctx.store.list(nodeKind)) {
      const uid = node.metadata.uid ?? node.metadata.name ?? ''
      const ready = readyCondition(node)
      if (ready === undefined) continue
      present.add(uid)
      const isReady = ready.status === 'True'
      const previous = this.seen.get(uid)
      this.seen.set(uid, { ready: isReady, atMs: nowMs })
      if (previous?.ready === isReady) continue
      const reason = isReady ? 'NodeReady' : 'NodeNotReady'
      const message = `Node ${node.metadata.name} status is now: ${reason}`
      if (this.tells(node, ready, previous, nowMs, reason, message)) records.push(this.ctx.events.record(node, 'Normal', reason, message))
    }
    for (const uid of this.seen.keys()) if (!present.has(uid)) this.seen.delete(uid)
    await Promise.all(records)
  }

  /** Whether a Ready status differing from what this leader last saw (if anything) is a change to record. */
  private tells(node: ApiObject, ready: NodeCondition, previous: Seen | undefined, nowMs: number, reason: string, message: string): boolean {
    if (previous === undefined) {
      // First sight (a fresh leader, a new Node): only a change of the last moments, after the Node was
      // created, that no Event tells of: the leader that wrote it died before telling (its own Node going Unknown).
      const transitionMs = Date.parse(ready.lastTransitionTime)
      const recent = nowMs - transitionMs <= recentChangeMs && transitionMs > Date.parse(node.metadata.creationTimestamp ?? '')
      return recent && !this.recordedSince(node, reason, message, transitionMs)
    }
    // In step with every round, the memory is right; after a gap, the leader in between may have told.
    return nowMs - previous.atMs <= leadershipGapMs || !this.recordedSince(node, reason, message, previous.atMs)
  }

  /** The same Event was recorded at or after `sinceMs` (Event times are whole seconds). */
  private recordedSince(node: ApiObject, reason: string, message: string, sinceMs: number): boolean {
    const name = eventName(node, 'Normal', reason, message)
    const event = this.ctx.store.get({ apiVersion: 'v1', kind: 'Event', namespace: node.metadata.namespace ?? 'default', name }) as (ApiObject & { lastTimestamp?: string }) | undefined
    if (event?.lastTimestamp === undefined) return false
    return Date.parse(event.lastTimestamp) >= Math.floor(sinceMs / 1000) * 1000
  }
}
