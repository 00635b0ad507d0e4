// Prometheus metrics at /metrics: API requests by verb, resource and code,
// their latency, Raft's term, indexes and leader changes, and gossip peers by
// state. One registry per peer (tests run several peers in one process).
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { RaftDriver } from '../../consensus/driver.js'
import type { GossipMembership } from '../../net/gossip.js'

export class ApiMetrics {
  readonly registry = new Registry()
  private readonly requests: Counter<'verb' | 'resource' | 'code'>
  private readonly latency: Histogram<'verb' | 'resource'>
  private lastLeader: string | null = null
  private readonly leaderChanges: Counter

  constructor(driver: RaftDriver, gossip: GossipMembership | null) {
    this.requests = new Counter({ name: 'apiserver_request_total', help: 'API requests by verb, resource and HTTP code', labelNames: ['verb', 'resource', 'code'], registers: [this.registry] })
    this.latency = new Histogram({
      name: 'apiserver_request_duration_seconds',
      help: 'API request latency by verb and resource (watches excluded)',
      labelNames: ['verb', 'resource'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    })
    this.leaderChanges = new Counter({ name: 'shoal_raft_leader_changes_total', help: 'Times this peer saw the leader change', registers: [this.registry] })
    const node = driver.node
    new Gauge({ name: 'shoal_raft_term', help: 'Current Raft term', registers: [this.registry], collect() { this.set(node.term) } })
    new Gauge({ name: 'shoal_raft_commit_index', help: 'Raft commit index', registers: [this.registry], collect() { this.set(node.commitIndex) } })
    new Gauge({ name: 'shoal_raft_applied_index', help: 'Last index applied to the object store', registers: [this.registry], collect() { this.set(driver.appliedIndex) } })
    new Gauge({ name: 'shoal_raft_is_leader', help: '1 on the leader', registers: [this.registry], collect() { this.set(node.role === 'leader' ? 1 : 0) } })
    new Gauge({
      name: 'shoal_gossip_peers',
      help: 'Peers by gossip state',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 }
        for (const m of gossip?.members() ?? []) counts[m.state] = (counts[m.state] ?? 0) + 1
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n)
      },
    })
    setInterval(() => this.observeLeader(node.leaderId), 500).unref()
  }

  private observeLeader(leader: string | null): void {
    if (leader !== null && leader !== this.lastLeader) {
      if (this.lastLeader !== null) this.leaderChanges.inc()
      this.lastLeader = leader
    }
  }

  observe(verb: string, resource: string, code: number, seconds: number | null): void {
    this.requests.inc({ verb, resource, code: String(code) })
    if (seconds !== null) this.latency.observe({ verb, resource }, seconds)
  }
}

/** The verb label Kubernetes' apiserver_request_total uses: POST, PUT and PATCH as sent; LIST, WATCH and DELETECOLLECTION for collections. */
export function verbOf(method: string, named: boolean, watch: boolean): string {
  if (watch) return 'WATCH'
  switch (method) {
    case 'GET':
      return named ? 'GET' : 'LIST'
    case 'DELETE':
      return named ? 'DELETE' : 'DELETECOLLECTION'
    default:
      return method
  }
}
