// Keep this peer connected to a few others: gossipsub builds its mesh only
// over open connections, so a joiner that knew only its seed would leave the
// cluster a star around one peer. Voters first (Raft talks to them anyway),
// then others at random, up to peerConnectionsTarget.
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerHost } from '../net/host.js'
import type { ClusterRegistry } from './registry.js'

export interface ConnectionKeeperOptions {
  host: PeerHost
  registry: ClusterRegistry
  voters: () => readonly string[]
  peerConnectionsTarget?: number
  intervalMs?: number
  /** Dials in flight at once. */
  dialsInFlightMax?: number
}

export class ConnectionKeeper {
  private timer: ReturnType<typeof setInterval> | null = null
  private dialing = new Set<string>()

  constructor(private readonly options: ConnectionKeeperOptions) {}

  start(): void {
    this.timer = setInterval(() => this.round(), this.options.intervalMs ?? 2000)
    this.round()
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  round(): void {
    const { host, registry } = this.options
    const self = host.peerId.toString()
    const connected = new Set(host.getConnections().map((c) => c.remotePeer.toString()))
    const target = this.options.peerConnectionsTarget ?? 8
    const voters = new Set(this.options.voters())
    const candidates = registry
      .activePeers()
      .map((p) => p.peerId)
      .filter((id) => id !== self && !connected.has(id) && !this.dialing.has(id))
      .sort((a, b) => Number(voters.has(b)) - Number(voters.has(a)) || Math.random() - 0.5)
    let room = Math.min(target - connected.size, (this.options.dialsInFlightMax ?? 4) - this.dialing.size)
    for (const id of candidates) {
      if (room-- <= 0) break
      this.dialing.add(id)
      host
        .dial(peerIdFromString(id), { signal: AbortSignal.timeout(5000) })
        .catch(() => {}) // an unreachable peer is gossip's business; we try others next round
        .finally(() => this.dialing.delete(id))
    }
  }
}
