// The HTTP API's view of a peer: the cluster as this peer sees it, and the
// settings key-value (writes through the leader, reads local or linearizable).
import { NotLeaderError } from '../consensus/errors.js'
import { healthTopic } from '../net/gossip.js'
import { encodeCommand } from './registry.js'
import type { BenchProposeRequest, BenchProposeResult, ClusterPeerView, ClusterView, PeerApi } from './http-api.js'
import type { Peer } from './peer.js'
import { proposeCommand } from './peer-rpc.js'

/** How long a write or a linearizable read may wait for a quorum before the API answers 504. */
const commitWaitMs = 5000

export class CommitTimeoutError extends Error {
  override readonly name = 'CommitTimeoutError'

  constructor(what: string) {
    super(`${what} did not complete within ${commitWaitMs / 1000} s (is a quorum of voters reachable?); a write may still commit later`)
  }
}

function withDeadline<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CommitTimeoutError(what)), commitWaitMs)
  })
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer))
}

export class PeerApiImpl implements PeerApi {
  benchPropose?: (request: BenchProposeRequest) => Promise<BenchProposeResult>

  constructor(
    private readonly peer: Peer,
    benchEndpoints = false,
  ) {
    if (benchEndpoints) this.benchPropose = (request) => benchPropose(this.peer, request)
  }

  clusterView(): ClusterView {
    const node = this.peer.driver.node
    const status = node.status()
    const voters = new Set(status.conf.voters)
    const learners = new Set(status.conf.learners)
    const peers: ClusterPeerView[] = this.peer.registry.activePeers().map((record) => {
      const gossip = record.peerId === this.peer.id ? null : this.peer.gossip.member(record.peerId)
      const role = record.peerId === status.leaderId ? 'leader' : voters.has(record.peerId) ? 'voter' : learners.has(record.peerId) ? 'learner' : 'none'
      return {
        name: record.name,
        peerId: record.peerId,
        addresses: record.addresses,
        apiAddress: record.apiAddress,
        raftRole: role,
        gossipState: record.peerId === this.peer.id ? 'alive' : (gossip?.state ?? 'unknown'),
        lastHeartbeatAgeMs: record.peerId === this.peer.id ? 0 : gossip?.lastHeardMs == null ? null : Math.round(gossip.lastHeardMs),
      }
    })
    return {
      clusterId: this.peer.identity.clusterId,
      self: this.peer.id,
      leaderId: status.leaderId,
      term: status.term,
      commitIndex: status.commitIndex,
      appliedIndex: this.peer.driver.appliedIndex,
      snapshotIndex: this.peer.driver.node.status().firstIndex - 1,
      connections: this.peer.host.getConnections().length,
      gossipPeers: this.peer.host.services.pubsub.getSubscribers(healthTopic).length,
      gossip: { ...this.peer.gossip.stats },
      peers: peers.sort((a, b) => a.name.localeCompare(b.name)),
    }
  }

  setSetting(key: string, value: string): Promise<number> {
    return withDeadline(proposeCommand(this.peer.rpcContext(), { op: 'set', key, value }), `setting ${key}`)
  }

  deleteSetting(key: string): Promise<number> {
    return withDeadline(proposeCommand(this.peer.rpcContext(), { op: 'delete', key }), `deleting ${key}`)
  }

  async getSetting(key: string, linearizable: boolean): Promise<string | undefined> {
    if (linearizable) await withDeadline(this.peer.driver.readIndex(), `a linearizable read of ${key}`)
    return this.peer.registry.settings.get(key)
  }

  leave(): Promise<void> {
    return this.peer.leave()
  }
}

/** Proposals straight into the leader's driver: Raft over libp2p without HTTP in the way. */
async function benchPropose(peer: Peer, request: BenchProposeRequest): Promise<BenchProposeResult> {
  const driver = peer.driver
  if (driver.node.role !== 'leader') throw new NotLeaderError(driver.node.leaderId)
  const data = encodeCommand({ op: 'set', key: '__bench__', value: 'x'.repeat(request.bytes) })
  const latenciesMs: number[] = []
  let started = 0
  const began = performance.now()
  const worker = async (): Promise<void> => {
    while (started < request.count) {
      started++
      const t = performance.now()
      await driver.propose(data)
      latenciesMs.push(performance.now() - t)
    }
  }
  await Promise.all(Array.from({ length: request.concurrency }, worker))
  const seconds = (performance.now() - began) / 1000
  latenciesMs.sort((a, b) => a - b)
  const at = (p: number): number => latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(p * latenciesMs.length))]!
  return { committed: latenciesMs.length, seconds, committedPerSec: latenciesMs.length / seconds, p50Ms: at(0.5), p99Ms: at(0.99) }
}
