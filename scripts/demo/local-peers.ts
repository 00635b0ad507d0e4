// Peers of `shoal up` on this machine, for `npm run demo` and `npm run peers`:
// each with its data dir and log under one folder, loopback addresses and free
// ports; the first bootstraps, the others join with its token. They run in
// process groups of their own, so a Ctrl-C in the terminal reaches only the
// script, which stops them in order (pods first).
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { apiRequest, resolveTarget, type ApiTarget } from '../../node/cli/client.js'
import type { ClusterView } from '../../node/http-api.js'

export const repoRoot = new URL('../../', import.meta.url).pathname.replace(/\/$/, '')

/** How to run the `shoal` command: the build in dist/ (what `npm install` makes), else the sources through tsx. */
export interface ShoalCli {
  command: string
  args: string[]
  /** For people: `node dist/node/cli/main.js`. */
  display: string
  /** Why the sources run rather than dist/, when they do. */
  sourceReason?: string
}

/** dist/ when it is there and no newer than the sources it is built from; else the sources through tsx. */
export async function shoalCli(preferSource = false): Promise<ShoalCli> {
  const built = join(repoRoot, 'dist/node/cli/main.js')
  const source = join(repoRoot, 'node/cli/main.ts')
  // tsx by its path: `--import tsx` would look for it from the working directory.
  const tsx = new URL(import.meta.resolve('tsx')).pathname
  const fromSource = (sourceReason: string): ShoalCli => ({ command: process.execPath, args: ['--import', tsx, source], display: `node --import ${tsx} ${source}`, sourceReason })
  if (preferSource) return fromSource('--from-source')
  if (!existsSync(built)) return fromSource('dist/ is not built (npm install builds it)')
  const newer = await newerSource(statSync(built).mtimeMs)
  if (newer !== undefined) return fromSource(`dist/ is older than ${newer} (npm run build updates it)`)
  return { command: process.execPath, args: [built], display: `node ${built}` }
}

/** A source file of the build changed after `builtAtMs`, if any. */
async function newerSource(builtAtMs: number): Promise<string | undefined> {
  for (const folder of ['node', 'net', 'consensus']) {
    for (const entry of await readdir(join(repoRoot, folder), { recursive: true })) {
      if (!entry.endsWith('.ts') || entry.endsWith('.test.ts')) continue
      if ((await stat(join(repoRoot, folder, entry))).mtimeMs > builtAtMs) return `${folder}/${entry}`
    }
  }
  return undefined
}

const lockFileName = 'running.pid'

/** Empties `dir` for a fresh cluster and marks it as this script's; refused while another live script holds it. */
export function claimDataFolder(dir: string): void {
  const lockPath = join(dir, lockFileName)
  if (existsSync(lockPath)) {
    const pid = Number(readFileSync(lockPath, 'utf8'))
    let running = false
    try {
      process.kill(pid, 0)
      running = pid !== process.pid
    } catch {
      running = false
    }
    if (running) throw new Error(`another script (pid ${pid}) runs peers in ${dir}: stop it, or pass --dir`)
  }
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  writeFileSync(lockPath, String(process.pid))
}

export function releaseDataFolder(dir: string): void {
  rmSync(join(dir, lockFileName), { force: true })
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

export async function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)))
  })
}

export async function until<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last === undefined ? '' : ` (last error: ${(last as Error).message})`}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

export interface LocalPeer {
  name: string
  dataDir: string
  logPath: string
  kubeconfig: string
  listen: string
  api: string
  child: ChildProcess | null
  /** Set once the process has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | null
}

export interface LocalPeersOptions {
  /** The folder holding every peer's data dir (`<root>/peer1`) and log (`<root>/peer1.log`). */
  root: string
  count: number
  /** `shoal up` flags for every peer (runtime, proxy mode, ...); the first peer also gets `firstPeerArgs`. */
  upArgs: string[]
  firstPeerArgs?: string[]
  env: NodeJS.ProcessEnv
  cli: ShoalCli
  namePrefix?: string
  /** Called when a peer exits while the set is not stopping (someone killed it). */
  onUnexpectedExit?: (peer: LocalPeer) => void
}

/** How long `tokenOf` waits for the first peer to print its join token. */
const tokenWaitMs = 60_000
/** How long a peer may take to stop after SIGTERM before it gets SIGKILL. */
const stopGraceMs = 10_000

export class LocalPeers {
  readonly peers: LocalPeer[] = []
  private stopping = false

  private constructor(private readonly o: LocalPeersOptions) {}

  static async start(o: LocalPeersOptions): Promise<LocalPeers> {
    const set = new LocalPeers(o)
    // Whatever happens to this script, its peers must not outlive it.
    process.once('exit', () => set.killAllSync())
    for (let k = 1; k <= o.count; k++) {
      const name = `${o.namePrefix ?? 'peer'}${k}`
      const dataDir = join(o.root, name)
      set.peers.push({ name, dataDir, logPath: `${dataDir}.log`, kubeconfig: join(dataDir, 'kubeconfig'), listen: `127.0.0.1:${await freePort()}`, api: `127.0.0.1:${await freePort()}`, child: null, exit: null })
    }
    const [first, ...others] = set.peers
    set.launch(first!, o.firstPeerArgs ?? [])
    const token = await set.tokenOf(first!)
    for (const peer of others) set.launch(peer, ['--join', token])
    return set
  }

  /** Starts (or restarts, from its data dir) one peer. */
  launch(peer: LocalPeer, extraArgs: string[] = []): void {
    const log = openSync(peer.logPath, 'a')
    const args = [...this.o.cli.args, 'up', '--data-dir', peer.dataDir, '--name', peer.name, '--listen', peer.listen, '--api', peer.api, ...this.o.upArgs, ...extraArgs]
    const child = spawn(this.o.cli.command, args, { stdio: ['ignore', log, log], env: this.o.env, detached: true })
    closeSync(log)
    peer.child = child
    peer.exit = null
    child.once('exit', (code, signal) => {
      peer.exit = { code, signal }
      if (!this.stopping) this.o.onUnexpectedExit?.(peer)
    })
  }

  alive(): LocalPeer[] {
    return this.peers.filter((p) => p.child !== null && p.exit === null)
  }

  private async tokenOf(peer: LocalPeer): Promise<string> {
    const deadline = Date.now() + tokenWaitMs
    for (;;) {
      const token = /SHOAL1-[A-Za-z0-9_-]+/.exec(readFileSync(peer.logPath, 'utf8'))?.[0]
      if (token !== undefined) return token
      if (peer.exit !== null) throw new PeerExitedError(`${peer.name} exited (${describeExit(peer)}); its log ${peer.logPath} ends:\n${logTail(peer.logPath)}`)
      if (Date.now() > deadline) throw new Error(`${peer.name} printed no join token within ${tokenWaitMs / 1000} s; its log ${peer.logPath} ends:\n${logTail(peer.logPath)}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  async target(peer: LocalPeer): Promise<ApiTarget> {
    return resolveTarget({ kubeconfig: peer.kubeconfig })
  }

  /** The cluster as a live peer sees it, or undefined while none answers. */
  async view(): Promise<ClusterView | undefined> {
    for (const peer of this.alive()) {
      try {
        const response = await apiRequest(await this.target(peer), 'GET', '/shoal/v1/cluster', { timeoutMs: 2000 })
        if (response.status === 200) return JSON.parse(response.text) as ClusterView
      } catch {
        // Not up yet, or no kubeconfig yet: ask the next one.
      }
    }
    return undefined
  }

  /** A GET on the API of the first live peer that answers; undefined while none does. */
  async get<T>(path: string): Promise<T | undefined> {
    for (const peer of this.alive()) {
      try {
        const response = await apiRequest(await this.target(peer), 'GET', path, { timeoutMs: 3000 })
        if (response.status === 200) return JSON.parse(response.text) as T
      } catch {
        // Ask the next one.
      }
    }
    return undefined
  }

  /** How many Nodes are Ready, as a live peer sees it; undefined while none answers. */
  async readyNodes(): Promise<number | undefined> {
    const nodes = await this.get<{ items: { status?: { conditions?: { type: string; status: string }[] } }[] }>('/api/v1/nodes')
    return nodes?.items.filter((n) => (n.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')).length
  }

  /** SIGTERM to every live peer, SIGKILL to those still running after the grace period. */
  async stop(graceMs = stopGraceMs): Promise<void> {
    this.stopping = true
    const running = this.alive()
    const exited = running.map((peer) => new Promise<void>((resolve) => (peer.exit !== null ? resolve() : peer.child!.once('exit', () => resolve()))))
    for (const peer of running) peer.child!.kill('SIGTERM')
    const timer = setTimeout(() => {
      for (const peer of this.alive()) peer.child!.kill('SIGKILL')
    }, graceMs)
    await Promise.all(exited)
    clearTimeout(timer)
  }

  killAllSync(): void {
    this.stopping = true
    for (const peer of this.alive()) peer.child!.kill('SIGKILL')
  }
}

export class PeerExitedError extends Error {
  override readonly name = 'PeerExitedError'
}

export function describeExit(peer: LocalPeer): string {
  if (peer.exit === null) return 'running'
  return peer.exit.signal !== null ? `killed by ${peer.exit.signal}` : `exit code ${peer.exit.code}`
}

/** The last lines of a log, for error messages. */
export function logTail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `  ${l}`).join('\n')
  } catch {
    return '  (no log)'
  }
}
