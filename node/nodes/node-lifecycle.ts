// The leader keeps every Node's conditions in step with gossip (Kubernetes'
// node lifecycle controller): Ready True while the peer is alive, Unknown once
// gossip declares it dead; the Node of a peer that left the cluster is
// deleted. Everything it knows is rebuilt from the store and gossip each
// round, so a new leader carries on where the old one stopped. A round writes
// at most one Raft entry, and only when a condition changes or a heartbeat
// is due (every 40 s), never merely because time passed.
import type { MemberView } from '../../net/gossip.js'
import { nodeKind } from '../kinds/cluster.js'
import type { KindDefinition } from '../kinds/kind.js'
import type { ApiObject } from '../kinds/meta.js'
import type { PeerRecord } from '../registry.js'
import { refOf, type StoreCommand } from '../store/commands.js'
import type { SubmitResult } from '../api/submit.js'
import { decideReady, nextConditions, readinessTimings, type NodeCondition, type ReadinessTimings } from './readiness.js'

export const peerIdLabel = 'shoal.io/peer-id'
/** Node writes per round (one Raft entry); the rest wait for the next round. */
export const commandsPerRoundMax = 64
/** Rounds run this often, and at once when gossip reports a change. */
const roundEveryMs = 1000

export interface NodeLifecycleOptions {
  selfPeerId: string
  /** The Raft term this peer leads in, or null when it does not lead. */
  leaderTerm: () => number | null
  store: { list(def: KindDefinition): ApiObject[] }
  peers: () => ReadonlyMap<string, PeerRecord>
  gossip: { member(peerId: string): MemberView | null; track(peerIds: Iterable<string>): void }
  submit: (command: StoreCommand) => Promise<SubmitResult>
  /** Wall clock, for the conditions' times. */
  nowMs: () => number
  timings?: ReadinessTimings
}

export interface RoundResult {
  /** Nodes whose conditions were written. */
  updated: string[]
  /** Nodes of departed peers, deleted. */
  deleted: string[]
}

export class NodeLifecycle {
  /** When this peer became leader, and in which term: a new term restarts the grace. */
  private leadership: { term: number; sinceMs: number } | null = null
  private timer: ReturnType<typeof setInterval> | null = null
  private busy = false
  private again = false

  constructor(private readonly options: NodeLifecycleOptions) {}

  start(): void {
    this.timer = setInterval(() => this.poke(), roundEveryMs)
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  /** Run a round soon; requests during a round are coalesced into one more. */
  poke(): void {
    if (this.busy) {
      this.again = true
      return
    }
    this.busy = true
    void this.round()
      .catch(() => {
        // Leadership moved or the write timed out: the next round starts again from the store.
      })
      .finally(() => {
        this.busy = false
        if (this.again && this.timer !== null) {
          this.again = false
          this.poke()
        }
      })
  }

  async round(): Promise<RoundResult> {
    const result: RoundResult = { updated: [], deleted: [] }
    const { options } = this
    const term = options.leaderTerm()
    if (term === null) {
      this.leadership = null
      return result
    }
    const nowMs = options.nowMs()
    if (this.leadership?.term !== term) this.leadership = { term, sinceMs: nowMs }
    const peers = options.peers()
    this.trackPeers(peers)
    const commands: StoreCommand[] = []
    for (const node of options.store.list(nodeKind)) {
      if (commands.length >= commandsPerRoundMax) break
      const peerId = node.metadata.labels?.[peerIdLabel]
      const record = peerId === undefined ? undefined : peers.get(peerId)
      // Nodes that name no peer we know (made by hand, say) are not ours to judge.
      if (peerId === undefined || record === undefined) continue
      const name = node.metadata.name ?? ''
      if (record.leftAtMs !== null) {
        commands.push({ op: 'obj.delete', ref: refOf(node), propagation: 'Background', expectResourceVersion: node.metadata.resourceVersion! })
        result.deleted.push(name)
        continue
      }
      const conditions = this.conditionsOf(node, peerId, nowMs)
      if (conditions === null) continue
      const status = { ...((node.status ?? {}) as Record<string, unknown>), conditions }
      commands.push({ op: 'obj.update', object: { ...node, status }, expectResourceVersion: node.metadata.resourceVersion!, subresource: 'status' })
      result.updated.push(name)
    }
    if (commands.length === 0) return result
    // A conflict (the peer rewrote its Node meanwhile) fails only that command; the next round reads it again.
    await options.submit(commands.length === 1 ? commands[0]! : { op: 'obj.batch', commands })
    return result
  }

  private conditionsOf(node: ApiObject, peerId: string, nowMs: number): NodeCondition[] | null {
    const { options } = this
    const member = peerId === options.selfPeerId ? null : options.gossip.member(peerId)
    const verdict = decideReady(
      {
        isSelf: peerId === options.selfPeerId,
        member: member === null ? null : { state: member.state, everHeard: member.lastHeardMs !== null, stateSinceMs: member.stateSinceMs },
        leaderForMs: nowMs - this.leadership!.sinceMs,
      },
      options.timings ?? readinessTimings,
    )
    const lastHeardAtMs = peerId === options.selfPeerId ? nowMs : member?.lastHeardMs == null ? null : nowMs - member.lastHeardMs
    const previous = ((node.status ?? {}) as { conditions?: NodeCondition[] }).conditions ?? []
    return nextConditions(previous, verdict, { nowMs, lastHeardAtMs }, options.timings ?? readinessTimings)
  }

  /** Gossip tracks every member peer, so one that never reported is probed and reaches a verdict. */
  private trackPeers(peers: ReadonlyMap<string, PeerRecord>): void {
    const untracked = [...peers.values()].filter((p) => p.leftAtMs === null && p.peerId !== this.options.selfPeerId && this.options.gossip.member(p.peerId) === null)
    if (untracked.length === 0) return
    try {
      this.options.gossip.track(untracked.map((p) => p.peerId))
    } catch {
      // A malformed peer id in the registry: gossip refuses it, and its Node keeps what it has.
    }
  }
}
