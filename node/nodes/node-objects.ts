// Wires the Node objects into a peer: every peer keeps its own Node
// (node-self.ts) and, while it leads, everyone's conditions (node-lifecycle.ts).
import type { RaftDriver } from '../../consensus/driver.js'
import type { GossipMembership } from '../../net/gossip.js'
import { submit, type Submitter } from '../api/submit.js'
import type { ClusterRegistry } from '../registry.js'
import type { PeerState } from '../state/peer-state.js'
import type { StoreCommand } from '../store/commands.js'
import { describeHost, readHostFacts, type HostFacts } from './host-info.js'
import { NodeLifecycle } from './node-lifecycle.js'
import { NodeSelf } from './node-self.js'

export interface NodeObjectsPeer {
  id: string
  name: string
  driver: RaftDriver
  state: PeerState
  registry: ClusterRegistry
  gossip: GossipMembership
  /** Takes the Node writes through Raft. */
  submitter: Submitter
  /** The peer's libp2p addresses (multiaddr strings). */
  addresses: () => string[]
  /** host:port the API listens on; '' until it does. */
  apiAddress: () => string
  shoalVersion: string
  /** The agent's runtime version, once it has one. */
  runtimeVersion?: () => string | undefined
}

export class NodeObjects {
  readonly self: NodeSelf
  readonly lifecycle: NodeLifecycle
  private facts: HostFacts | null = null
  private readonly onMemberChange = (): void => this.lifecycle.poke()

  constructor(private readonly peer: NodeObjectsPeer) {
    const write = (command: StoreCommand) => submit(peer.submitter, command)
    this.self = new NodeSelf({
      peerId: peer.id,
      name: peer.name,
      store: peer.state.store,
      submit: write,
      isMember: () => peer.registry.peers.get(peer.id)?.leftAtMs === null,
      describe: () => this.describe(),
      nowMs: () => Date.now(),
    })
    this.lifecycle = new NodeLifecycle({
      selfPeerId: peer.id,
      leaderTerm: () => (peer.driver.node.role === 'leader' ? peer.driver.node.term : null),
      store: peer.state.store,
      peers: () => peer.registry.peers,
      gossip: peer.gossip,
      submit: write,
      nowMs: () => Date.now(),
    })
  }

  start(): void {
    void readHostFacts().then((facts) => {
      this.facts = facts
    })
    this.self.start()
    this.lifecycle.start()
    this.peer.gossip.addEventListener('member-change', this.onMemberChange)
  }

  stop(): void {
    this.peer.gossip.removeEventListener('member-change', this.onMemberChange)
    this.self.stop()
    this.lifecycle.stop()
  }

  /** What this peer says about its host in its Node; null until the host facts are read and the API listens. */
  describe(): ReturnType<typeof describeHost> | null {
    const apiPort = Number(this.peer.apiAddress().split(':').pop())
    if (this.facts === null || !(apiPort > 0)) return null
    const runtimeVersion = this.peer.runtimeVersion?.()
    return describeHost(this.facts, { name: this.peer.name, peerId: this.peer.id, listenAddresses: this.peer.addresses(), apiPort, shoalVersion: this.peer.shoalVersion, ...(runtimeVersion === undefined ? {} : { runtimeVersion }) })
  }
}
