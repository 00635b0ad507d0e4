// The HTTP API's view of a peer: the cluster as this peer sees it, and the
// settings key-value (writes through the leader, reads local or linearizable).
import type { ClusterPeerView, ClusterView, PeerApi } from './http-api.js'
import type { Peer } from './peer.js'
import { proposeCommand } from './peer-rpc.js'

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
    return proposeCommand(this.peer.rpcContext(), { op: 'set', key, value })
  }

  deleteSetting(key: string): Promise<number> {
    return proposeCommand(this.peer.rpcContext(), { op: 'delete', key })
  }

  async getSetting(key: string, linearizable: boolean): Promise<string | undefined> {
    if (linearizable) await this.peer.driver.readIndex()
    return this.peer.registry.settings.get(key)
  }

  leave(): Promise<void> {
    return this.peer.leave()
  }
}
