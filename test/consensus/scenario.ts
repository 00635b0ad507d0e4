// Scenario tests as text (after etcd's datadriven testdata): each block is a
// command line, `----`, and the output it must print. Messages are delivered
// by hand, so a test can spell out an exact schedule such as Raft's Figure 8.
import { decodeConfChange } from '../../consensus/membership.js'
import { RaftNode, bootstrapState } from '../../consensus/node.js'
import type { RaftConfig } from '../../consensus/raft.js'
import { ConfChangeType, EntryType, MessageType, type Entry, type Message, type NodeId } from '../../consensus/types.js'
import { SimStorage } from '../sim/storage.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const typeNames = Object.fromEntries(Object.entries(MessageType).map(([k, v]) => [v, k])) as Record<number, string>
const confNames = ['add-learner', 'add-voter', 'promote', 'remove']

interface ScenarioNode {
  raft: RaftNode | null
  storage: SimStorage
  applied: Entry[]
}

export function describeEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) {
    const cc = decodeConfChange(e.data)
    return `${e.index}@${e.term} ${confNames[cc.type]} ${cc.nodeId}`
  }
  return `${e.index}@${e.term} ${e.data.byteLength === 0 ? 'noop' : decoder.decode(e.data)}`
}

export function describeMessage(m: Message): string {
  const parts = [`${m.from}->${m.to} ${typeNames[m.type]} term=${m.term}`]
  if (m.type === MessageType.App) parts.push(`prev=${m.index}@${m.logTerm}`, `entries=[${(m.entries ?? []).map((e) => `${e.index}@${e.term}`).join(' ')}]`, `commit=${m.commit}`)
  else if (m.type === MessageType.AppResp) parts.push(m.reject === true ? `reject index=${m.index} hint=${m.rejectHint}@${m.logTerm}` : m.index === undefined ? '(newer term)' : `index=${m.index}`)
  else if (m.type === MessageType.Vote || m.type === MessageType.PreVote) parts.push(`last=${m.index}@${m.logTerm}`)
  else if (m.type === MessageType.VoteResp || m.type === MessageType.PreVoteResp) parts.push(m.reject === true ? 'rejected' : 'granted')
  else if (m.type === MessageType.Heartbeat) parts.push(`commit=${m.commit}`)
  else if (m.type === MessageType.Snap) parts.push(`snapshot=${m.snapshot!.metadata.index}@${m.snapshot!.metadata.term} bytes=${m.snapshot!.offset}+${m.snapshot!.data.byteLength}/${m.snapshot!.totalBytes}`)
  else if (m.type === MessageType.SnapResp) parts.push(`acked=${m.snapshotAcked}${m.reject === true ? ' reject' : ''}`)
  else if (m.type === MessageType.ReadIndexResp) parts.push(`index=${m.index}`)
  if (m.context !== undefined && m.type !== MessageType.Vote && m.type !== MessageType.PreVote) parts.push(`ctx=${decoder.decode(m.context)}`)
  return parts.join(' ')
}

export class Scenario {
  private readonly nodes = new Map<NodeId, ScenarioNode>()
  private queue: Message[] = []
  private config: Partial<RaftConfig> = {}

  run(command: string, args: string[]): string {
    const out: string[] = []
    const print = (line: string): void => {
      out.push(line)
    }
    const handler = this.commands[command]
    if (handler === undefined) throw new Error(`unknown command ${command}`)
    try {
      handler(args, print)
    } catch (err) {
      print(`${(err as Error).name}: ${(err as Error).message}`)
    }
    return out.length === 0 ? 'ok' : out.join('\n')
  }

  private node(id: string | undefined): ScenarioNode {
    const n = this.nodes.get(id ?? '')
    if (n === undefined) throw new Error(`no node ${id}`)
    return n
  }

  private raft(id: string | undefined): RaftNode {
    const raft = this.node(id).raft
    if (raft === null) throw new Error(`${id} is down`)
    return raft
  }

  /** Election timeouts are electionTicks * (1 + random): fixed here, so scenarios are exact. */
  private randomValue = 0

  private start(id: NodeId): void {
    const n = this.node(id)
    const value = this.randomValue
    n.raft = new RaftNode({ ...this.config, id, random: () => value }, n.storage.load())
  }

  /** Persist, queue messages, apply: one turn of the driver loop. */
  private ready(id: NodeId, print: (line: string) => void): boolean {
    const n = this.node(id)
    const raft = n.raft
    if (raft === null || !raft.hasReady()) return false
    const rd = raft.ready()
    for (const m of rd.messages) this.queue.push(m)
    n.storage.write(rd)
    for (const m of rd.messagesAfterPersist) this.queue.push(m)
    for (const e of rd.committedEntries) n.applied.push(e)
    for (const rs of rd.readStates) print(`${id}: read ${decoder.decode(rs.context)} at index ${rs.index}`)
    raft.advance(rd)
    return true
  }

  private deliver(to: NodeId, from: string | undefined, count: number, print: (line: string) => void): void {
    const keep: Message[] = []
    let delivered = 0
    for (const m of this.queue) {
      if (m.to === to && (from === undefined || m.from === from) && delivered < count) {
        delivered++
        print(describeMessage(m))
        this.node(to).raft?.step(m)
      } else keep.push(m)
    }
    this.queue = keep
  }

  private readonly commands: Record<string, (args: string[], print: (line: string) => void) => void> = {
    cluster: (args) => {
      const ids = args.filter((a) => !a.includes('='))
      const voters = ids.filter((id) => !id.endsWith('*')).map((id) => id.replace('*', ''))
      for (const opt of args.filter((a) => a.includes('='))) {
        const [key, value] = opt.split('=') as [keyof RaftConfig, string]
        if (key === 'random') this.randomValue = Number(value)
        else (this.config as Record<string, unknown>)[key] = value === 'true' ? true : value === 'false' ? false : Number(value)
      }
      for (const raw of ids) {
        const id = raw.replace('*', '')
        const storage = new SimStorage()
        // A trailing * marks a node outside the initial configuration: it starts empty.
        if (!raw.endsWith('*')) storage.initialize(bootstrapState(voters))
        this.nodes.set(id, { raft: null, storage, applied: [] })
        this.start(id)
      }
      for (const id of this.nodes.keys()) this.ready(id, () => {})
    },
    campaign: ([id]) => this.raft(id).campaign(),
    tick: ([id, n]) => {
      for (let k = 0; k < Number(n ?? 1); k++) this.raft(id).tick()
    },
    propose: ([id, data], print) => {
      const p = this.raft(id).propose(encoder.encode(data ?? ''))
      print(`${id}: proposed ${p.index}@${p.term}`)
    },
    ready: (ids, print) => {
      for (const id of ids) this.ready(id, print)
    },
    deliver: ([to, ...opts], print) => {
      const from = opts.find((o) => o.startsWith('from='))?.slice(5)
      const count = Number(opts.find((o) => o.startsWith('count='))?.slice(6) ?? Infinity)
      this.deliver(to!, from, count, print)
    },
    drop: ([to, ...opts], print) => {
      const from = opts.find((o) => o.startsWith('from='))?.slice(5)
      let count = Number(opts.find((o) => o.startsWith('count='))?.slice(6) ?? Infinity)
      this.queue = this.queue.filter((m) => {
        const dropped = m.to === to && (from === undefined || m.from === from) && count > 0
        if (dropped) {
          count--
          print(`dropped ${describeMessage(m)}`)
        }
        return !dropped
      })
    },
    // Forget everything in flight to or from a node (it stays partitioned until messages are delivered again).
    isolate: ([id], print) => {
      const before = this.queue.length
      this.queue = this.queue.filter((m) => m.to !== id && m.from !== id)
      print(`dropped ${before - this.queue.length} messages to or from ${id}`)
    },
    stabilize: (ids, print) => this.stabilize(ids.length > 0 ? ids : [...this.nodes.keys()], print),
    // Take a Ready, let out only what may leave before persisting, then crash before the write lands.
    'crash-before-persist': ([id], print) => {
      const raft = this.raft(id)
      if (!raft.hasReady()) return
      const rd = raft.ready()
      for (const m of rd.messages) {
        print(`sent early: ${describeMessage(m)}`)
        this.queue.push(m)
      }
      print(`lost: ${rd.entries.length} entries, hard state ${rd.hardState === null ? 'unchanged' : `term=${rd.hardState.term}`}, ${rd.messagesAfterPersist.length} messages`)
      this.node(id).raft = null
      this.queue = this.queue.filter((m) => m.to !== id)
    },
    crash: ([id]) => {
      this.node(id).raft = null
      this.queue = this.queue.filter((m) => m.to !== id)
    },
    restart: ([id]) => {
      this.start(id!)
    },
    status: (ids, print) => {
      for (const id of ids) {
        const s = this.raft(id).status()
        print(`${id}: ${s.role} term=${s.term} lead=${s.leaderId ?? '-'} commit=${s.commitIndex} last=${s.lastIndex} voters=${s.conf.voters.join(',')}${s.conf.learners.length > 0 ? ` learners=${s.conf.learners.join(',')}` : ''}`)
      }
    },
    log: ([id], print) => {
      const raft = this.raft(id)
      const s = raft.status()
      print(`${id}: ${raft.entries(s.firstIndex, s.lastIndex).map(describeEntry).join(' | ') || '(empty)'}`)
    },
    applied: ([id], print) => {
      print(`${id}: ${this.node(id).applied.filter((e) => e.type === EntryType.Normal).map(describeEntry).join(' | ') || '(none)'}`)
    },
    'read-index': ([id, context]) => this.raft(id).readIndex(encoder.encode(context ?? '')),
    transfer: ([id, to]) => this.raft(id).transferLeadership(to!),
    conf: ([id, kind, target], print) => {
      const type = confNames.indexOf(kind ?? '') as ConfChangeType
      const p = this.raft(id).proposeConfChange({ type, nodeId: target! })
      print(`${id}: proposed ${p.index}@${p.term} ${kind} ${target}`)
    },
    compact: ([id, index]) => {
      this.raft(id).compact(Number(index), encoder.encode(`state@${index}`))
    },
    queued: (_args, print) => {
      for (const m of this.queue) print(describeMessage(m))
    },
  }

  /** Run every listed node's Ready loop and deliver among them until quiet; other traffic stays queued. */
  private stabilize(ids: string[], print: (line: string) => void): void {
    for (let round = 0; round < 1000; round++) {
      let progressed = false
      for (const id of ids) progressed = this.ready(id, print) || progressed
      const deliverable = this.queue.filter((m) => ids.includes(m.from) && ids.includes(m.to))
      this.queue = this.queue.filter((m) => !deliverable.includes(m))
      for (const m of deliverable) this.node(m.to).raft?.step(m)
      if (!progressed && deliverable.length === 0) return
    }
    throw new Error('stabilize did not settle in 1000 rounds')
  }
}

