// Peers as real processes on this machine (or inside network namespaces),
// started with the real CLI, killed with real signals.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { apiRequest, resolveTarget, type ApiResponse, type ApiTarget } from '../../node/cli/client.js'
import type { ClusterView } from '../../node/http-api.js'

const cli = new URL('../../node/cli/main.ts', import.meta.url).pathname

export interface PeerProcess {
  name: string
  dataDir: string
  listen: string
  api: string
  child: ChildProcess | null
  output: string
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export async function until<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined && value !== false) return value
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : ` (last error: ${(last as Error).message})`}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** How a peer process is launched: directly, or through a wrapper such as `ip netns exec NS`. */
export type Launcher = (command: string, args: string[]) => ChildProcess

const directLauncher: Launcher = (command, args) => spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })

export class ProcessCluster {
  readonly peers = new Map<string, PeerProcess>()
  private constructor(readonly root: string) {}

  static async create(): Promise<ProcessCluster> {
    const cluster = new ProcessCluster(await mkdtemp(join(tmpdir(), 'shoal-cluster-')))
    // Whatever happens to this process, its peers must not outlive it.
    process.once('exit', () => {
      for (const p of cluster.peers.values()) p.child?.kill('SIGKILL')
    })
    return cluster
  }

  /** A peer on loopback with free ports, or (given `ip`) one in its own network namespace on fixed ports. */
  async add(name: string, options: { ip?: string } = {}): Promise<PeerProcess> {
    const inNamespace = options.ip !== undefined
    const peer: PeerProcess = {
      name,
      dataDir: join(this.root, name),
      listen: inNamespace ? `${options.ip}:7946` : `127.0.0.1:${await freePort()}`,
      // In a namespace the API listens everywhere, so a probe inside it can use 127.0.0.1.
      api: inNamespace ? '0.0.0.0:7947' : `127.0.0.1:${await freePort()}`,
      child: null,
      output: '',
    }
    this.peers.set(name, peer)
    return peer
  }

  start(peer: PeerProcess, extraArgs: string[] = [], launcher: Launcher = directLauncher): void {
    // Peers run no agent unless a test asks for a runtime: most tests simulate what runs pods.
    const runtime = extraArgs.includes('--runtime') ? [] : ['--runtime', 'none']
    // Nor service proxies: clusters of tests running side by side on one host could hand out the same VIPs.
    if (!extraArgs.includes('--proxy-mode')) runtime.push('--proxy-mode', 'off')
    const args = ['--import', 'tsx', cli, 'up', '--data-dir', peer.dataDir, '--name', peer.name, '--listen', peer.listen, '--api', peer.api, ...runtime, ...extraArgs]
    const child = launcher(process.execPath, args)
    peer.output = ''
    child.stdout?.on('data', (d: Buffer) => (peer.output += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (peer.output += d.toString()))
    peer.child = child
  }

  /** The join token the bootstrapping peer printed. */
  async tokenOf(peer: PeerProcess): Promise<string> {
    return until(() => /SHOAL1-[A-Za-z0-9_-]+/.exec(peer.output)?.[0], 30_000, `${peer.name} to print its join token`)
  }

  /** The peer's API target from the kubeconfig it wrote (HTTPS, the cluster CA, the admin token). */
  async target(peer: PeerProcess): Promise<ApiTarget> {
    const target = await until(() => resolveTarget({ 'data-dir': peer.dataDir }).catch(() => undefined), 30_000, `${peer.name}'s kubeconfig`)
    return target
  }

  async request(peer: PeerProcess, method: string, path: string, body?: string, timeoutMs = 3000): Promise<ApiResponse> {
    return apiRequest(await this.target(peer), method, path, { ...(body === undefined ? {} : { body, contentType: 'text/plain' }), timeoutMs })
  }

  async view(peer: PeerProcess): Promise<ClusterView> {
    const response = await this.request(peer, 'GET', '/shoal/v1/cluster')
    if (response.status !== 200) throw new Error(`cluster view: HTTP ${response.status} ${response.text}`)
    return JSON.parse(response.text) as ClusterView
  }

  async setSetting(peer: PeerProcess, key: string, value: string, timeoutMs = 3000): Promise<ApiResponse> {
    return this.request(peer, 'PUT', `/shoal/v1/settings/${key}`, value, timeoutMs)
  }

  async getSetting(peer: PeerProcess, key: string, linearizable = false): Promise<string | undefined> {
    const response = await this.request(peer, 'GET', `/shoal/v1/settings/${key}${linearizable ? '?linearizable=true' : ''}`)
    if (response.status === 404) return undefined
    return (JSON.parse(response.text) as { value: string }).value
  }

  kill(peer: PeerProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = peer.child
    peer.child = null
    if (child === null || child.exitCode !== null) return Promise.resolve()
    return new Promise((resolve) => {
      child.once('exit', () => resolve())
      child.kill(signal)
    })
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.peers.values()].map((p) => this.kill(p)))
    await rm(this.root, { recursive: true, force: true })
  }
}

export function leaderName(view: ClusterView): string | undefined {
  return view.peers.find((p) => p.peerId === view.leaderId)?.name
}

export interface VotingCluster {
  cluster: ProcessCluster
  peers: PeerProcess[]
  leader: PeerProcess
  followers: PeerProcess[]
}

/** Peers joined through the first one's token, once all are voters under one leader and every API serves the default namespace. */
export async function startVotingCluster(names: string[], extraArgs: string[] = []): Promise<VotingCluster> {
  const cluster = await ProcessCluster.create()
  const peers = await Promise.all(names.map((n) => cluster.add(n)))
  cluster.start(peers[0]!, extraArgs)
  const token = await cluster.tokenOf(peers[0]!)
  for (const p of peers.slice(1)) cluster.start(p, ['--join', token, ...extraArgs])
  const name = await until(async () => {
    const view = await cluster.view(peers[0]!)
    const voters = view.peers.filter((p) => p.raftRole === 'leader' || p.raftRole === 'voter')
    return voters.length === Math.min(peers.length, 5) ? leaderName(view) : undefined
  }, 30_000, `${names.length} voters and a leader`)
  for (const p of peers) await until(async () => (await cluster.request(p, 'GET', '/api/v1/namespaces/default')).status === 200 || undefined, 30_000, `${p.name} to serve the default namespace`)
  const leader = peers.find((p) => p.name === name)!
  return { cluster, peers, leader, followers: peers.filter((p) => p !== leader) }
}
