// The cluster under test: N peers, each in its own network namespace, with
// the process runtime (real pods), reachable from this process through an API
// relay per host (relay.ts), and the controls the nemesis needs: SIGKILL and
// restart, SIGSTOP and SIGCONT, finding the leader.
import { Agent, request } from 'node:https'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import type { ApiTarget } from '../../node/cli/client.js'
import type { ClusterView } from '../../node/http-api.js'
import { ProcessCluster, until, type PeerProcess } from '../node/process-cluster.js'
import { VirtualNetwork, type VirtualHost } from '../hosts/netns.js'
import { startApiRelay } from './relay.js'

export interface ApiAnswer {
  /** 0 when no HTTP answer came (see `error`). */
  status: number
  text: string
  error?: string
}

export type PeerState = 'up' | 'killed' | 'paused'

export interface JepsenPeer {
  name: string
  host: VirtualHost
  process: PeerProcess
  socketPath: string
  target: ApiTarget
  state: PeerState
}

export interface ClusterOptions {
  peers: number
  label: string
  /** Where data dirs and relay sockets go. */
  dir: string
  /** The peers' eviction timeout: pods of a peer unreachable this long are replaced elsewhere. */
  podEvictionTimeoutMs: number
}

/** Connections kept open to each peer's API, per client agent. */
const socketsPerPeerMax = 8

export class JepsenCluster {
  private readonly agents = new Map<string, Agent>()
  private readonly relays: ChildProcess[] = []

  private constructor(
    readonly vnet: VirtualNetwork,
    readonly processes: ProcessCluster,
    readonly peers: JepsenPeer[],
    readonly peerArgs: string[],
  ) {}

  static async start(options: ClusterOptions): Promise<JepsenCluster> {
    await mkdir(options.dir, { recursive: true })
    const vnet = await VirtualNetwork.create({ hosts: options.peers, label: options.label })
    const processes = await ProcessCluster.create()
    const peerArgs = ['--runtime', 'process', '--pod-eviction-timeout', `${options.podEvictionTimeoutMs / 1000}s`]
    const peers: JepsenPeer[] = []
    try {
      for (const [k, host] of vnet.hosts.entries()) {
        const process = await processes.add(`j${k + 1}`, { ip: host.ip })
        peers.push({ name: process.name, host, process, socketPath: join(options.dir, `${host.name}.sock`), target: { server: 'https://127.0.0.1:7947', namespace: 'default' }, state: 'up' })
      }
      const cluster = new JepsenCluster(vnet, processes, peers, peerArgs)
      cluster.launch(peers[0]!, [])
      const token = await processes.tokenOf(peers[0]!.process)
      for (const peer of peers.slice(1)) cluster.launch(peer, ['--join', token])
      for (const peer of peers) {
        peer.target = await processes.target(peer.process)
        cluster.relays.push(await startApiRelay(vnet, peer.host, peer.socketPath))
      }
      await cluster.waitHealthy(120_000)
      return cluster
    } catch (error) {
      await processes.destroy()
      await vnet.destroy()
      throw error
    }
  }

  private launch(peer: JepsenPeer, extraArgs: string[]): void {
    this.processes.start(peer.process, [...extraArgs, ...this.peerArgs], (command, args) => this.vnet.spawn(peer.host, command, args))
    peer.state = 'up'
  }

  peer(name: string): JepsenPeer {
    const peer = this.peers.find((p) => p.name === name)
    if (peer === undefined) throw new Error(`no peer ${name}`)
    return peer
  }

  /** One HTTPS call through the peer's relay. Never rejects: a transport failure is status 0 with `error`. */
  request(peer: JepsenPeer, method: string, path: string, body?: unknown, timeoutMs = 6000): Promise<ApiAnswer> {
    let agent = this.agents.get(peer.name)
    if (agent === undefined) {
      agent = new Agent({ keepAlive: true, maxSockets: socketsPerPeerMax })
      this.agents.set(peer.name, agent)
    }
    const text = body === undefined ? undefined : JSON.stringify(body)
    const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${peer.target.token ?? ''}` }
    if (text !== undefined) {
      headers['content-type'] = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json'
      headers['content-length'] = String(Buffer.byteLength(text))
    }
    return new Promise((resolve) => {
      const req = request({ socketPath: peer.socketPath, host: '127.0.0.1', path, method, headers, agent, ca: peer.target.caPem }, (res) => {
        let answer = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (answer += chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: answer }))
        res.on('error', (err) => resolve({ status: 0, text: '', error: err.message }))
      })
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
      req.on('error', (err) => resolve({ status: 0, text: '', error: err.message }))
      if (text !== undefined) req.write(text)
      req.end()
    })
  }

  async view(peer: JepsenPeer, timeoutMs = 2000): Promise<ClusterView | undefined> {
    const answer = await this.request(peer, 'GET', '/shoal/v1/cluster', undefined, timeoutMs)
    return answer.status === 200 ? (JSON.parse(answer.text) as ClusterView) : undefined
  }

  /** The leader as a majority of the peers that answer see it, or undefined when they disagree or none answers. */
  async leader(): Promise<JepsenPeer | undefined> {
    const views = await Promise.all(this.peers.filter((p) => p.state === 'up').map((p) => this.view(p)))
    const counts = new Map<string, number>()
    for (const view of views) {
      const name = view?.peers.find((p) => p.peerId === view.leaderId)?.name
      if (name !== undefined) counts.set(name, (counts.get(name) ?? 0) + 1)
    }
    const [best] = [...counts.entries()].sort((a, b) => b[1] - a[1])
    return best === undefined || best[1] <= this.peers.length / 2 ? undefined : this.peer(best[0])
  }

  /** Every peer up, all voters or leader, one leader all agree on, every API serving. */
  async waitHealthy(timeoutMs: number): Promise<string> {
    return until(async () => {
      const views = await Promise.all(this.peers.map((p) => this.view(p)))
      if (views.some((v) => v === undefined)) return undefined
      const leaders = new Set(views.map((v) => v!.leaderId))
      const first = views[0]!
      const voters = first.peers.filter((p) => p.raftRole === 'leader' || p.raftRole === 'voter')
      if (leaders.size !== 1 || first.leaderId === null || voters.length !== Math.min(this.peers.length, 5)) return undefined
      const serving = await Promise.all(this.peers.map((p) => this.request(p, 'GET', '/api/v1/namespaces/default', undefined, 2000)))
      return serving.every((a) => a.status === 200) ? (first.peers.find((p) => p.peerId === first.leaderId)?.name ?? '') : undefined
    }, timeoutMs, `${this.peers.length} healthy peers with one leader`)
  }

  pidOf(peer: JepsenPeer): number | undefined {
    return peer.process.child?.pid
  }

  async kill(peer: JepsenPeer): Promise<void> {
    if (peer.state === 'paused') this.signal(peer, 'SIGCONT')
    await this.processes.kill(peer.process, 'SIGKILL')
    peer.state = 'killed'
  }

  /** Starts a killed peer again from its data dir (no --join: it rejoins by itself). */
  restart(peer: JepsenPeer): void {
    if (peer.state !== 'killed') return
    this.launch(peer, [])
  }

  pause(peer: JepsenPeer): void {
    if (peer.state !== 'up') return
    this.signal(peer, 'SIGSTOP')
    peer.state = 'paused'
  }

  resume(peer: JepsenPeer): void {
    if (peer.state !== 'paused') return
    this.signal(peer, 'SIGCONT')
    peer.state = 'up'
  }

  private signal(peer: JepsenPeer, signal: NodeJS.Signals): void {
    const pid = this.pidOf(peer)
    if (pid !== undefined) process.kill(pid, signal)
  }

  /** Every peer running and not paused; network faults are the nemesis' to heal. */
  async reviveAll(): Promise<void> {
    for (const peer of this.peers) {
      if (peer.state === 'paused') this.resume(peer)
      if (peer.state === 'killed') this.restart(peer)
    }
  }

  async destroy(): Promise<void> {
    for (const peer of this.peers) if (peer.state === 'paused') this.resume(peer)
    for (const agent of this.agents.values()) agent.destroy()
    for (const relay of this.relays) relay.kill('SIGKILL')
    await this.processes.destroy()
    await this.vnet.destroy()
  }
}
