// A Shoal peer: the libp2p host, the Raft log and driver, the replicated
// registry, gossip health, the autopilot and the HTTP API, wired together.
// The same code bootstraps a cluster, joins one, or restarts from its data dir.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Server } from 'node:http'
import { RaftDriver } from '../consensus/driver.js'
import { LevelLogStore } from '../consensus/log-store.js'
import { RaftNode, bootstrapState } from '../consensus/node.js'
import { GossipMembership } from '../net/gossip.js'
import { createPeerHost, type PeerHost } from '../net/host.js'
import { loadOrCreatePeerKey, peerIdOf } from '../net/identity.js'
import { RaftNetwork } from '../net/raft-transport.js'
import { RpcEndpoint } from '../net/rpc.js'
import { Autopilot } from './autopilot-runner.js'
import { ConnectionKeeper } from './connection-keeper.js'
import { decodeJoinToken, encodeJoinToken, readClusterIdentity, writeRuntimeInfo, type ClusterIdentity, type JoinToken } from './cluster-files.js'
import type { ClusterBootstrapper } from './cluster-bootstrap.js'
import { resolveIdentity, wire, type PeerParts } from './peer-parts.js'
import { startPeerApi } from './peer-api-server.js'
import type { ResourceContext } from './api/resources.js'
import { withDeadline } from './api/submit.js'
import { peerRpcHandlers, type JoinAnswer, type JoinRequest } from './peer-rpc.js'
import { SubmitBatcher } from './api/submit.js'
import type { LeaderLoop } from './control/leader-loop.js'
import { startLeaderControl } from './control/start.js'
import { coreKinds } from './kinds/cluster.js'
import { ClusterRegistry } from './registry.js'
import { PeerState } from './state/peer-state.js'
import { ObjectStore } from './store/object-store.js'
import { NodeObjects } from './nodes/node-objects.js'
import { startAgent, type AgentSettings, type StartedAgent } from './agent/start.js'
import { PodLogService } from './agent/log-service.js'
import { serviceCidrSettingKey } from './kinds/service-allocation.js'
import { dockerServiceCidrWarning, startServices, type ServicesSettings, type StartedServices } from './services/start.js'
import { internalIpOf } from './nodes/host-info.js'

export interface PeerOptions {
  dataDir: string
  name?: string
  listen: string[]
  announce?: string[]
  apiHost: string
  apiPort: number
  /** A join token (new peers) or a seed multiaddr (peers that already belong to a cluster). */
  join?: string
  votersMax: number
  tickIntervalMs: number
  electionTicks: number
  deadVoterGraceMs: number
  /** Serve /shoal/v1/bench/* (benchmarks only). */
  benchEndpoints?: boolean
  /** Plain HTTP without authentication, on loopback only. */
  insecureHttp?: boolean
  /** Compact the Raft log into a snapshot of the state every this many entries. */
  snapshotEveryEntries: number
  /** A node not Ready this long has its pods deleted, for their controllers to replace elsewhere. */
  podEvictionTimeoutMs: number
  /** How this peer runs the pods bound to its Node; no agent when absent. */
  agent?: AgentSettings
  /** Where cluster IPs come from, if this peer bootstraps the cluster (default 127.77.0.0/16). */
  serviceCidr?: string
  /** The service proxy and cluster DNS on this peer; none when absent. */
  services?: ServicesSettings
}

export class PeerStartError extends Error {
  override readonly name = 'PeerStartError'
}

export const defaultPeerOptions = { votersMax: 5, tickIntervalMs: 50, electionTicks: 10, deadVoterGraceMs: 10_000, snapshotEveryEntries: 10_000, podEvictionTimeoutMs: 5000 }

export class Peer {
  readonly host: PeerHost
  readonly driver: RaftDriver
  readonly registry: ClusterRegistry
  readonly state: PeerState
  readonly gossip: GossipMembership
  readonly rpc: RpcEndpoint
  readonly identity: ClusterIdentity
  /** Takes store commands through Raft, batched (see api/submit.ts). */
  readonly submitter: SubmitBatcher
  private readonly network: RaftNetwork
  private readonly store: LevelLogStore
  private readonly autopilot: Autopilot
  private readonly connections: ConnectionKeeper
  private readonly bootstrapper: ClusterBootstrapper
  private server: Server | null = null
  /** This peer's Node object, and everyone's conditions while it leads. */
  private nodeObjects: NodeObjects | null = null
  private control: LeaderLoop | null = null
  /** Runs the pods bound to this peer's Node. */
  agent: StartedAgent | null = null
  /** Pod logs: read here for pods of this Node, through their peer (`/shoal/logs/1`) for the others. */
  podLogs: PodLogService | null = null
  /** Service VIPs, NodePorts and cluster DNS on this peer. */
  services: StartedServices | null = null
  /** Settles when the API listens (it waits for the cluster CA to reach this peer). */
  api: Promise<{ address: string; url: string }> = new Promise(() => {})
  apiAddress = ''
  /** The token a new host joins with: the cluster secret and this peer's addresses. */
  joinToken = ''
  /** Settles once this peer is registered with the cluster (at once when it bootstraps). */
  registered: Promise<void> = Promise.resolve()
  /** Called when the peer has left the cluster (after `leave`) and should shut down. */
  onLeft: () => void = () => {}
  private stopped = false
  /** Set once leave() starts: no more (re)registration, which would undo the departure. */
  private leaving = false

  private readonly apiAddressRef: { value: string | null }

  private constructor(parts: PeerParts) {
    this.apiAddressRef = parts.apiAddress
    this.host = parts.host
    this.driver = parts.driver
    this.registry = parts.registry
    this.state = parts.state
    this.gossip = parts.gossip
    this.rpc = parts.rpc
    this.identity = parts.identity
    this.submitter = parts.submitter
    this.network = parts.network
    this.store = parts.store
    this.autopilot = parts.autopilot
    this.connections = parts.connections
    this.bootstrapper = parts.bootstrapper
  }

  get id(): string {
    return this.driver.node.id
  }

  static async start(options: PeerOptions): Promise<Peer> {
    await mkdir(options.dataDir, { recursive: true })
    const known = await readClusterIdentity(options.dataDir)
    const token = options.join === undefined || !options.join.startsWith('SHOAL1-') ? null : decodeJoinToken(options.join)
    const identity = await resolveIdentity(options, known, token)
    const key = await loadOrCreatePeerKey(options.dataDir)
    const id = peerIdOf(key)
    const store = await LevelLogStore.open(join(options.dataDir, 'raft'))
    const bootstrapping = known === null && token === null
    if (bootstrapping) await store.bootstrap(bootstrapState([id]))
    const state = await store.load()
    const registry = new ClusterRegistry(store.db)
    const peerState = new PeerState(store.db, registry, new ObjectStore(coreKinds()))
    await peerState.load()
    // A snapshot installed from the leader is stored before it is applied: a crash in between leaves the state behind it.
    if (state.snapshot !== null && state.snapshot.metadata.index > peerState.appliedIndex) await peerState.restore(state.snapshot)
    const host = await createPeerHost({ privateKey: key, clusterSecret: identity.secret, listen: options.listen, ...(options.announce === undefined ? {} : { announce: options.announce }) })
    // Heartbeats every other tick (100 ms at the default 50 ms tick): elections still come within 0.5-1 s.
    const node = new RaftNode({ id, electionTicks: options.electionTicks, heartbeatTicks: 2, applied: peerState.appliedIndex }, state)
    const parts = wire(options, { host, store, peerState, node, identity })
    const peer = new Peer(parts)
    await peer.run(options, bootstrapping, token)
    return peer
  }

  private async run(options: PeerOptions, bootstrapping: boolean, token: JoinToken | null): Promise<void> {
    this.registry.onCommand((c) => {
      if (c.op === 'register') void this.learnAddresses(c.peer.peerId, c.peer.addresses)
    })
    for (const p of this.registry.activePeers()) await this.learnAddresses(p.peerId, p.addresses)
    await this.network.start()
    await this.rpc.start()
    this.driver.start()
    await this.gossip.start()
    this.gossip.track(this.registry.activePeers().map((p) => p.peerId).filter((p) => p !== this.id))
    this.joinToken = this.makeJoinToken()
    this.podLogs = new PodLogService({ runtime: null, nodeName: this.identity.name, host: this.host, peerIdOfNode: (name) => this.registry.peerByName(name)?.peerId })
    await this.podLogs.start()
    this.api = startPeerApi(this, { dataDir: options.dataDir, host: options.apiHost, port: options.apiPort, insecureHttp: options.insecureHttp === true, benchEndpoints: options.benchEndpoints === true, shoalVersion: '0.1.0' }).then(async (started) => {
      this.server = started.server
      this.apiAddress = started.address
      this.apiAddressRef.value = started.url
      await writeRuntimeInfo(options.dataDir, { peerId: this.id, apiAddress: started.url, listen: this.addresses(), pid: process.pid })
      return started
    })
    this.bootstrapper.start()
    if (bootstrapping) this.driver.campaign()
    this.autopilot.start()
    this.connections.start()
    this.nodeObjects = new NodeObjects({ id: this.id, name: this.identity.name, driver: this.driver, state: this.state, registry: this.registry, gossip: this.gossip, submitter: this.submitter, addresses: () => this.addresses(), apiAddress: () => this.apiAddress, shoalVersion: '0.1.0', runtimeVersion: () => this.agent?.version })
    this.nodeObjects.start()
    const nodes = this.nodeObjects
    const log = (line: string): void => console.error(`shoal: ${line}`)
    const nodePortAddresses = [...new Set([internalIpOf(this.addresses(), []), '127.0.0.1'])]
    if (options.services !== undefined) this.services = await startServices({ ...options.services, store: this.state.store, nodeName: this.identity.name, host: this.host, peerIdOfNode: (name) => this.registry.peerByName(name)?.peerId, nodePortAddresses, log })
    const dnsServers = this.services === null ? [] : [this.services.dnsAddress]
    if (options.agent !== undefined) this.agent = await startAgent({ ...options.agent, nodeName: this.identity.name, dataDir: options.dataDir, store: this.state.store, submitter: this.submitter, node: () => nodes.describe(), dnsServers, log })
    this.podLogs.setRuntime(this.agent?.runtime ?? null)
    this.control = startLeaderControl({ driver: this.driver, store: this.state.store, submitter: this.submitter, peerName: this.identity.name, podEvictionTimeoutMs: options.podEvictionTimeoutMs })
    // Every start (re)registers: a new peer joins, a restarted one refreshes its addresses,
    // and once the API listens (it needs the CA, which arrives through the log) its address too.
    this.registered = this.register(token?.seeds ?? (options.join !== undefined && token === null ? [options.join] : []))
    void this.registered.then(
      () => {
        const warning = dockerServiceCidrWarning(this.agent?.version, this.registry.settings.get(serviceCidrSettingKey))
        if (warning !== null) log(warning)
      },
      () => {}, // registration failures are told where they happen
    )
    void this.api.then(() => this.registered).then(() => this.register([])).catch(() => {})
  }

  addresses(): string[] {
    return this.host.getMultiaddrs().map((a) => a.toString())
  }

  private makeJoinToken(): string {
    return encodeJoinToken({ clusterId: this.identity.clusterId, secret: this.identity.secret, seeds: this.addresses() })
  }

  private async learnAddresses(peerId: string, addresses: readonly string[]): Promise<void> {
    if (peerId === this.id || addresses.length === 0) return
    try {
      await this.host.peerStore.merge(peerIdFromString(peerId), { multiaddrs: addresses.map((a) => multiaddr(a)) })
    } catch {
      // A malformed address in a record should not stop the peer; the others still work.
    }
  }

  private readonly startedAtMs = Date.now()

  private joinRequest(): JoinRequest {
    return { peerId: this.id, name: this.identity.name, addresses: this.addresses(), apiAddress: this.apiAddressRef.value, startedAtMs: this.startedAtMs }
  }

  /** Register with the cluster through the seeds (or known peers), retrying until a leader answers. */
  private async register(seeds: string[]): Promise<void> {
    const request = this.joinRequest()
    for (let attempt = 0; !this.stopped && !this.leaving; attempt++) {
      try {
        const answer = await this.tryRegister(seeds, request)
        for (const p of answer.peers) await this.learnAddresses(p.peerId, p.addresses)
        return
      } catch {
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** Math.min(attempt, 5))))
      }
    }
  }

  private async tryRegister(seeds: string[], request: JoinRequest): Promise<JoinAnswer> {
    const node = this.driver.node
    if (node.role === 'leader') {
      const handlers = peerRpcHandlers(this.rpcContext())
      return (await handlers.join!(request, this.id, new AbortController().signal)) as JoinAnswer
    }
    for (const seed of seeds) {
      const ma = multiaddr(seed)
      await this.host.dial(ma, { signal: AbortSignal.timeout(3000) })
    }
    const targets = [node.leaderId, ...seeds.map((s) => s.split('/p2p/')[1]), ...this.registry.activePeers().map((p) => p.peerId)]
    const target = targets.find((t): t is string => t !== undefined && t !== null && t !== this.id)
    if (target === undefined) throw new Error('no peer to register with yet')
    return this.rpc.call<JoinAnswer>(target, 'join', request)
  }

  /** What the Kubernetes API needs of this peer. */
  resourceContext(): ResourceContext {
    return {
      store: this.state.store,
      submitter: this.submitter,
      ...(this.podLogs === null ? {} : { podLogs: this.podLogs }),
      nowIso: () => new Date().toISOString(),
      nowMs: () => Date.now(),
      linearizableRead: async () => {
        await withDeadline(this.driver.readIndex())
      },
    }
  }

  rpcContext(): Parameters<typeof peerRpcHandlers>[0] {
    return { clusterId: this.identity.clusterId, driver: this.driver, registry: this.registry, rpc: () => this.rpc, now: () => Date.now() }
  }

  /** Leave the cluster cleanly: ask to be removed, hand over leadership, wait until we are out. */
  async leave(): Promise<void> {
    this.leaving = true
    const node = this.driver.node
    const deadline = Date.now() + 15_000
    for (let attempt = 0; ; attempt++) {
      try {
        await this.askToLeave()
        break
      } catch (err) {
        if (Date.now() > deadline) throw err
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)))
      }
    }
    while (Date.now() < deadline && (node.isVoter(this.id) || node.status().conf.learners.includes(this.id))) {
      if (node.role === 'leader') {
        const other = node.status().conf.voters.find((v) => v !== this.id)
        if (other !== undefined) this.driver.transferLeadership(other)
      }
      await new Promise((r) => setTimeout(r, 50))
    }
    setImmediate(() => this.onLeft())
  }

  /** Record the departure through the leader; a peer that knows no leader yet asks another peer to forward it. */
  private async askToLeave(): Promise<void> {
    const handlers = peerRpcHandlers(this.rpcContext())
    try {
      await handlers.leave!({ peerId: this.id, atMs: Date.now() }, this.id, new AbortController().signal)
    } catch (err) {
      const other = this.registry.activePeers().find((p) => p.peerId !== this.id)
      if ((err as Error).name !== 'NotLeaderError' || other === undefined) throw err
      await this.rpc.call(other.peerId, 'leave', { peerId: this.id, atMs: Date.now() })
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.autopilot.stop()
    this.connections.stop()
    this.bootstrapper.stop()
    this.nodeObjects?.stop()
    this.control?.stop()
    await this.agent?.stop()
    await this.services?.stop()
    await new Promise<void>((resolve) => (this.server === null ? resolve() : this.server.close(() => resolve())))
    await this.gossip.stop().catch(() => {})
    await this.driver.stop()
    // Not needed for safety (the log replays them), but a clean stop leaves nothing to replay.
    await this.store.writeUnsynced(this.state.takePendingWrites()).catch(() => {})
    await this.podLogs?.stop().catch(() => {})
    await this.rpc.stop().catch(() => {})
    await this.network.stop().catch(() => {})
    await this.host.stop()
    await this.store.close()
  }
}
