// Linearizable reads without writing to the log (Raft thesis §6.4): the
// leader records its commit index, confirms it is still leader with a
// heartbeat round carrying the request's context, and releases the read once
// a quorum answered. Reads are released in the order they were asked.
import type { NodeId } from './types.js'

export interface PendingRead {
  index: number
  context: Uint8Array
  /** The node that asked: the leader itself or a follower awaiting a ReadIndexResp. */
  from: NodeId
  acks: Set<NodeId>
}

export class ReadIndexQueueFullError extends Error {
  override readonly name = 'ReadIndexQueueFullError'

  constructor(limit: number) {
    super(`${limit} linearizable reads are already waiting; retry shortly`)
  }
}

export function contextKey(context: Uint8Array): string {
  let key = ''
  for (const byte of context) key += String.fromCharCode(byte)
  return key
}

export class ReadIndexQueue {
  private readonly pending = new Map<string, PendingRead>()
  private order: string[] = []

  constructor(private readonly pendingReadsMax: number) {}

  get size(): number {
    return this.pending.size
  }

  add(index: number, context: Uint8Array, from: NodeId, self: NodeId): void {
    const key = contextKey(context)
    if (this.pending.has(key)) return
    if (this.pending.size >= this.pendingReadsMax) throw new ReadIndexQueueFullError(this.pendingReadsMax)
    this.pending.set(key, { index, context, from, acks: new Set([self]) })
    this.order.push(key)
  }

  /** Record a heartbeat answer for the read with this context. */
  recordAck(from: NodeId, context: Uint8Array): void {
    this.pending.get(contextKey(context))?.acks.add(from)
  }

  acksFor(context: Uint8Array): ReadonlySet<NodeId> | undefined {
    return this.pending.get(contextKey(context))?.acks
  }

  /** Release the read with this context and every one asked before it. */
  releaseThrough(context: Uint8Array): PendingRead[] {
    const key = contextKey(context)
    const position = this.order.indexOf(key)
    if (position < 0) return []
    const released = this.order.slice(0, position + 1).map((k) => this.pending.get(k)!)
    for (const k of this.order.slice(0, position + 1)) this.pending.delete(k)
    this.order = this.order.slice(position + 1)
    return released
  }

  /** The newest read's context: one heartbeat round confirms it and all before it. */
  lastContext(): Uint8Array | undefined {
    const key = this.order[this.order.length - 1]
    return key === undefined ? undefined : this.pending.get(key)?.context
  }

  /** Leadership ended: the reads are abandoned and their askers will retry. */
  reset(): void {
    this.pending.clear()
    this.order = []
  }
}
