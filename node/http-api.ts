// Shoal's own routes, served by the API server beside the Kubernetes API:
// the cluster view, a replicated key-value of cluster settings (writes go to
// the leader; reads are local, or linearizable with ?linearizable=true),
// leaving, and the benchmark endpoint. Errors are Kubernetes-style Status objects.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { StatusError } from './api/status.js'

export interface ClusterPeerView {
  name: string
  peerId: string
  addresses: string[]
  apiAddress: string | null
  raftRole: 'leader' | 'voter' | 'learner' | 'none'
  gossipState: string
  lastHeartbeatAgeMs: number | null
}

export interface ClusterView {
  clusterId: string
  self: string
  leaderId: string | null
  term: number
  commitIndex: number
  appliedIndex: number
  /** The index the log was last compacted to (its entries before it live in a snapshot). */
  snapshotIndex: number
  /** Open libp2p connections and peers subscribed to the health topic, as this peer sees them. */
  connections: number
  gossipPeers: number
  gossip: { published: number; publishFailures: number; received: number; receivedDirect: number }
  peers: ClusterPeerView[]
}

export interface PeerApi {
  clusterView(): ClusterView
  setSetting(key: string, value: string): Promise<number>
  deleteSetting(key: string): Promise<number>
  getSetting(key: string, linearizable: boolean): Promise<string | undefined>
  leave(): Promise<void>
  /** Only with --bench-endpoints: propose on the leader as fast as asked and report what it took. */
  benchPropose?(request: BenchProposeRequest): Promise<BenchProposeResult>
}

export interface BenchProposeRequest {
  count: number
  concurrency: number
  bytes: number
}

export interface BenchProposeResult {
  committed: number
  seconds: number
  committedPerSec: number
  p50Ms: number
  p99Ms: number
}

const bodyMaxBytes = 64 * 1024

/** Settings under this prefix are the cluster's own secrets (the CA key, the admin token): never served. */
export const internalSettingPrefix = 'shoal.'

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength
    if (size > bodyMaxBytes) throw new StatusError(413, 'RequestEntityTooLarge', `the body exceeds ${bodyMaxBytes} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** Shoal's own routes under /shoal/v1; resolves false for any other path. */
export function shoalRoutes(api: PeerApi): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> {
  return async (req, res, url) => {
    const path = url.pathname
    if (!path.startsWith('/shoal/v1/')) return false
    if (path === '/shoal/v1/cluster' && req.method === 'GET') return done(send(res, 200, api.clusterView()))
    if (path === '/shoal/v1/leave' && req.method === 'POST') {
      await api.leave()
      return done(send(res, 200, { left: true }))
    }
    if (path === '/shoal/v1/bench/propose' && req.method === 'POST' && api.benchPropose !== undefined) {
      const body = JSON.parse(await readBody(req)) as Partial<BenchProposeRequest>
      const request = { count: Number(body.count ?? 1000), concurrency: Number(body.concurrency ?? 1), bytes: Number(body.bytes ?? 128) }
      if (!(request.count >= 1 && request.count <= 1_000_000 && request.concurrency >= 1 && request.concurrency <= 4096 && request.bytes >= 1 && request.bytes <= 65536)) {
        throw new StatusError(422, 'Invalid', 'count 1..1000000, concurrency 1..4096, bytes 1..65536')
      }
      return done(send(res, 200, await api.benchPropose(request)))
    }
    const kv = /^\/shoal\/v1\/settings\/([A-Za-z0-9._-]{1,128})$/.exec(path)
    if (kv === null) throw new StatusError(404, 'NotFound', `no route for ${req.method} ${path}`)
    const key = kv[1]!
    if (key.startsWith(internalSettingPrefix)) throw new StatusError(403, 'Forbidden', `setting ${key} is internal to the cluster and not served`)
    if (req.method === 'PUT') return done(send(res, 200, { key, index: await api.setSetting(key, await readBody(req)) }))
    if (req.method === 'DELETE') return done(send(res, 200, { key, index: await api.deleteSetting(key) }))
    if (req.method === 'GET') {
      const value = await api.getSetting(key, url.searchParams.get('linearizable') === 'true')
      if (value === undefined) throw new StatusError(404, 'NotFound', `setting ${key} not found`)
      return done(send(res, 200, { key, value }))
    }
    throw new StatusError(405, 'MethodNotAllowed', `${req.method} is not allowed on ${path}`)
  }
}

function done(_: void): boolean {
  return true
}
