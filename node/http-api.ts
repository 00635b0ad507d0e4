// The peer's HTTP API so far: the cluster view, a replicated key-value of
// cluster settings (writes go to the leader; reads are local, or
// linearizable with ?linearizable=true), leaving, and a health check.
// Errors are Kubernetes-style Status objects.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

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

/** An error with the HTTP status and Kubernetes reason it maps to. */
export class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message)
  }
}

const bodyMaxBytes = 64 * 1024
const statusByErrorName: Record<string, [number, string]> = {
  NotLeaderError: [503, 'ServiceUnavailable'],
  RpcTimeoutError: [504, 'Timeout'],
  CommitTimeoutError: [504, 'Timeout'],
  TooManyPendingError: [429, 'TooManyRequests'],
  UncommittedLogFullError: [429, 'TooManyRequests'],
  LeadershipTransferInProgressError: [503, 'ServiceUnavailable'],
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function sendError(res: ServerResponse, err: unknown): void {
  const e = err as Error
  const [code, reason] = err instanceof HttpError ? [err.code, err.reason] : (statusByErrorName[e.name] ?? [500, 'InternalError'])
  send(res, code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: e.message, reason, code })
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength
    if (size > bodyMaxBytes) throw new HttpError(413, 'RequestEntityTooLarge', `the body exceeds ${bodyMaxBytes} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

async function route(api: PeerApi, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://peer')
  const path = url.pathname
  if (path === '/healthz' && req.method === 'GET') return void res.end('ok')
  if (path === '/shoal/v1/cluster' && req.method === 'GET') return send(res, 200, api.clusterView())
  if (path === '/shoal/v1/leave' && req.method === 'POST') {
    await api.leave()
    return send(res, 200, { left: true })
  }
  if (path === '/shoal/v1/bench/propose' && req.method === 'POST' && api.benchPropose !== undefined) {
    const body = JSON.parse(await readBody(req)) as Partial<BenchProposeRequest>
    const request = { count: Number(body.count ?? 1000), concurrency: Number(body.concurrency ?? 1), bytes: Number(body.bytes ?? 128) }
    if (!(request.count >= 1 && request.count <= 1_000_000 && request.concurrency >= 1 && request.concurrency <= 4096 && request.bytes >= 1 && request.bytes <= 65536)) {
      throw new HttpError(422, 'Invalid', 'count 1..1000000, concurrency 1..4096, bytes 1..65536')
    }
    return send(res, 200, await api.benchPropose(request))
  }
  const kv = /^\/shoal\/v1\/settings\/([A-Za-z0-9._-]{1,128})$/.exec(path)
  if (kv !== null) {
    const key = kv[1]!
    if (req.method === 'PUT') return send(res, 200, { key, index: await api.setSetting(key, await readBody(req)) })
    if (req.method === 'DELETE') return send(res, 200, { key, index: await api.deleteSetting(key) })
    if (req.method === 'GET') {
      const value = await api.getSetting(key, url.searchParams.get('linearizable') === 'true')
      if (value === undefined) throw new HttpError(404, 'NotFound', `setting ${key} not found`)
      return send(res, 200, { key, value })
    }
    throw new HttpError(405, 'MethodNotAllowed', `${req.method} is not allowed on ${path}`)
  }
  throw new HttpError(404, 'NotFound', `no route for ${req.method} ${path}`)
}

export async function startHttpApi(api: PeerApi, host: string, port: number): Promise<{ server: Server; address: string }> {
  const server = createServer((req, res) => {
    route(api, req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, err)
      else res.destroy()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const bound = server.address() as AddressInfo
  return { server, address: `${bound.address}:${bound.port}` }
}
