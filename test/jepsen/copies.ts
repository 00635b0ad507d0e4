// Watching the pods' real processes, to check that no pod keeps running where
// the cluster no longer wants it. Every pod of a round runs `sleep` with
// JEPSEN_RUN=<round> and JEPSEN_POD_UID=<its uid> in its environment (the
// process runtime resolves the fieldRef), and HOSTNAME=<pod name>. Once a
// second this scans /proc for those processes, finds each one's host by its
// network namespace, then reads the pods with ?linearizable=true from a peer
// that answers. A process whose pod is gone from the store, or bound to
// another node, is a stale copy; one whose pod name also runs elsewhere is a
// second live copy. Reading the store after the scan matters: a pod seen
// running was created before the scan, so a linearizable read after it
// cannot miss it.
import { readdir, readFile, readlink, stat } from 'node:fs/promises'
import type { JepsenCluster } from './cluster.js'
import type { CopiesRecord, HistoryWriter } from './history.js'

export interface PodProcess {
  pid: number
  uid: string
  name: string
  /** The peer whose namespace the process runs in. */
  peer: string
}

interface PodListJson {
  items: { metadata: { name: string; uid: string }; spec: { nodeName?: string }; status?: { phase?: string } }[]
}

/** Samples kept in memory are the history's; this bounds one sample's read of the store. */
const storeReadTimeoutMs = 3000

/** Every process on this machine that belongs to the round, with the peer it runs on. */
export async function podProcesses(runId: string, namespaceInodes: Map<number, string>): Promise<PodProcess[]> {
  const found: PodProcess[] = []
  const marker = `JEPSEN_RUN=${runId}`
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let environ: string
    try {
      environ = await readFile(`/proc/${entry}/environ`, 'latin1')
    } catch {
      continue // gone meanwhile, or not ours to read
    }
    if (!environ.includes(marker)) continue
    const vars = new Map(environ.split('\0').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
    if (vars.get('JEPSEN_RUN') !== runId) continue
    // A zombie (state Z) has exited: it is not a running copy.
    const state = /\) (\S)/.exec(await readFile(`/proc/${entry}/stat`, 'latin1').catch(() => ''))?.[1]
    if (state === undefined || state === 'Z' || state === 'X') continue
    const net = await readlink(`/proc/${entry}/ns/net`).catch(() => '')
    const inode = Number(/net:\[(\d+)\]/.exec(net)?.[1] ?? -1)
    const peer = namespaceInodes.get(inode)
    // A zombie or a process mid-exit has no namespace left: it is not running.
    if (peer === undefined) continue
    found.push({ pid: Number(entry), uid: vars.get('JEPSEN_POD_UID') ?? '', name: vars.get('HOSTNAME') ?? '', peer })
  }
  return found
}

export async function namespaceInodesOf(cluster: JepsenCluster): Promise<Map<number, string>> {
  const inodes = new Map<number, string>()
  for (const peer of cluster.peers) inodes.set((await stat(`/run/netns/${peer.host.namespace}`)).ino, peer.name)
  return inodes
}

/** The pods in the store (uid -> node), read linearizably from the first peer that answers. */
export async function boundPods(cluster: JepsenCluster): Promise<Map<string, { name: string; node: string | null; phase: string }> | undefined> {
  for (const peer of cluster.peers.filter((p) => p.state === 'up')) {
    const answer = await cluster.request(peer, 'GET', '/api/v1/pods?linearizable=true', undefined, storeReadTimeoutMs)
    if (answer.status !== 200) continue
    const list = JSON.parse(answer.text) as PodListJson
    return new Map(list.items.map((p) => [p.metadata.uid, { name: p.metadata.name, node: p.spec.nodeName ?? null, phase: p.status?.phase ?? 'Pending' }]))
  }
  return undefined
}

/** Compares processes with the store: the stale ones (pod gone or bound elsewhere) and pod names running on two peers. */
export function staleCopies(processes: readonly PodProcess[], store: Map<string, { name: string; node: string | null }>): CopiesRecord['stale'] {
  const stale: CopiesRecord['stale'] = []
  const seen = new Set<string>()
  const nodeByName = new Map([...store.values()].map((pod) => [pod.name, pod.node]))
  for (const p of processes) {
    const key = `${p.uid}@${p.peer}`
    if (seen.has(key)) continue // a pod's sh and sleep, say
    seen.add(key)
    const bound = store.get(p.uid)
    if (bound === undefined || bound.node !== p.peer) {
      const sameNameOn = bound === undefined ? (nodeByName.get(p.name) ?? null) : null
      stale.push({ uid: p.uid, name: p.name, peer: p.peer, pid: p.pid, boundTo: bound?.node ?? null, sameNameOn })
    }
  }
  return stale
}

export class CopiesMonitor {
  private running = false
  private loop: Promise<void> = Promise.resolve()
  samples = 0
  skipped = 0

  constructor(
    private readonly cluster: JepsenCluster,
    private readonly history: HistoryWriter,
    private readonly runId: string,
    private readonly everyMs = 1000,
  ) {}

  start(): void {
    this.running = true
    this.loop = (async () => {
      const inodes = await namespaceInodesOf(this.cluster)
      while (this.running) {
        const startedAt = Date.now()
        await this.sample(inodes)
        await new Promise((r) => setTimeout(r, Math.max(0, this.everyMs - (Date.now() - startedAt))))
      }
    })()
  }

  private async sample(inodes: Map<number, string>): Promise<void> {
    const atMs = this.history.now()
    const processes = await podProcesses(this.runId, inodes)
    const store = await boundPods(this.cluster)
    if (store === undefined) {
      // No quorum answered: without the store a process cannot be judged; the next sample will.
      this.skipped++
      return
    }
    this.samples++
    this.history.add({ type: 'copies', atMs, stale: staleCopies(processes, store) })
  }

  async stop(): Promise<void> {
    this.running = false
    await this.loop
  }
}
