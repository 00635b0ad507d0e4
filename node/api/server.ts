// The API server every peer runs: HTTPS with a certificate from the cluster CA
// (or plain HTTP on loopback with --insecure-http), a bearer token on every
// request but the health checks and /version, and the routes: discovery,
// OpenAPI, metrics, Kubernetes resources and Shoal's own /shoal/v1.
import { timingSafeEqual } from 'node:crypto'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { KindRegistry } from '../kinds/kind.js'
import { aggregatedContentType, aggregatedDiscovery, aggregatedVersion, legacyApiVersions, legacyGroup, legacyGroupList, legacyResourceList, versionInfo } from './discovery.js'
import { verbOf, type ApiMetrics } from './metrics.js'
import { openApiV2ContentType, openApiV3Document, openApiV3Index, openApiV3Target } from './openapi.js'
import { parseResourcePath } from './paths.js'
import { handleResource, type Reply, type ResourceContext } from './resources.js'
import { StatusError, methodNotAllowed, toStatusError } from './status.js'

export interface ApiServerOptions {
  host: string
  port: number
  /** null: plain HTTP, allowed on loopback only, without authentication (kubectl sends no token over HTTP). */
  tls: { certPem: string; keyPem: string } | null
  adminToken: () => string | null
  kinds: KindRegistry
  resources: ResourceContext
  metrics: ApiMetrics
  shoalVersion: string
  ready: () => boolean
  /** Shoal's own routes (/shoal/v1/...); resolves false when the path is not one of them. */
  shoalRoutes: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>
}

export class InsecureListenError extends Error {
  override readonly name = 'InsecureListenError'
}

const publicPaths = new Set(['/healthz', '/readyz', '/livez', '/version'])

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host)
}

function sendJson(res: ServerResponse, code: number, body: unknown, contentType = 'application/json', warnings: string[] = []): void {
  const text = JSON.stringify(body)
  const headers: Record<string, string | string[]> = { 'content-type': contentType, 'content-length': String(Buffer.byteLength(text)) }
  if (warnings.length > 0) headers.warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`)
  res.writeHead(code, headers)
  res.end(text)
}

function authorized(req: IncomingMessage, token: string | null): boolean {
  const header = req.headers.authorization ?? ''
  if (token === null || !header.startsWith('Bearer ')) return false
  const given = Buffer.from(header.slice('Bearer '.length).trim())
  const expected = Buffer.from(token)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

export async function startApiServer(options: ApiServerOptions): Promise<{ server: Server; address: string }> {
  if (options.tls === null && !isLoopback(options.host)) {
    throw new InsecureListenError(`--insecure-http serves without TLS or authentication, so it listens on loopback only, not ${options.host}`)
  }
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    handle(options, req, res).catch((err: unknown) => {
      const status = toStatusError(err)
      if (!res.headersSent) sendJson(res, status.code, status.toStatus())
      else res.destroy()
    })
  }
  const server = options.tls === null ? createHttpServer(handler) : createHttpsServer({ cert: options.tls.certPem, key: options.tls.keyPem }, handler)
  // Slow or stuck clients must not hold sockets for ever; watches keep theirs open with data.
  server.headersTimeout = 20_000
  server.requestTimeout = 0
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => resolve())
  })
  const bound = server.address() as AddressInfo
  return { server, address: bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}` }
}

async function handle(o: ApiServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://peer')
  const started = performance.now()
  const path = url.pathname
  if (publicPaths.has(path)) return servePublic(o, path, res)
  if (o.tls !== null && !authorized(req, o.adminToken())) throw new StatusError(401, 'Unauthorized', 'Unauthorized: a bearer token for this cluster is required (see the kubeconfig `shoal up` wrote)')
  if (await serveDiscovery(o, req, res, url)) return
  if (await o.shoalRoutes(req, res, url)) return
  const resource = parseResourcePath(path, o.kinds)
  if (resource === null) throw new StatusError(404, 'NotFound', `the server could not find the requested resource (${req.method} ${path})`)
  const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1'
  const verb = verbOf(req.method ?? 'GET', resource.name !== undefined, watch)
  let reply: Reply | null
  try {
    reply = await handleResource(o.resources, resource, req, res, url.searchParams)
  } catch (err) {
    o.metrics.observe(verb, resource.def.plural, toStatusError(err).code, (performance.now() - started) / 1000)
    throw err
  }
  o.metrics.observe(verb, resource.def.plural, reply?.code ?? 200, reply === null ? null : (performance.now() - started) / 1000)
  if (reply !== null) sendJson(res, reply.code, reply.body, 'application/json', reply.warnings)
}

function servePublic(o: ApiServerOptions, path: string, res: ServerResponse): void {
  if (path === '/version') return sendJson(res, 200, versionInfo(o.shoalVersion))
  const ok = path !== '/readyz' || o.ready()
  res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' })
  res.end(ok ? 'ok' : 'not ready: no leader known or not caught up')
}

/** Discovery, OpenAPI and metrics are read-only documents. */
function isDocumentPath(path: string): boolean {
  return path === '/metrics' || path === '/api' || path === '/apis' || /^\/api\/[^/]+$/.test(path) || /^\/apis\/[^/]+(\/[^/]+)?$/.test(path) || path.startsWith('/openapi/')
}

async function serveDiscovery(o: ApiServerOptions, req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
  const path = url.pathname.replace(/\/$/, '')
  if (req.method !== 'GET' && req.method !== 'HEAD' && (isDocumentPath(path) || path === '/openapi/v2' || path === '/openapi/v3')) throw methodNotAllowed(req.method ?? '', path)
  if (path === '/metrics') {
    res.writeHead(200, { 'content-type': o.metrics.registry.contentType })
    res.end(await o.metrics.registry.metrics())
    return true
  }
  if (path === '/api' || path === '/apis') {
    const aggregated = aggregatedVersion(req.headers.accept)
    if (aggregated !== null) sendJson(res, 200, aggregatedDiscovery(o.kinds, path === '/api', aggregated), aggregatedContentType(aggregated))
    else sendJson(res, 200, path === '/api' ? legacyApiVersions(req.headers.host ?? '') : legacyGroupList(o.kinds))
    return true
  }
  const core = /^\/api\/([^/]+)$/.exec(path)
  const group = /^\/apis\/([^/]+)(?:\/([^/]+))?$/.exec(path)
  if (core !== null || group !== null) {
    const body = core !== null ? legacyResourceList(o.kinds, '', core[1]!) : group![2] === undefined ? legacyGroup(o.kinds, group![1]!) : legacyResourceList(o.kinds, group![1]!, group![2])
    if (body === null) throw new StatusError(404, 'NotFound', `the server could not find the requested resource (${path})`)
    sendJson(res, 200, body)
    return true
  }
  return serveOpenApi(o, res, path)
}

function serveOpenApi(o: ApiServerOptions, res: ServerResponse, path: string): boolean {
  if (path === '/openapi/v2') {
    // An empty protobuf Document: what kubectl 1.27 needs to go on.
    res.writeHead(200, { 'content-type': openApiV2ContentType, 'content-length': '0' })
    res.end()
    return true
  }
  if (path === '/openapi/v3') {
    sendJson(res, 200, openApiV3Index(o.kinds, o.shoalVersion))
    return true
  }
  const target = openApiV3Target(path)
  if (target === null) return false
  const doc = openApiV3Document(o.kinds, target.group, target.version, o.shoalVersion)
  if (doc === null) throw new StatusError(404, 'NotFound', `no OpenAPI document for ${path}`)
  sendJson(res, 200, doc)
  return true
}
