// npm run bench -- api: the Kubernetes API of 3 peer processes, over HTTPS with
// the token, as clients use it.
// (1) create 10,000 pods through a follower, 64 clients at a time (creates/s, p50/p99, and the
//     CPU each process spent per create, since on one machine they share its cores);
// (2) list all 10,000 from the follower (p50/p99 of 20 lists);
// (3) watch fan-out: 50 watches held at the follower; time from sending a write
//     to the leader until each watch has the event (p50/p99 over 200 writes x 50 watches).
import { readFileSync } from 'node:fs'
import { Agent } from 'node:https'
import { apiRequest, type ApiResponse, type ApiTarget, type RequestOptions } from '../../node/cli/client.js'
import type { ProcessCluster, PeerProcess } from '../../test/node/process-cluster.js'
import type { BenchArgs } from '../bench.js'
import { leaderOf, startCluster } from './cluster.js'
import { percentile, report, round } from './report.js'

const podsTotal = 10_000
const clients = 64
const listRuns = 20
const watchers = 50
const watchedWrites = 200

function podBody(name: string): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'bench', shard: String(name.length % 8) } }, spec: { containers: [{ name: 'app', image: 'nginx:1.27', ports: [{ containerPort: 80 }], resources: { requests: { cpu: '10m', memory: '16Mi' } } }] } })
}

/** Sockets are reused as a real client's are: one TLS handshake per client, not per request. */
interface Endpoint {
  target: ApiTarget
  agent: Agent
}

function endpoint(target: ApiTarget): Endpoint {
  return { target, agent: new Agent({ keepAlive: true, maxSockets: clients + watchers }) }
}

function call(e: Endpoint, method: string, path: string, o: RequestOptions = {}): Promise<ApiResponse> {
  return apiRequest(e.target, method, path, { ...o, agent: e.agent })
}

/** CPU seconds a process has used so far (user + system), from /proc. */
export function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Where the CPU went: ms per create in each process (the machine's cores are shared by all of them). */
function cpuPerCreate(peers: Record<string, PeerProcess>, before: Record<string, number>, client: NodeJS.CpuUsage): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [role, p] of Object.entries(peers)) out[role] = round(((cpuSecondsOf(p.child!.pid!) - before[role]!) * 1000) / podsTotal, 3)
  out.benchClient = round((client.user + client.system) / 1000 / podsTotal, 3)
  return out
}

async function creates(target: Endpoint, roles: Record<string, PeerProcess>): Promise<void> {
  let next = 0
  const latencies: number[] = []
  const cpuBefore = Object.fromEntries(Object.entries(roles).map(([role, p]) => [role, cpuSecondsOf(p.child!.pid!)]))
  const clientBefore = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let k = next++; k < podsTotal; k = next++) {
        const started = performance.now()
        const response = await call(target, 'POST', '/api/v1/namespaces/default/pods', { body: podBody(`bench-${k}`), timeoutMs: 30_000 })
        if (response.status !== 201) throw new Error(`create bench-${k}: HTTP ${response.status} ${response.text.slice(0, 200)}`)
        latencies.push(performance.now() - started)
      }
    }),
  )
  const seconds = (performance.now() - t0) / 1000
  const cpuMsPerCreate = cpuPerCreate(roles, cpuBefore, process.cpuUsage(clientBefore))
  report({ bench: 'api', case: 'create pods through a follower', pods: podsTotal, clients, createsPerSec: Math.round(podsTotal / seconds), p50Ms: round(percentile(latencies, 50)), p99Ms: round(percentile(latencies, 99)), goal: '>= 5000/s', cpuMsPerCreate })
}

async function lists(target: Endpoint): Promise<void> {
  const latencies: number[] = []
  let bytes = 0
  for (let run = 0; run < listRuns; run++) {
    const started = performance.now()
    const response = await call(target, 'GET', '/api/v1/namespaces/default/pods', { timeoutMs: 30_000 })
    latencies.push(performance.now() - started)
    const items = (JSON.parse(response.text) as { items: unknown[] }).items.length
    if (items !== podsTotal) throw new Error(`the list had ${items} pods, not ${podsTotal}`)
    bytes = response.text.length
  }
  report({ bench: 'api', case: 'list all pods at the follower', pods: podsTotal, runs: listRuns, responseMiB: round(bytes / 2 ** 20), p50Ms: round(percentile(latencies, 50)), p99Ms: round(percentile(latencies, 99)), goal: 'p99 < 200 ms' })
}

/** Open `watchers` watches on pods at `target`; each calls `seen(name, atMs)` for every ADDED event. */
async function openWatches(target: Endpoint, seen: (name: string, atMs: number) => void): Promise<AbortController> {
  const list = await call(target, 'GET', '/api/v1/namespaces/default/pods?limit=1', { timeoutMs: 30_000 })
  const rv = (JSON.parse(list.text) as { metadata: { resourceVersion: string } }).metadata.resourceVersion
  const stop = new AbortController()
  for (let w = 0; w < watchers; w++) {
    let buffered = ''
    void call(target, 'GET', `/api/v1/namespaces/default/pods?watch=true&resourceVersion=${rv}&labelSelector=app%3Dwatched`, {
      signal: stop.signal,
      onChunk: (chunk) => {
        const at = performance.now()
        buffered += chunk
        for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
          const event = JSON.parse(buffered.slice(0, nl)) as { type: string; object: { metadata: { name: string } } }
          buffered = buffered.slice(nl + 1)
          if (event.type === 'ADDED') seen(event.object.metadata.name, at)
        }
      },
    }).catch(() => {})
  }
  return stop
}

async function watchFanOut(leader: Endpoint, follower: Endpoint): Promise<void> {
  const arrivals = new Map<string, number[]>()
  const stop = await openWatches(follower, (name, at) => arrivals.get(name)?.push(at))
  await new Promise((r) => setTimeout(r, 500))
  const latencies: number[] = []
  try {
    for (let k = 0; k < watchedWrites; k++) {
      const name = `watched-${k}`
      const times: number[] = []
      arrivals.set(name, times)
      const sent = performance.now()
      const body = JSON.stringify({ ...JSON.parse(podBody(name)), metadata: { name, labels: { app: 'watched' } } })
      const response = await call(leader, 'POST', '/api/v1/namespaces/default/pods', { body, timeoutMs: 10_000 })
      if (response.status !== 201) throw new Error(`create ${name}: HTTP ${response.status}`)
      const deadline = Date.now() + 5000
      while (times.length < watchers && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1))
      if (times.length < watchers) throw new Error(`${name} reached ${times.length} of ${watchers} watches within 5 s`)
      for (const t of times) latencies.push(t - sent)
    }
  } finally {
    stop.abort()
  }
  report({ bench: 'api', case: 'watch fan-out (write at the leader to event at a follower watch)', watchers, writes: watchedWrites, p50Ms: round(percentile(latencies, 50)), p99Ms: round(percentile(latencies, 99)), goal: 'p99 < 50 ms' })
}

async function followerOf(c: ProcessCluster, peers: PeerProcess[], leader: PeerProcess): Promise<PeerProcess> {
  const follower = peers.find((p) => p !== leader)!
  await c.target(follower)
  return follower
}

export async function benchApi(args: BenchArgs): Promise<void> {
  const { c, peers } = await startCluster(3)
  try {
    const leaderPeer = await leaderOf(c, peers)
    const followerPeer = await followerOf(c, peers, leaderPeer)
    const leader = endpoint(await c.target(leaderPeer))
    const follower = endpoint(await c.target(followerPeer))
    const roles = { leader: leaderPeer, entryFollower: followerPeer, otherFollower: peers.find((p) => p !== leaderPeer && p !== followerPeer)! }
    if (args.only === undefined || args.only === 'create' || args.only === 'list') await creates(follower, roles)
    if (args.only === undefined || args.only === 'list') await lists(follower)
    if (args.only === undefined || args.only === 'watch') await watchFanOut(leader, follower)
  } finally {
    await c.destroy()
  }
}
