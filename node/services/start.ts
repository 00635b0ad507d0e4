// Starting a peer's service data path and cluster DNS: ServiceRouting (the
// proxies) and a DnsServer answering from the local replica. `--proxy-mode
// off` runs neither (a peer that serves no service addresses; tests that run
// several clusters on one host use it so their VIPs never meet).
import type { PeerHost } from '../../net/host.js'
import { DnsServer } from '../../net/dns-server.js'
import type { ObjectStore } from '../store/object-store.js'
import { DnsRecords } from './dns-records.js'
import { ServiceRouting, type ProxyMode } from './service-routing.js'

export type ServicesMode = ProxyMode | 'off'
export const servicesModes: readonly ServicesMode[] = ['kernel', 'userspace', 'auto', 'off']

export interface ServicesSettings {
  proxyMode: ServicesMode
  /** Where this peer answers DNS (port 0: any free port). */
  dnsHost: string
  dnsPort: number
  /**
   * Where other peers' proxies connect to reach this peer's pods over TLS (net/peer-data.ts).
   * Absent: this host's libp2p address on a free port; null: tunnel streams only.
   */
  dataListen?: { host: string; port: number } | null
}

export const defaultServicesSettings: ServicesSettings = { proxyMode: 'auto', dnsHost: '127.0.0.1', dnsPort: 0 }

export interface StartedServices {
  routing: ServiceRouting
  dns: DnsServer
  /** `host:port` pods resolve cluster names through. */
  dnsAddress: string
  stop(): Promise<void>
}

export interface ServicesStartOptions extends ServicesSettings {
  store: ObjectStore
  nodeName: string
  host: PeerHost
  peerIdOfNode: (nodeName: string) => string | undefined
  nodePortAddresses: string[]
  log: (line: string) => void
}

/**
 * What to tell the user when the Docker runtime meets a loopback service CIDR: a container has its own
 * loopback, so cluster IPs in 127/8 are out of its reach (process-runtime pods and host processes are fine).
 */
export function dockerServiceCidrWarning(runtimeVersion: string | undefined, serviceCidr: string | undefined): string | null {
  if (runtimeVersion?.startsWith('docker://') !== true || serviceCidr?.startsWith('127.') !== true) return null
  return `the cluster's service CIDR ${serviceCidr} is on loopback, which containers cannot reach: Docker pods will not reach cluster IPs (start the cluster's first peer with a routed --service-cidr such as 10.96.0.0/16)`
}

export async function startServices(o: ServicesStartOptions): Promise<StartedServices | null> {
  if (o.proxyMode === 'off') return null
  const routing = await ServiceRouting.start({ store: o.store, nodeName: o.nodeName, host: o.host, peerIdOfNode: o.peerIdOfNode, mode: o.proxyMode, nodePortAddresses: o.nodePortAddresses, log: o.log, ...(o.dataListen === undefined ? {} : { dataListen: o.dataListen }) })
  const records = new DnsRecords({ store: o.store })
  records.start()
  const dns = await DnsServer.start({ host: o.dnsHost, port: o.dnsPort, resolver: records })
  return {
    routing,
    dns,
    dnsAddress: `${dns.host}:${dns.port}`,
    stop: async () => {
      await dns.close()
      records.stop()
      await routing.stop()
    },
  }
}
