// A simulated cluster: nodes, network, clock and the invariant checker, all
// driven from one seed. The randomized runs and the lab scenarios build on it.
import { bootstrapState } from '../../consensus/node.js'
import type { RaftConfig } from '../../consensus/raft.js'
import type { Message, NodeId } from '../../consensus/types.js'
import { EventQueue } from './event-queue.js'
import { InvariantChecker } from './invariants.js'
import { SimNetwork } from './network.js'
import { Rng } from './rng.js'
import { SimNode, type StateMachine } from './sim-node.js'

export interface ClusterOptions {
  seed: number
  nodeCount: number
  /** How many of the nodes form the initial configuration (the rest start empty, outside it). */
  initialVoters?: number
  tickMs: number
  raft: Partial<RaftConfig>
  fsyncMinMs: number
  fsyncMaxMs: number
  snapshotEveryEntries: number
  snapshotWanted?: (node: SimNode) => boolean
  stateMachine: (id: NodeId) => StateMachine
}

export const defaultClusterOptions: Omit<ClusterOptions, 'seed' | 'nodeCount' | 'stateMachine'> = {
  tickMs: 10,
  raft: { electionTicks: 10, heartbeatTicks: 2, snapshotChunkBytes: 64, snapshotChunksInflightMax: 2, appendMessageMaxBytes: 4096, inflightMessagesMax: 8 },
  fsyncMinMs: 0.2,
  fsyncMaxMs: 2,
  snapshotEveryEntries: 0,
}

export class SimCluster {
  readonly queue = new EventQueue()
  readonly rng: Rng
  readonly network: SimNetwork
  readonly checker = new InvariantChecker()
  readonly nodes = new Map<NodeId, SimNode>()
  readonly ids: NodeId[]

  constructor(readonly options: ClusterOptions) {
    this.rng = new Rng(options.seed)
    this.network = new SimNetwork(this.queue, this.rng.fork(), (m) => this.deliver(m))
    this.ids = Array.from({ length: options.nodeCount }, (_, k) => `n${k + 1}`)
    const voters = this.ids.slice(0, options.initialVoters ?? options.nodeCount)
    for (const id of this.ids) {
      const node = new SimNode(id, options.stateMachine(id), {
        raft: options.raft,
        fsyncMinMs: options.fsyncMinMs,
        fsyncMaxMs: options.fsyncMaxMs,
        snapshotEveryEntries: options.snapshotEveryEntries,
        ...(options.snapshotWanted === undefined ? {} : { snapshotWanted: options.snapshotWanted }),
      }, this.queue, this.rng.fork(), {
        send: (m: Message) => this.network.send(m),
        onPersist: (n, rd, before) => this.checker.onPersist(n, rd, before),
        onApply: (n, e) => this.checker.onApply(n, e),
        onSnapshotInstalled: (n, s) => this.checker.onSnapshot(n, s),
        onCompacted: (n, s) => this.checker.onSnapshot(n, s),
      })
      if (voters.includes(id)) node.storage.initialize(bootstrapState(voters))
      this.nodes.set(id, node)
    }
    for (const node of this.nodes.values()) {
      node.start()
      this.scheduleTicks(node)
    }
  }

  private scheduleTicks(node: SimNode): void {
    // Clocks drift a little: each node ticks at its own steady rate.
    const periodMs = this.options.tickMs * (0.98 + this.rng.next() * 0.04)
    const tick = (): void => {
      node.tick()
      this.queue.schedule(periodMs, tick)
    }
    this.queue.schedule(this.rng.next() * periodMs, tick)
  }

  private deliver(m: Message): void {
    this.nodes.get(m.to)?.receive(m)
  }

  node(id: NodeId): SimNode {
    const node = this.nodes.get(id)
    if (node === undefined) throw new RangeError(`no node ${id}`)
    return node
  }

  get now(): number {
    return this.queue.now
  }

  /** Advance virtual time, checking every invariant after every event. */
  run(ms: number): void {
    this.queue.runUntil(this.queue.now + ms, () => {
      for (const node of this.nodes.values()) this.checker.afterEvent(node)
    })
  }

  /** Run until `predicate` holds (checked every `stepMs`) or `timeoutMs` passes; returns whether it held. */
  runUntil(predicate: () => boolean, timeoutMs: number, stepMs = 5): boolean {
    const deadline = this.queue.now + timeoutMs
    while (!predicate()) {
      if (this.queue.now >= deadline) return false
      this.run(stepMs)
    }
    return true
  }

  crash(id: NodeId): void {
    this.node(id).crash()
  }

  restart(id: NodeId): void {
    const node = this.node(id)
    if (node.alive) node.crash()
    node.start()
  }

  liveLeaders(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.raft?.role === 'leader')
  }

  /** The leader with the highest term among live, connected nodes, if any. */
  currentLeader(): SimNode | undefined {
    let best: SimNode | undefined
    for (const n of this.liveLeaders()) {
      if (!this.network.isConnected(n.id)) continue
      if (best === undefined || n.raft!.term > best.raft!.term) best = n
    }
    return best
  }
}
