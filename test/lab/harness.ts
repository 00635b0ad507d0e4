// The MIT 6.5840 Raft lab's tester (config.go), over our simulator: servers
// 0..n-1, connect/disconnect, crash1/start1, one(), checkOneLeader(),
// nCommitted(), wait(), RPC and byte counters, all in virtual time.
// Lab "command indexes" count only commands: our logs also hold a new
// leader's empty entry and membership changes, which the lab's Raft lacks.
import { EntryType, type Entry, type NodeId } from '../../consensus/types.js'
import { SimCluster, defaultClusterOptions } from '../sim/cluster.js'
import type { Rng } from '../sim/rng.js'
import type { SimNode, StateMachine } from '../sim/sim-node.js'

export type Command = number | string

const encoder = new TextEncoder()
const decoder = new TextDecoder()

function isCommand(entry: Entry): boolean {
  return entry.type === EntryType.Normal && entry.data.byteLength > 0
}

/** The lab's applier: commands in command-index order; a snapshot holds them all (the lab's xlog). */
class CommandLog implements StateMachine {
  commands: Command[] = []

  constructor(private readonly onApply: (commandIndex: number, command: Command) => void, private readonly onRestore: (commands: Command[]) => void) {}

  apply(entry: Entry): void {
    if (!isCommand(entry)) return
    const command = JSON.parse(decoder.decode(entry.data)) as Command
    this.commands.push(command)
    this.onApply(this.commands.length, command)
  }

  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify(this.commands))
  }

  restore(data: Uint8Array): void {
    this.commands = data.byteLength === 0 ? [] : (JSON.parse(decoder.decode(data)) as Command[])
    this.onRestore(this.commands)
  }
}

export interface OneTask {
  done: boolean
  index: number
  error: Error | null
}

export interface LabOptions {
  servers: number
  unreliable: boolean
  snapshot: boolean
  seed: number
}

/** The lab's RaftElectionTimeout: tests sleep in multiples of it. */
export const electionTimeoutMs = 1000
const snapshotIntervalCommands = 10

export class LabConfig {
  readonly cluster: SimCluster
  readonly n: number
  /** Per server: command index -> command, kept across crashes (the lab's cfg.logs). */
  readonly logs: Map<number, Command>[]
  private readonly lastApplied: number[]
  private readonly lastSnapshotted: number[]
  private readonly commandLogs: CommandLog[] = []

  constructor(options: LabOptions) {
    this.n = options.servers
    this.logs = Array.from({ length: this.n }, () => new Map<number, Command>())
    this.lastApplied = new Array<number>(this.n).fill(0)
    this.lastSnapshotted = new Array<number>(this.n).fill(0)
    this.cluster = new SimCluster({
      ...defaultClusterOptions,
      seed: options.seed,
      nodeCount: this.n,
      // The lab wants heartbeats at most 10/s and elections within a few seconds.
      tickMs: 10,
      raft: { electionTicks: 30, heartbeatTicks: 10, appendMessageMaxBytes: 64 * 1024, inflightMessagesMax: 16, snapshotChunkBytes: 512 },
      fsyncMinMs: 0.1,
      fsyncMaxMs: 1,
      snapshotEveryEntries: 0,
      ...(options.snapshot ? { snapshotWanted: (node: SimNode) => this.snapshotWanted(node) } : {}),
      stateMachine: (id) => this.makeCommandLog(this.index(id)),
    })
    this.setUnreliable(options.unreliable)
  }

  private makeCommandLog(i: number): CommandLog {
    const log = new CommandLog(
      (commandIndex, command) => this.applied(i, commandIndex, command),
      (commands) => {
        commands.forEach((c, k) => this.logs[i]!.set(k + 1, c))
        this.lastApplied[i] = commands.length
        this.lastSnapshotted[i] = commands.length
      },
    )
    this.commandLogs[i] = log
    return log
  }

  /** The lab's checkLogs and "apply out of order" checks. */
  private applied(i: number, commandIndex: number, command: Command): void {
    if (commandIndex !== this.lastApplied[i]! + 1) {
      throw new Error(`server ${i} apply out of order: expected index ${this.lastApplied[i]! + 1}, got ${commandIndex}`)
    }
    for (let j = 0; j < this.n; j++) {
      const other = this.logs[j]!.get(commandIndex)
      if (other !== undefined && other !== command) {
        throw new Error(`commit index=${commandIndex} server=${i} ${String(command)} != server=${j} ${String(other)}`)
      }
    }
    this.logs[i]!.set(commandIndex, command)
    this.lastApplied[i] = commandIndex
  }

  /** The lab snapshots when a command with (index+1) % 10 == 0 was applied. */
  private snapshotWanted(node: SimNode): boolean {
    const i = this.index(node.id)
    const applied = this.lastApplied[i]!
    const boundary = Math.floor((applied + 1) / snapshotIntervalCommands) * snapshotIntervalCommands - 1
    if (boundary <= this.lastSnapshotted[i]!) return false
    this.lastSnapshotted[i] = applied
    return true
  }

  id(i: number): NodeId {
    return `n${i + 1}`
  }

  index(id: NodeId): number {
    return Number(id.slice(1)) - 1
  }

  node(i: number): SimNode {
    return this.cluster.node(this.id(i))
  }

  get rng(): Rng {
    return this.cluster.rng
  }

  randomInt(): number {
    return this.rng.nextUint32() & 0x7fffffff
  }

  sleep(ms: number): void {
    this.cluster.run(ms)
  }

  connected(i: number): boolean {
    return this.cluster.network.isConnected(this.id(i))
  }

  connect(i: number): void {
    this.cluster.network.connect(this.id(i))
  }

  disconnect(i: number): void {
    this.cluster.network.disconnect(this.id(i))
  }

  setUnreliable(unreliable: boolean): void {
    const f = this.cluster.network.faults
    this.cluster.network.faults = unreliable
      ? { ...f, dropProbability: 0.1, delayMinMs: 0, delayMaxMs: 27 }
      : { ...f, dropProbability: 0, delayMinMs: 0.2, delayMaxMs: 2 }
  }

  /** labrpc's long reordering: a third of messages held back 200-2200 ms. */
  setLongReordering(on: boolean): void {
    this.cluster.network.faults = { ...this.cluster.network.faults, longDelayProbability: on ? 0.33 : 0, longDelayMaxMs: 2000 }
  }

  crash1(i: number): void {
    this.disconnect(i)
    const node = this.node(i)
    if (node.alive) node.crash()
  }

  /** Restart from persisted state; like the lab, it stays disconnected until connect(). */
  start1(i: number): void {
    this.crash1(i)
    this.lastApplied[i] = 0
    this.lastSnapshotted[i] = 0
    this.node(i).start()
  }

  getState(i: number): { term: number; isLeader: boolean } {
    const raft = this.node(i).raft
    return { term: raft?.term ?? 0, isLeader: raft?.role === 'leader' }
  }

  /** Raft's Start(): the command index it would commit at, if this server leads. */
  start(i: number, command: Command): { index: number; term: number; ok: boolean } {
    const node = this.node(i)
    const raft = node.raft
    if (raft === null || raft.role !== 'leader') return { index: -1, term: raft?.term ?? 0, ok: false }
    try {
      const position = node.propose(encoder.encode(JSON.stringify(command)), () => {})
      return { index: this.commandIndexAt(node, position.index), term: position.term, ok: true }
    } catch {
      return { index: -1, term: raft.term, ok: false }
    }
  }

  private commandIndexAt(node: SimNode, raftIndex: number): number {
    const raft = node.raft!
    const first = raft.status().firstIndex
    const snapshot = raft.latestSnapshot()
    let count = snapshot === null || snapshot.data.byteLength === 0 ? 0 : (JSON.parse(decoder.decode(snapshot.data)) as Command[]).length
    for (const e of raft.entries(first, raftIndex)) if (isCommand(e)) count++
    return count
  }

  nCommitted(index: number): { count: number; command: Command | undefined } {
    let count = 0
    let command: Command | undefined
    for (let i = 0; i < this.n; i++) {
      const c = this.logs[i]!.get(index)
      if (c === undefined) continue
      if (count > 0 && c !== command) throw new Error(`committed values do not match: index ${index}, ${String(command)}, ${String(c)}`)
      count++
      command = c
    }
    return { count, command }
  }

  checkOneLeader(): number {
    for (let iteration = 0; iteration < 10; iteration++) {
      this.sleep(450 + this.rng.int(100))
      const leaders = new Map<number, number[]>()
      for (let i = 0; i < this.n; i++) {
        if (!this.connected(i)) continue
        const { term, isLeader } = this.getState(i)
        if (isLeader) leaders.set(term, [...(leaders.get(term) ?? []), i])
      }
      let lastTermWithLeader = -1
      for (const [term, ids] of leaders) {
        if (ids.length > 1) throw new Error(`term ${term} has ${ids.length} (>1) leaders`)
        lastTermWithLeader = Math.max(lastTermWithLeader, term)
      }
      if (leaders.size > 0) return leaders.get(lastTermWithLeader)![0]!
    }
    throw new Error('expected one leader, got none')
  }

  checkTerms(): number {
    let term = -1
    for (let i = 0; i < this.n; i++) {
      if (!this.connected(i)) continue
      const t = this.getState(i).term
      if (term === -1) term = t
      else if (term !== t) throw new Error('servers disagree on term')
    }
    return term
  }

  checkNoLeader(): void {
    for (let i = 0; i < this.n; i++) {
      if (this.connected(i) && this.getState(i).isLeader) throw new Error(`expected no leader among connected servers, but ${i} claims to be leader`)
    }
  }

  /** Submit `command` until `expectedServers` have committed it; returns its command index. */
  one(command: Command, expectedServers: number, retry: boolean): number {
    const task = this.oneAsync(command, expectedServers, retry)
    this.cluster.runUntil(() => task.done, 20_000, 1)
    if (task.error !== null) throw task.error
    return task.index
  }

  /**
   * one() as a task on the simulated clock, so several can run at once (the
   * lab runs them in goroutines). Tries every connected server for 10 s; once
   * one accepts, polls nCommitted every 20 ms for up to 2 s.
   */
  oneAsync(command: Command, expectedServers: number, retry: boolean): OneTask {
    const task: OneTask = { done: false, index: -1, error: null }
    const deadline = this.cluster.now + 10_000
    let starts = 0
    const fail = (): void => {
      task.error = new Error(`one(${String(command)}) failed to reach agreement`)
      task.done = true
    }
    const tryStart = (): void => {
      if (this.cluster.now >= deadline) return fail()
      for (let si = 0; si < this.n; si++) {
        starts = (starts + 1) % this.n
        if (!this.connected(starts)) continue
        const r = this.start(starts, command)
        if (r.ok) return awaitCommit(r.index, this.cluster.now + 2000)
      }
      this.cluster.queue.schedule(50, tryStart)
    }
    const awaitCommit = (index: number, waitUntil: number): void => {
      const { count, command: committed } = this.nCommitted(index)
      if (count > 0 && count >= expectedServers && committed === command) {
        task.index = index
        task.done = true
        return
      }
      if (this.cluster.now < waitUntil) this.cluster.queue.schedule(20, () => awaitCommit(index, waitUntil))
      else if (retry) tryStart()
      else fail()
    }
    tryStart()
    return task
  }

  /** Wait for `n` servers to commit `index`; -1 if a term passed startTerm meanwhile. */
  wait(index: number, n: number, startTerm: number): Command | -1 {
    let to = 10
    for (let iteration = 0; iteration < 30; iteration++) {
      if (this.nCommitted(index).count >= n) break
      this.sleep(to)
      if (to < 1000) to *= 2
      if (startTerm > -1) {
        for (let i = 0; i < this.n; i++) {
          if (this.node(i).alive && this.getState(i).term > startTerm) return -1
        }
      }
    }
    const { count, command } = this.nCommitted(index)
    if (count < n) throw new Error(`only ${count} decided for index ${index}; wanted ${n}`)
    return command!
  }

  rpcTotal(): number {
    return this.cluster.network.requestCount()
  }

  bytesTotal(): number {
    return this.cluster.network.bytesSent
  }

  /** The largest persisted Raft state (without snapshot) of any server, in bytes. */
  logSize(): number {
    let max = 0
    for (let i = 0; i < this.n; i++) max = Math.max(max, this.node(i).storage.raftStateBytes())
    return max
  }
}
