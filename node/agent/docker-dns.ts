// Cluster DNS for Docker-runtime pods. The engine takes a container's resolvers
// as bare IPs (port 53 implied), used from inside the pod's network namespace,
// so the peer's cluster DNS (127.0.0.1 on a free port by default) is out of
// their reach. When the peer can, it relays: a DNS server on the engine
// bridge's gateway address (10.88.0.1 on Podman, 172.17.0.1 on Docker), UDP
// and TCP port 53, forwarding every query to the cluster DNS, and pods get
// that gateway as their nameserver. Binding port 53 needs root; the gateway
// port may be taken (Podman's aardvark-dns serves networks with dns_enabled,
// or another peer on this host relays already); then pods get the engine's
// default resolver, and the log says so once.
import { isIP } from 'node:net'
import type Docker from 'dockerode'
import { DnsServer, type DnsResolver } from '../../net/dns-server.js'

export interface ContainerDnsOptions {
  docker: Docker
  /** The peer's cluster DNS, `HOST:PORT`. */
  clusterDns: string
  log: (line: string) => void
  /** The engine network pods join by default ('bridge': Docker's, and Podman's default network under that name). */
  networkName?: string
}

/** While the gateway is not an address here (a bridge the engine makes with its first container), binding is tried again this often. */
const bindRetryIntervalMs = 5_000
/** A query relayed to the cluster DNS, which may itself be forwarding upstream (2 s per upstream). */
const relayTimeoutMs = 5_000
const relayEverything: DnsResolver = { resolve: () => ({ kind: 'forward' }) }

/** `HOST:PORT` or a bare IP, as an IP and port; null when it is neither. */
export function parseResolver(address: string): { host: string; port: number } | null {
  if (isIP(address) !== 0) return { host: address, port: 53 }
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address)
  if (match === null || isIP(match[1]!) === 0) return null
  return { host: match[1]!, port: Number(match[2]) }
}

function isLoopbackOrAny(host: string): boolean {
  return host.startsWith('127.') || host === '::1' || host === '0.0.0.0' || host === '::'
}

/** A resolver a container can use as it is: an address other than loopback or wildcard, on port 53. */
export function engineUsableResolver(address: string): string | null {
  const parsed = parseResolver(address)
  return parsed !== null && parsed.port === 53 && !isLoopbackOrAny(parsed.host) ? parsed.host : null
}

export class ContainerDns {
  private relay: DnsServer | null = null
  private gateway: string | null = null
  /** Set when containers can never be given the cluster DNS (the reason was logged). */
  private unavailable = false
  private nextBindAttemptMs = 0
  private inFlight: Promise<string | null> | null = null
  private readonly logged = new Set<string>()

  constructor(private readonly o: ContainerDnsOptions) {}

  /** The nameserver IP to give a pod's containers for the cluster DNS, or null: the engine's default resolver. */
  resolverIp(): Promise<string | null> {
    if (this.relay !== null) return Promise.resolve(this.gateway)
    if (this.unavailable) return Promise.resolve(null)
    this.inFlight ??= this.establish().finally(() => (this.inFlight = null))
    return this.inFlight
  }

  async close(): Promise<void> {
    this.unavailable = true
    await this.inFlight?.catch(() => null)
    await this.relay?.close()
    this.relay = null
  }

  private async establish(): Promise<string | null> {
    const upstream = parseResolver(this.o.clusterDns)
    if (upstream === null) return this.giveUp(`the cluster DNS address ${JSON.stringify(this.o.clusterDns)} is not HOST:PORT`)
    this.gateway ??= await this.bridgeGateway()
    if (this.gateway === null) return null
    // A cluster DNS on every address at port 53 already answers on the gateway.
    if (upstream.port === 53 && (upstream.host === '0.0.0.0' || upstream.host === '::')) return this.gateway
    if (Date.now() < this.nextBindAttemptMs) return null
    const target = { host: upstream.host === '0.0.0.0' ? '127.0.0.1' : upstream.host === '::' ? '::1' : upstream.host, port: upstream.port }
    try {
      this.relay = await DnsServer.start({ host: this.gateway, port: 53, resolver: relayEverything, upstreams: [target], forwardTimeoutMs: relayTimeoutMs })
    } catch (err) {
      return this.bindFailed(err as NodeJS.ErrnoException)
    }
    this.o.log(`cluster DNS for Docker pods: ${this.gateway}:53 (UDP and TCP), relayed to ${this.o.clusterDns}`)
    return this.gateway
  }

  private async bridgeGateway(): Promise<string | null> {
    const name = this.o.networkName ?? 'bridge'
    try {
      const info = (await this.o.docker.getNetwork(name).inspect()) as { IPAM?: { Config?: { Gateway?: string }[] } }
      const gateway = (info.IPAM?.Config ?? []).map((config) => config.Gateway ?? '').find((address) => isIP(address) === 4)
      if (gateway !== undefined) return gateway
      return this.giveUp(`the engine's network "${name}" has no IPv4 gateway`)
    } catch (err) {
      return this.giveUp(`the engine's network "${name}" could not be inspected: ${(err as Error).message}`)
    }
  }

  private bindFailed(err: NodeJS.ErrnoException): null {
    const where = `${this.gateway}:53`
    if (err.code === 'EADDRNOTAVAIL') {
      // The engine may make the bridge with its first container: try again later.
      this.nextBindAttemptMs = Date.now() + bindRetryIntervalMs
      this.logOnce('not-yet', `Docker pods get the engine's default resolver for now: ${this.gateway} (the engine's bridge gateway) is not an address of this host, so cluster DNS cannot listen on it; trying again when pods start`)
      return null
    }
    if (err.code === 'EADDRINUSE') {
      return this.giveUp(`port 53 on ${this.gateway} is taken (Podman's aardvark-dns on a network with dns_enabled, or another peer on this host relays already)`)
    }
    if (err.code === 'EACCES' || err.code === 'EPERM') return this.giveUp(`listening on ${where} needs root (port 53)`)
    return this.giveUp(`listening on ${where} failed: ${err.message}`)
  }

  private giveUp(reason: string): null {
    this.unavailable = true
    this.logOnce('final', `Docker pods get the engine's default resolver, not cluster DNS: ${reason}`)
    return null
  }

  private logOnce(key: string, line: string): void {
    if (this.logged.has(key)) return
    this.logged.add(key)
    this.o.log(line)
  }
}
