// What a peer says about its host in its Node object: capacity, what is left
// for pods after the peer's own reserve, addresses and nodeInfo. Reading the
// host (`readHostFacts`) is kept apart from turning the facts into Kubernetes
// fields (everything else here, pure and table-tested).
import { readFile } from 'node:fs/promises'
import { arch, availableParallelism, hostname, networkInterfaces, platform, release, totalmem } from 'node:os'
import { kubernetesCompatibility } from '../api/discovery.js'

/** Kubernetes' default pod limit per kubelet. */
export const podsPerNode = 110
/** CPU kept for the peer itself (Raft, gossip, the API), as in the gossip health report. */
export const cpuReservedMillis = 100
/** Memory kept for the peer itself, like kube-reserved. */
export const memoryReservedBytes = 256 * 1024 * 1024

/** The host as read once at start-up (none of it changes while the process runs). */
export interface HostFacts {
  cpus: number
  memoryBytes: number
  /** Node's `process.arch`. */
  nodeArch: string
  /** Node's `process.platform`. */
  nodePlatform: string
  kernelVersion: string
  /** The text of /etc/os-release, or null if unreadable. */
  osRelease: string | null
  machineId: string | null
  bootId: string | null
  /** Non-internal IPv4 addresses of the host's interfaces, in interface order. */
  interfaceIpv4: string[]
  hostname: string
}

export type ResourceList = Record<string, string>

export interface NodeAddress {
  type: 'InternalIP' | 'Hostname'
  address: string
}

/** What the peer owns in its Node: labels and these status fields. Conditions belong to the leader. */
export interface HostDescription {
  labels: Record<string, string>
  status: {
    capacity: ResourceList
    allocatable: ResourceList
    addresses: NodeAddress[]
    nodeInfo: Record<string, string>
    daemonEndpoints: { kubeletEndpoint: { Port: number } }
  }
}

export interface PeerFacts {
  name: string
  peerId: string
  /** Multiaddr strings the peer listens on or announces. */
  listenAddresses: readonly string[]
  /** The port the peer's API listens on (the Node's daemon endpoint). */
  apiPort: number
  shoalVersion: string
  /** What the agent runs containers with (`docker://4.3.1`, `process://v20.20.2`); `none://` when no agent runs here. */
  runtimeVersion?: string
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8')
  } catch {
    return null
  }
}

export async function readHostFacts(): Promise<HostFacts> {
  const interfaceIpv4 = Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .filter((i) => i.family === 'IPv4' && !i.internal)
    .map((i) => i.address)
  return {
    cpus: availableParallelism(),
    memoryBytes: totalmem(),
    nodeArch: arch(),
    nodePlatform: platform(),
    kernelVersion: release(),
    osRelease: await readOptional('/etc/os-release'),
    machineId: (await readOptional('/etc/machine-id'))?.trim() || null,
    bootId: (await readOptional('/proc/sys/kernel/random/boot_id'))?.trim() || null,
    interfaceIpv4,
    hostname: hostname(),
  }
}

/** GOARCH names, which Kubernetes uses: amd64, not x64. */
export function kubernetesArch(nodeArch: string): string {
  const names: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' }
  return names[nodeArch] ?? nodeArch
}

/** GOOS names: linux, darwin, windows. */
export function kubernetesOs(nodePlatform: string): string {
  return nodePlatform === 'win32' ? 'windows' : nodePlatform
}

/** PRETTY_NAME from /etc/os-release, unquoted; a plain fallback when there is none. */
export function osImageOf(osRelease: string | null): string {
  for (const line of (osRelease ?? '').split('\n')) {
    const match = /^PRETTY_NAME=(.*)$/.exec(line.trim())
    if (match === null) continue
    const value = match[1]!.trim().replace(/^(["'])(.*)\1$/, '$2')
    if (value !== '') return value
  }
  return 'Unknown'
}

const ipv4InMultiaddr = /^\/ip4\/(\d{1,3}(?:\.\d{1,3}){3})\//

function isLoopbackOrUnspecified(ip: string): boolean {
  return ip.startsWith('127.') || ip === '0.0.0.0'
}

/** The first non-loopback IPv4 among the peer's addresses, then the host's interfaces; 127.0.0.1 if none. */
export function internalIpOf(listenAddresses: readonly string[], interfaceIpv4: readonly string[]): string {
  for (const address of listenAddresses) {
    const ip = ipv4InMultiaddr.exec(address)?.[1]
    if (ip !== undefined && !isLoopbackOrUnspecified(ip)) return ip
  }
  return interfaceIpv4.find((ip) => !isLoopbackOrUnspecified(ip)) ?? '127.0.0.1'
}

/** A label value (63 characters, alphanumeric at both ends) from a name that may be a longer subdomain. */
export function labelValueOf(name: string): string {
  return name.slice(0, 63).replace(/[^A-Za-z0-9]+$/, '')
}

/** Kubernetes' form: whole CPUs as integers, memory in Ki (`16333164Ki`). */
export function capacityOf(host: Pick<HostFacts, 'cpus' | 'memoryBytes'>): ResourceList {
  return { cpu: String(host.cpus), memory: `${Math.floor(host.memoryBytes / 1024)}Ki`, pods: String(podsPerNode) }
}

/** Capacity minus the peer's own reserve (cpuReservedMillis, memoryReservedBytes). */
export function allocatableOf(host: Pick<HostFacts, 'cpus' | 'memoryBytes'>): ResourceList {
  const cpuMillis = Math.max(0, host.cpus * 1000 - cpuReservedMillis)
  const memoryKi = Math.floor(Math.max(0, host.memoryBytes - memoryReservedBytes) / 1024)
  return { cpu: cpuMillis % 1000 === 0 ? String(cpuMillis / 1000) : `${cpuMillis}m`, memory: `${memoryKi}Ki`, pods: String(podsPerNode) }
}

/** The version a Node reports: the Kubernetes API Shoal speaks, then Shoal's own. */
export function peerVersionOf(shoalVersion: string): string {
  return `v${kubernetesCompatibility.major}.${kubernetesCompatibility.minor}.0+shoal.${shoalVersion}`
}

export function describeHost(host: HostFacts, peer: PeerFacts): HostDescription {
  const os = kubernetesOs(host.nodePlatform)
  const architecture = kubernetesArch(host.nodeArch)
  return {
    labels: {
      'kubernetes.io/hostname': labelValueOf(peer.name),
      'kubernetes.io/os': os,
      'kubernetes.io/arch': architecture,
      'shoal.io/peer-id': peer.peerId,
    },
    status: {
      capacity: capacityOf(host),
      allocatable: allocatableOf(host),
      addresses: [
        { type: 'InternalIP', address: internalIpOf(peer.listenAddresses, host.interfaceIpv4) },
        // The peer's name, as kubelet's --hostname-override would give it: several peers may share one host.
        { type: 'Hostname', address: peer.name },
      ],
      nodeInfo: {
        machineID: host.machineId ?? '',
        systemUUID: '',
        bootID: host.bootId ?? '',
        kernelVersion: host.kernelVersion,
        osImage: osImageOf(host.osRelease),
        containerRuntimeVersion: peer.runtimeVersion ?? 'none://',
        kubeletVersion: peerVersionOf(peer.shoalVersion),
        operatingSystem: os,
        architecture,
      },
      daemonEndpoints: { kubeletEndpoint: { Port: peer.apiPort } },
    },
  }
}
