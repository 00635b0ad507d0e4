// Every peer's service data path: the proxy tables from the local replica
// (proxy-table.ts), applied whenever a Service, an Endpoints or a Node
// changes. In kernel mode (root, iptables works) the kernel DNATs what it can
// reach directly and the userspace proxy serves the rest (endpoints behind
// other peers: TCP over the direct TLS data path between peers, keyed through
// /shoal/tunnel/1 and falling back to it, UDP through /shoal/tunnel-udp/1);
// in userspace mode it serves all.
// Routed VIPs (a service CIDR outside 127/8) are added to lo as /32s.
//
// Several peers may share a host (the demo runs three): they compute the same
// table, the first to bind a VIP:port serves it, and the others retry their
// failed listeners every relistenEveryMs, so one takes over if it stops.
import { createHash } from 'node:crypto'
import type { PeerHost } from '../../net/host.js'
import { KernelProxy, probeKernelProxy } from '../../net/kernel-proxy.js'
import type { ProxyServicePort } from '../../net/proxy-types.js'
import { ServiceProxy } from '../../net/service-proxy.js'
import { PeerDataServer } from '../../net/peer-data.js'
import { PeerDataDialer } from '../../net/peer-data-client.js'
import { TunnelClient, TunnelServer } from '../../net/tunnel.js'
import { UdpTunnelClient, UdpTunnelServer } from '../../net/tunnel-udp.js'
import type { ObjectStore } from '../store/object-store.js'
import { proxyTable, type EndpointsJson, type ServiceJson } from './proxy-table.js'
import { RoutedVips } from './routed-vips.js'

export type ProxyMode = 'kernel' | 'userspace' | 'auto'
export const proxyModes: readonly ProxyMode[] = ['kernel', 'userspace', 'auto']

/** Changes within this window are applied together. */
const applyDelayMs = 20
/** How often listeners that could not bind (another peer on this host has them) are tried again. */
export const relistenEveryMs = 2000

export class ProxyModeUnavailableError extends Error {
  override readonly name = 'ProxyModeUnavailableError'
}

export interface ServiceRoutingOptions {
  store: ObjectStore
  /** This peer's Node name. */
  nodeName: string
  host: PeerHost
  peerIdOfNode: (nodeName: string) => string | undefined
  mode: ProxyMode
  /** Host addresses NodePort services are served on. */
  nodePortAddresses: string[]
  /** Where the peer data path (net/peer-data.ts) listens; absent: this host's libp2p address, any free port; null: none (tunnel streams only). */
  dataListen?: { host: string; port: number } | null
  log: (line: string) => void
}

interface NodeJson {
  metadata: { name?: string }
  status?: { nodeInfo?: { machineID?: string; bootID?: string }; addresses?: { type: string; address: string }[] }
}

/** Where a Node's pods live: its machine, boot and network (loopback pod IPs are only reachable inside one network namespace). */
function placeOf(node: NodeJson | undefined): string | null {
  const info = node?.status?.nodeInfo
  const ip = node?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address
  if (info?.machineID === undefined || info.machineID === '' || ip === undefined) return null
  return `${info.machineID}/${info.bootID ?? ''}/${ip}`
}

/**
 * The data path listens where libp2p does: the one IP address this host announces for it
 * (127.0.0.1 for a cluster on loopback, the namespace's address in the multi-host tests), else
 * every address. The listener is keyed (TLS with pre-shared keys), so a wider bind reaches nothing.
 */
function dataListenHostOf(host: PeerHost): string {
  const ips = new Set(host.getMultiaddrs().flatMap((a) => a.getComponents().filter((c) => c.name === 'ip4').map((c) => c.value ?? '')))
  return ips.size === 1 ? [...ips][0]! : '0.0.0.0'
}

/** Our iptables chains: one prefix per peer, so peers sharing a network namespace keep apart. */
function chainPrefixOf(nodeName: string): string {
  return `S${createHash('sha256').update(nodeName).digest('hex').slice(0, 6).toUpperCase()}`
}

export class ServiceRouting {
  private stopWatch: (() => void) | null = null
  private timer: ReturnType<typeof setTimeout> | null = null
  private relisten: ReturnType<typeof setInterval> | null = null
  private applying: Promise<void> | null = null
  private again = false
  private stopped = false
  /** Listeners that failed to bind at the last apply. */
  failedListeners = 0
  /** Applies done, for tests. */
  applied = 0

  private constructor(
    private readonly o: ServiceRoutingOptions,
    private readonly userspace: ServiceProxy,
    private readonly kernel: KernelProxy | null,
    private readonly tunnelServer: TunnelServer,
    private readonly udpTunnelServer: UdpTunnelServer,
    private readonly vips: RoutedVips,
    private readonly dataServer: PeerDataServer | null,
  ) {}

  /** Connections to endpoints behind other peers since start, by path: the direct TLS data path or tunnel streams. */
  get peerConnections(): { direct: number; tunnel: number } {
    return { direct: this.userspace.directPeerConnectsTotal, tunnel: this.userspace.tunnelConnectsTotal }
  }

  static async start(o: ServiceRoutingOptions): Promise<ServiceRouting> {
    let kernel: KernelProxy | null = null
    const chainPrefix = chainPrefixOf(o.nodeName)
    if (o.mode !== 'userspace') {
      const probe = await probeKernelProxy({ chainPrefix })
      if (probe.ok) kernel = await KernelProxy.start({ chainPrefix })
      else if (o.mode === 'kernel') throw new ProxyModeUnavailableError(`--proxy-mode kernel: ${probe.reason}`)
    }
    // The direct data path between peers (TLS, keyed through the tunnel stream); dataListen null: tunnel streams only.
    const dataServer =
      o.dataListen === null
        ? null
        : await PeerDataServer.start({ host: o.dataListen?.host ?? dataListenHostOf(o.host), port: o.dataListen?.port ?? 0 }).catch((err: Error) => {
            o.log(`service proxy: the peer data path cannot listen (${err.message}); other peers reach this one's endpoints through /shoal/tunnel/1`)
            return null
          })
    const tunnelServer = new TunnelServer({ host: o.host, ...(dataServer === null ? {} : { dataPath: dataServer }) })
    await tunnelServer.start()
    const udpTunnelServer = new UdpTunnelServer({ host: o.host })
    await udpTunnelServer.start()
    const tunnelClient = new TunnelClient(o.host)
    const userspace = new ServiceProxy({ tunnel: new PeerDataDialer({ tunnel: tunnelClient, log: o.log }), udpTunnel: new UdpTunnelClient(o.host), nodePortAddresses: o.nodePortAddresses })
    const routing = new ServiceRouting(o, userspace, kernel, tunnelServer, udpTunnelServer, new RoutedVips(o.log), dataServer)
    routing.stopWatch = o.store.watches.watchFrom(o.store.appliedIndex, (e) => {
      if (e.object.apiVersion === 'v1' && (e.object.kind === 'Service' || e.object.kind === 'Endpoints' || e.object.kind === 'Node')) routing.schedule()
    })
    routing.relisten = setInterval(() => {
      if (routing.failedListeners > 0) routing.schedule()
    }, relistenEveryMs)
    await routing.applyNow()
    return routing
  }

  /** `kernel` or `userspace`: what serves the ports this peer can reach directly. */
  get mode(): 'kernel' | 'userspace' {
    return this.kernel === null ? 'userspace' : 'kernel'
  }

  private schedule(): void {
    if (this.stopped || this.timer !== null) return
    this.timer = setTimeout(() => {
      this.timer = null
      void this.applyNow()
    }, applyDelayMs)
  }

  /** Applies the table now (or once the apply in flight ends). */
  async applyNow(): Promise<void> {
    if (this.applying !== null) {
      this.again = true
      return this.applying
    }
    this.applying = this.apply()
      .catch((err: Error) => this.o.log(`service proxy: ${err.message}`))
      .finally(() => {
        this.applying = null
        if (this.again && !this.stopped) {
          this.again = false
          void this.applyNow()
        }
      })
    return this.applying
  }

  private table(): ProxyServicePort[] {
    const { store } = this.o
    const def = (kind: string) => store.kinds.byKind('v1', kind)!
    const endpoints = new Map<string, EndpointsJson>()
    for (const e of store.list(def('Endpoints')) as EndpointsJson[]) endpoints.set(`${e.metadata.namespace ?? 'default'}/${e.metadata.name ?? ''}`, e)
    const nodes = store.list(def('Node')) as unknown as NodeJson[]
    // Pods of other peers on this very host and network (same machine, boot and address) are reachable without a tunnel.
    const here = placeOf(nodes.find((n) => n.metadata.name === this.o.nodeName))
    const directNodes = new Set(nodes.filter((n) => here !== null && placeOf(n) === here).map((n) => n.metadata.name ?? ''))
    return proxyTable(store.list(def('Service')) as ServiceJson[], endpoints, { nodeName: this.o.nodeName, directNodes, peerIdOfNode: this.o.peerIdOfNode })
  }

  private async apply(): Promise<void> {
    if (this.stopped) return
    const table = this.table()
    await this.vips.ensure(table.map((p) => p.vip))
    let forUserspace = table
    if (this.kernel !== null) {
      const taken = await this.kernel.apply(table)
      const rest = new Set(taken.userspacePortIds)
      forUserspace = table.filter((p) => rest.has(p.id))
    }
    const result = await this.userspace.apply(forUserspace)
    this.failedListeners = result.failed.length
    this.applied++
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.stopWatch?.()
    if (this.timer !== null) clearTimeout(this.timer)
    if (this.relisten !== null) clearInterval(this.relisten)
    await this.applying
    await this.userspace.close()
    await this.kernel?.close()
    await this.tunnelServer.stop()
    await this.dataServer?.close()
    await this.udpTunnelServer.stop()
    await this.vips.removeAll()
  }
}
