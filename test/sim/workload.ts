// Clients of the replicated key-value store: puts and appends through
// proposals, gets through ReadIndex, each recorded with its invocation and
// response time for the linearizability check.
import type { NodeId } from '../../consensus/types.js'
import type { SimCluster } from './cluster.js'
import { encodeCommand, type KvStateMachine } from './kv.js'
import type { KvOperation, KvOperationKind } from './linearizability.js'
import type { Rng } from './rng.js'

export interface WorkloadOptions {
  clients: number
  keys: string[]
  /** A proposal or read not answered within this long has an unknown outcome. */
  opTimeoutMs: number
  /** Give up on an operation no leader accepted within this long (it had no effect). */
  giveUpMs: number
}

export interface AcknowledgedWrite {
  index: number
  term: number
  clientId: number
}

export class Workload {
  readonly history: KvOperation[] = []
  readonly acknowledged: AcknowledgedWrite[] = []
  private running = false
  private readonly targets = new Map<number, NodeId>()
  private readCounter = 0

  constructor(
    private readonly cluster: SimCluster,
    private readonly rng: Rng,
    private readonly options: WorkloadOptions,
  ) {}

  start(): void {
    this.running = true
    for (let c = 0; c < this.options.clients; c++) this.cluster.queue.schedule(this.rng.next() * 10, () => this.nextOperation(c))
  }

  stop(): void {
    this.running = false
  }

  private nextOperation(clientId: number): void {
    if (!this.running) return
    const roll = this.rng.next()
    const kind: KvOperationKind = roll < 0.35 ? 'put' : roll < 0.6 ? 'append' : 'get'
    const key = this.rng.pick(this.options.keys)
    const op: KvOperation = {
      clientId,
      kind,
      key,
      value: kind === 'get' ? '' : `c${clientId}.${this.history.length};`,
      invokeTime: this.cluster.now,
      responseTime: Infinity,
    }
    this.attempt(op, this.cluster.now)
  }

  private finish(op: KvOperation): void {
    this.history.push(op)
    this.abandon(op)
  }

  /** Move on to the client's next operation without recording this one. */
  private abandon(op: KvOperation): void {
    this.cluster.queue.schedule(this.rng.next() * 20, () => this.nextOperation(op.clientId))
  }

  /** Mostly the leader we were pointed at; sometimes any peer, so stale leaders and followers get asked too. */
  private target(clientId: number): NodeId {
    const known = this.targets.get(clientId)
    return known === undefined || this.rng.chance(0.3) ? this.rng.pick(this.cluster.ids) : known
  }

  private retry(op: KvOperation, startedAt: number, leaderHint: NodeId | null): void {
    this.targets.set(op.clientId, leaderHint ?? this.rng.pick(this.cluster.ids))
    if (this.cluster.now - startedAt > this.options.giveUpMs) {
      // Never accepted by a leader: it had no effect and constrains nothing.
      this.abandon(op)
      return
    }
    this.cluster.queue.schedule(2 + this.rng.next() * 10, () => this.attempt(op, startedAt))
  }

  private attempt(op: KvOperation, startedAt: number): void {
    const node = this.cluster.node(this.target(op.clientId))
    try {
      if (op.kind === 'get') this.attemptRead(op, node.id)
      else this.attemptWrite(op, node.id, startedAt)
    } catch (err) {
      const hint = (err as { leaderId?: NodeId | null }).leaderId ?? null
      this.retry(op, startedAt, hint)
    }
  }

  private attemptWrite(op: KvOperation, nodeId: NodeId, startedAt: number): void {
    const node = this.cluster.node(nodeId)
    let settled = false
    const data = encodeCommand({ op: op.kind === 'put' ? 'put' : 'append', key: op.key, value: op.value, clientId: op.clientId })
    const position = node.propose(data, (applied) => {
      if (settled) return
      settled = true
      if (applied) {
        op.responseTime = this.cluster.now
        this.acknowledged.push({ index: position.index, term: position.term, clientId: op.clientId })
        this.finish(op)
      } else {
        // Another entry took our index: ours can never commit, so trying again is safe.
        this.retry(op, startedAt, null)
      }
    })
    this.cluster.queue.schedule(this.options.opTimeoutMs, () => {
      if (settled) return
      settled = true
      this.finish(op) // outcome unknown: responseTime stays Infinity
    })
  }

  private attemptRead(op: KvOperation, nodeId: NodeId): void {
    const node = this.cluster.node(nodeId)
    let settled = false
    const context = new TextEncoder().encode(`read-${op.clientId}-${this.readCounter++}`)
    node.readIndex(context, () => {
      if (settled) return
      settled = true
      op.value = (node.stateMachine as KvStateMachine).get(op.key)
      op.responseTime = this.cluster.now
      this.finish(op)
    })
    this.cluster.queue.schedule(this.options.opTimeoutMs, () => {
      if (settled) return
      settled = true
      // An unanswered read constrains nothing.
      this.targets.delete(op.clientId)
      this.abandon(op)
    })
  }
}
