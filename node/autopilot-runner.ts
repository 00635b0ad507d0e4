// Runs the autopilot on whichever peer leads: every round, gather the view
// (configuration, registry, gossip, replication progress) and make at most one
// membership change. The core refuses a second change while one is pending.
import type { RaftDriver } from '../consensus/driver.js'
import type { GossipMembership } from '../net/gossip.js'
import { planNextChange, type AutopilotView } from './autopilot.js'
import type { ClusterRegistry } from './registry.js'

export interface AutopilotOptions {
  driver: RaftDriver
  registry: ClusterRegistry
  gossip: GossipMembership
  votersMax: number
  /** A voter dead this long is replaced. */
  deadVoterGraceMs: number
  intervalMs?: number
}

export class Autopilot {
  private timer: ReturnType<typeof setInterval> | null = null
  private busy = false
  /** The last change made and why a round did nothing, for the cluster view and tests. */
  lastChange: string | null = null

  constructor(private readonly options: AutopilotOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.round(), this.options.intervalMs ?? 250)
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  view(): AutopilotView | null {
    const node = this.options.driver.node
    if (node.role !== 'leader') return null
    const status = node.status()
    const self = node.id
    const members = this.options.registry.activePeers().map((p) => p.peerId)
    const departed = new Set([...this.options.registry.peers.values()].filter((p) => p.leftAtMs !== null).map((p) => p.peerId))
    const healthy = new Set<string>([self])
    const deadBeyondGrace = new Set<string>()
    for (const m of this.options.gossip.members()) {
      if (m.state === 'alive') healthy.add(m.peerId)
      if (m.state === 'dead' && m.stateSinceMs >= this.options.deadVoterGraceMs) deadBeyondGrace.add(m.peerId)
    }
    const caughtUp = new Set(status.conf.learners.filter((id) => (status.progress[id]?.match ?? 0) >= status.commitIndex))
    return { leaderId: self, voters: status.conf.voters, learners: status.conf.learners, members, departed, healthy, deadBeyondGrace, caughtUp, votersMax: this.options.votersMax }
  }

  private async round(): Promise<void> {
    if (this.busy) return
    const view = this.view()
    if (view === null) return
    const change = planNextChange(view)
    if (change === null) return
    this.busy = true
    try {
      await this.options.driver.proposeConfChange(change)
      this.lastChange = `${['add-learner', 'add-voter', 'promote', 'remove'][change.type]} ${change.nodeId}`
    } catch {
      // Refused (a change pending, leadership moved, a learner fell behind): the next round looks again.
    } finally {
      this.busy = false
    }
  }
}
