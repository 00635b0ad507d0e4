// An in-memory network in virtual time: every message goes through the real
// codec, then may be delayed, reordered, duplicated, lost or cut by a partition.
import { decodeMessage, encodeMessage } from '../../consensus/codec.js'
import { MessageType, type Message, type NodeId } from '../../consensus/types.js'
import type { EventQueue } from './event-queue.js'
import type { Rng } from './rng.js'

export interface NetworkFaults {
  dropProbability: number
  duplicateProbability: number
  delayMinMs: number
  delayMaxMs: number
  /** Chance a message is held back much longer than the rest (reordering). */
  longDelayProbability: number
  longDelayMaxMs: number
}

export const reliableNetwork: NetworkFaults = {
  dropProbability: 0,
  duplicateProbability: 0,
  delayMinMs: 0.2,
  delayMaxMs: 2,
  longDelayProbability: 0,
  longDelayMaxMs: 0,
}

/** Messages that start an exchange (the lab's "RPCs"); their answers are not counted. */
const requestTypes = new Set<MessageType>([
  MessageType.App,
  MessageType.Vote,
  MessageType.PreVote,
  MessageType.Heartbeat,
  MessageType.Snap,
  MessageType.TimeoutNow,
  MessageType.ReadIndex,
])

export class SimNetwork {
  faults: NetworkFaults = { ...reliableNetwork }
  private readonly blocked = new Set<string>()
  /** Nodes cut off from everyone (the lab's disconnect), independent of partitions. */
  private readonly isolated = new Set<NodeId>()
  bytesSent = 0
  messagesSent = 0
  readonly requestsSentBy = new Map<NodeId, number>()

  constructor(
    private readonly queue: EventQueue,
    private readonly rng: Rng,
    private readonly deliver: (m: Message) => void,
  ) {}

  send(m: Message): void {
    const bytes = encodeMessage(m)
    this.bytesSent += bytes.byteLength
    this.messagesSent++
    if (requestTypes.has(m.type)) this.requestsSentBy.set(m.from, (this.requestsSentBy.get(m.from) ?? 0) + 1)
    if (!this.canReach(m.from, m.to)) return
    if (this.rng.chance(this.faults.dropProbability)) return
    this.schedule(bytes)
    if (this.rng.chance(this.faults.duplicateProbability)) this.schedule(bytes)
  }

  private schedule(bytes: Uint8Array): void {
    const f = this.faults
    let delay = f.delayMinMs + this.rng.next() * (f.delayMaxMs - f.delayMinMs)
    if (f.longDelayProbability > 0 && this.rng.chance(f.longDelayProbability)) delay += this.rng.next() * f.longDelayMaxMs
    this.queue.schedule(delay, () => {
      const m = decodeMessage(bytes)
      // A link cut while the message was in flight loses it too.
      if (this.canReach(m.from, m.to)) this.deliver(m)
    })
  }

  canReach(from: NodeId, to: NodeId): boolean {
    return !this.isolated.has(from) && !this.isolated.has(to) && !this.blocked.has(`${from}>${to}`)
  }

  /** Cut one direction only (asymmetric partitions). */
  blockOneWay(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`)
  }

  /** Only nodes in the same group can talk. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    this.blocked.clear()
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue
        for (const x of a) for (const y of b) this.blocked.add(`${x}>${y}`)
      }
    }
  }

  disconnect(id: NodeId): void {
    this.isolated.add(id)
  }

  connect(id: NodeId): void {
    this.isolated.delete(id)
  }

  isConnected(id: NodeId): boolean {
    return !this.isolated.has(id)
  }

  heal(): void {
    this.blocked.clear()
    this.isolated.clear()
  }

  requestCount(): number {
    let total = 0
    for (const n of this.requestsSentBy.values()) total += n
    return total
  }
}
