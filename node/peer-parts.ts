// How a peer's parts are made and wired together before it runs: its
// identity (a new cluster, a join, or the data dir's), the Raft driver over
// the libp2p transport, the request/response endpoint, gossip, the autopilot
// and the bootstrapper.
import { hostname } from 'node:os'
import { randomUUID } from 'node:crypto'
import { RaftDriver } from '../consensus/driver.js'
import type { LevelLogStore } from '../consensus/log-store.js'
import type { RaftNode } from '../consensus/node.js'
import { GossipMembership } from '../net/gossip.js'
import type { PeerHost } from '../net/host.js'
import { generateClusterSecret } from '../net/identity.js'
import { RaftNetwork } from '../net/raft-transport.js'
import { RpcEndpoint } from '../net/rpc.js'
import { SubmitBatcher } from './api/submit.js'
import { Autopilot } from './autopilot-runner.js'
import { ClusterBootstrapper } from './cluster-bootstrap.js'
import { writeClusterIdentity, type ClusterIdentity, type JoinToken } from './cluster-files.js'
import { ConnectionKeeper } from './connection-keeper.js'
import { defaultServiceCidr } from './kinds/service-allocation.js'
import { localHealth } from './local-health.js'
import { PeerStartError, type PeerOptions } from './peer.js'
import { peerRpcHandlers } from './peer-rpc.js'
import type { ClusterRegistry } from './registry.js'
import type { PeerState } from './state/peer-state.js'

export interface PeerParts {
  host: PeerHost
  submitter: SubmitBatcher
  driver: RaftDriver
  registry: ClusterRegistry
  state: PeerState
  gossip: GossipMembership
  rpc: RpcEndpoint
  identity: ClusterIdentity
  network: RaftNetwork
  store: LevelLogStore
  autopilot: Autopilot
  connections: ConnectionKeeper
  bootstrapper: ClusterBootstrapper
  /** Filled in once the HTTP API listens, for the health reports. */
  apiAddress: { value: string | null }
}

export async function resolveIdentity(options: PeerOptions, known: ClusterIdentity | null, token: JoinToken | null): Promise<ClusterIdentity> {
  if (known !== null) {
    if (token !== null && token.clusterId !== known.clusterId) {
      throw new PeerStartError(`${options.dataDir} belongs to cluster ${known.clusterId}, but the join token is for ${token.clusterId}; use another --data-dir`)
    }
    if (options.name !== undefined && options.name !== known.name) {
      throw new PeerStartError(`${options.dataDir} belongs to peer ${known.name}; it cannot be renamed to ${options.name}`)
    }
    return known
  }
  if (options.join !== undefined && token === null) {
    throw new PeerStartError('a new peer needs the join token (it carries the cluster secret), not just an address; run `shoal up` on an existing peer to see it')
  }
  const name = options.name ?? hostname().toLowerCase().replace(/[^a-z0-9.-]/g, '-')
  const identity: ClusterIdentity = token === null
    ? { clusterId: randomUUID(), secret: generateClusterSecret(), name }
    : { clusterId: token.clusterId, secret: token.secret, name }
  await writeClusterIdentity(options.dataDir, identity)
  return identity
}

export function wire(
  options: PeerOptions,
  parts: { host: PeerHost; store: LevelLogStore; peerState: PeerState; node: RaftNode; identity: ClusterIdentity },
): PeerParts {
  const { host, store, peerState, node, identity } = parts
  const registry = peerState.registry
  let driver: RaftDriver | null = null
  const network = new RaftNetwork({
    host,
    deliver: (m) => driver?.receive(m),
    onUnreachable: (peerId) => driver?.node.reportUnreachable(peerId),
  })
  driver = new RaftDriver({
    node,
    store,
    transport: network,
    application: peerState,
    tickIntervalMs: options.tickIntervalMs,
    pendingProposalsMax: 50_000,
    pendingReadsMax: 10_000,
    appliedIndex: peerState.appliedIndex,
    snapshotEveryEntries: options.snapshotEveryEntries,
  })
  const d = driver
  let rpc: RpcEndpoint | null = null
  const ctx = { clusterId: identity.clusterId, driver: d, registry, rpc: () => rpc!, now: () => Date.now() }
  const submitter = new SubmitBatcher({ driver: d, state: peerState, rpc: () => rpc! })
  rpc = new RpcEndpoint({
    host,
    handlers: { ...peerRpcHandlers(ctx), 'store.submit': (request) => submitter.proposeForwarded(request) },
  })
  const apiAddress = { value: null as string | null }
  const gossip = new GossipMembership({ host, localHealth: () => localHealth(identity.name, host, d, () => apiAddress.value) })
  const autopilot = new Autopilot({ driver: d, registry, gossip, votersMax: options.votersMax, deadVoterGraceMs: options.deadVoterGraceMs })
  const connections = new ConnectionKeeper({ host, registry, voters: () => d.node.status().conf.voters })
  const bootstrapper = new ClusterBootstrapper({ driver: d, registry, store: peerState.store, kinds: peerState.store.kinds, submitter, serviceCidr: options.serviceCidr ?? defaultServiceCidr })
  return { host, driver: d, registry, state: peerState, gossip, rpc, identity, network, store, autopilot, connections, bootstrapper, apiAddress, submitter }
}
