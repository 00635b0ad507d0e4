// The HTTP API's view of a peer: the cluster as this peer sees it, and the
// settings key-value (writes through the leader, reads local or linearizable).
import type { ClusterPeerView, ClusterView, PeerApi } from './http-api.js'
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
  constructor(private readonly peer: Peer) {}

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
