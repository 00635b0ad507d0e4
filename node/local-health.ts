// What this peer reports about itself over gossip, twice a second.
import { availableParallelism, freemem, loadavg, totalmem } from 'node:os'
import type { RaftDriver } from '../consensus/driver.js'
import type { LocalHealth, RaftRole } from '../net/gossip.js'
import type { PeerHost } from '../net/host.js'

const version = process.env.npm_package_version ?? '0.1.0'

function raftRole(driver: RaftDriver): RaftRole {
  const node = driver.node
  if (node.role === 'leader') return 'leader'
  if (node.isVoter(node.id)) return 'voter'
  return node.status().conf.learners.includes(node.id) ? 'learner' : 'none'
}

export function localHealth(name: string, host: PeerHost, driver: RaftDriver, apiAddress: () => string | null = () => null): LocalHealth {
  const cpuMillis = availableParallelism() * 1000
  const memoryBytes = totalmem()
  return {
    name,
    peerId: host.peerId.toString(),
    addresses: host.getMultiaddrs().map((a) => a.toString()),
    apiAddress: apiAddress(),
    capacity: { cpuMillis, memoryBytes },
    // Allocatable leaves room for the system and the peer itself (Kubernetes' kube-reserved, roughly).
    allocatable: { cpuMillis: Math.max(0, cpuMillis - 100), memoryBytes: Math.max(0, memoryBytes - 256 * 1024 * 1024) },
    load: { cpuPercent: Math.min(100, (100 * loadavg()[0]!) / availableParallelism()), memoryUsedBytes: memoryBytes - freemem(), loadAverage1m: loadavg()[0]! },
    podCount: 0,
    runtime: 'none',
    version,
    raftRole: raftRole(driver),
  }
}
