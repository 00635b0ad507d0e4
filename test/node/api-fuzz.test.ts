// Malformed input at every endpoint of a real peer (in this process: real
// libp2p, real LevelDB, HTTPS with the cluster's token): every answer is a
// 4xx Status, the peer keeps serving, and the store is exactly as it was.
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiRequest, resolveTarget, type ApiResponse, type ApiTarget } from '../../node/cli/client.js'
import { Peer } from '../../node/peer.js'
import { startLocalPeer, type LocalPeer } from './local-peer.js'
import { until } from './process-cluster.js'

let peer: Peer
let local: LocalPeer | undefined
let target: ApiTarget
let dataDir: string

const ns = 'fuzz'
const collections = ['pods', 'replicationcontrollers', 'services', 'endpoints', 'events'].map((r) => `/api/v1/namespaces/${ns}/${r}`).concat(['/api/v1/namespaces', '/api/v1/nodes'])
const items = [`/api/v1/namespaces/${ns}/pods/p0`, `/api/v1/namespaces/${ns}/replicationcontrollers/rc0`, `/api/v1/namespaces/${ns}/services/svc0`, `/api/v1/namespaces/${ns}`]
const subresources = [`/api/v1/namespaces/${ns}/pods/p0/status`, `/api/v1/namespaces/${ns}/replicationcontrollers/rc0/scale`, `/api/v1/namespaces/${ns}/replicationcontrollers/rc0/status`]

const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p0', labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'nginx', ports: [{ containerPort: 80 }] }] } }
const rc = {
  apiVersion: 'v1',
  kind: 'ReplicationController',
  metadata: { name: 'rc0' },
  spec: { replicas: 2, selector: { app: 'web' }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } } },
}
const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'svc0' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } }

/** Until the controllers are done with the fixtures (status, bindings): the store then stays still unless someone writes. */
async function settled(): Promise<void> {
  let last = ''
  let stableSinceMs = Date.now()
  await until(() => {
    const now = storeFingerprint()
    if (now !== last) {
      last = now
      stableSinceMs = Date.now()
    }
    return Date.now() - stableSinceMs > 1500 || undefined
  }, 20_000, 'the controllers to settle')
}

/** The store's content as the fuzzing may not change it: every object but the peer's own Node and Events. */
function storeFingerprint(): string {
  const objects = peer.state.store.snapshotObjects().filter((o) => o.kind !== 'Node' && o.kind !== 'Event')
  return JSON.stringify(objects.map((o) => [o.kind, o.metadata.namespace, o.metadata.name, o.metadata.resourceVersion]).sort())
}

function send(method: string, path: string, body?: string, contentType?: string): Promise<ApiResponse> {
  return apiRequest(target, method, path, { ...(body === undefined ? {} : { body }), ...(contentType === undefined ? {} : { contentType }), timeoutMs: 10_000 })
}

function expectRefusal(response: ApiResponse, what: string): void {
  if (response.status < 400 || response.status >= 500) throw new Error(`${what}: HTTP ${response.status} ${response.text.slice(0, 300)}`)
  const status = JSON.parse(response.text) as { kind?: string; code?: number; status?: string; message?: string }
  expect(status).toMatchObject({ kind: 'Status', status: 'Failure', code: response.status })
  expect(typeof status.message).toBe('string')
}

beforeAll(async () => {
  local = await startLocalPeer('fuzz-peer')
  peer = local.peer
  dataDir = local.dataDir
  target = await resolveTarget({ 'data-dir': dataDir })
  const created = [
    await send('POST', '/api/v1/namespaces', JSON.stringify({ metadata: { name: ns } })),
    await send('POST', `/api/v1/namespaces/${ns}/pods`, JSON.stringify(pod)),
    await send('POST', `/api/v1/namespaces/${ns}/replicationcontrollers`, JSON.stringify(rc)),
    await send('POST', `/api/v1/namespaces/${ns}/services`, JSON.stringify(service)),
  ]
  for (const r of created) expect(r.status, r.text).toBe(201)
  await settled()
})

afterAll(async () => {
  await local?.stop()
})

const writeMethods = fc.constantFrom('POST', 'PUT', 'PATCH')
const anyPath = fc.constantFrom(...collections, ...items, ...subresources)
const contentTypes = fc.constantFrom('application/json', 'application/yaml', 'application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/json-patch+json', 'text/plain', 'application/vnd.kubernetes.protobuf', '')

/** A valid object of some kind with one thing made certainly wrong. */
const brokenObject = fc
  .tuple(
    fc.constantFrom(pod, rc, service),
    fc.constantFrom<(o: Record<string, unknown>) => void>(
      (o) => ((o.metadata as Record<string, unknown>).name = 'Not_A_DNS_Name'),
      (o) => ((o.metadata as Record<string, unknown>).name = 'x'.repeat(300)),
      (o) => (o.apiVersion = 'v1beta1'),
      (o) => (o.apiVersion = 'nonsense/v9'),
      (o) => (o.kind = 'Deployment'),
      (o) => (o.kind = 42),
      (o) => (o.spec = 'a string'),
      (o) => (o.spec = { containers: [] }),
      (o) => ((o.spec as Record<string, unknown>).replicas = -3),
      (o) => ((o.spec as Record<string, unknown>).ports = [{ port: 70000 }]),
      (o) => ((o.spec as Record<string, unknown>).restartPolicy = 'Sometimes'),
      (o) => ((o.metadata as Record<string, unknown>).labels = { 'bad key!': 'v' }),
      (o) => ((o.metadata as Record<string, unknown>).resourceVersion = '1'),
      (o) => (o.metadata = null),
      (o) => (o.unknownTopLevelField = true),
    ),
    fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
  )
  .map(([base, breakIt, noise]) => {
    const o = structuredClone(base) as Record<string, unknown>
    breakIt(o)
    o.fuzzNoise = noise
    return JSON.stringify(o)
  })

const garbageBody = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.string({ maxLength: 256 }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.constantFrom('{', '[1,2', '{"a":1,"a":2}', 'null', '"str"', '---\n: :\n- [', 'apiVersion: v1\nkind: Pod\nmetadata: {name: [1]}'),
  brokenObject,
)

describe('malformed requests at every endpoint', () => {
  it('answer 4xx with a Status, keep the peer serving and leave the store unchanged', { timeout: 120_000 }, async () => {
    const before = storeFingerprint()
    await fc.assert(
      fc.asyncProperty(writeMethods, anyPath, garbageBody, contentTypes, async (method, path, body, contentType) => {
        // fieldValidation=Strict: an unknown field is an error, not a warning, so no broken object can slip in.
        const response = await send(method, `${path}?fieldValidation=Strict`, body, contentType === '' ? undefined : contentType)
        // `{}`, `[]` or removing a field that is not there are valid patches that change nothing: fine, if nothing changed.
        if (method === 'PATCH' && response.status === 200 && storeFingerprint() === before) return
        expectRefusal(response, `${method} ${path} ${contentType} ${JSON.stringify(body).slice(0, 200)}`)
      }),
      { numRuns: 400 },
    )
    expect(storeFingerprint()).toBe(before)
    expect((await send('GET', '/healthz')).status).toBe(200)
  })

  it('refuse garbage query parameters with 400, never 5xx', async () => {
    const before = storeFingerprint()
    const query = fc.record({
      labelSelector: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('a in (', '!=x', 'a==', 'x notin b', '(,)', 'k>abc')),
      fieldSelector: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('spec.unknown=x', 'metadata.name', '=x', 'a\\', 'status.phase==')),
      limit: fc.oneof(fc.constant(''), fc.string({ maxLength: 5 }), fc.integer().map(String)),
      continue: fc.oneof(fc.constant(''), fc.string({ maxLength: 40 }), fc.base64String({ maxLength: 40 })),
      resourceVersion: fc.oneof(fc.constant(''), fc.string({ maxLength: 6 })),
    })
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...collections), query, async (path, q) => {
        const params = new URLSearchParams(Object.entries(q).filter(([, v]) => v !== ''))
        const response = await send('GET', `${path}?${params.toString()}`)
        if (response.status >= 500) throw new Error(`GET ${path}?${params.toString()}: HTTP ${response.status} ${response.text.slice(0, 300)}`)
        if (response.status >= 400) expectRefusal(response, `GET ${path}?${params.toString()}`)
      }),
      { numRuns: 300 },
    )
    expect(storeFingerprint()).toBe(before)
  })

  it('refuse unknown kinds, versions, paths and verbs with a Status', async () => {
    const paths = fc.oneof(
      fc.constantFrom('/api/v2/pods', '/apis/apps/v9/deployments', '/api/v1/namespaces/fuzz/widgets', '/api/v1/pods/p0', '/api/v1/namespaces/fuzz/pods/p0/exec', '/api/v1/namespaces/fuzz/pods/p0/scale', '/api/v1/namespaces//pods', '/api/v1/namespaces/fuzz/pods/%00'),
      fc.array(fc.stringMatching(/^[a-z0-9%._-]{0,12}$/), { minLength: 1, maxLength: 7 }).map((segments) => `/api/v1/${segments.join('/')}`),
    )
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE'), paths, async (method, path) => {
        const before = storeFingerprint()
        const response = await send(method, path, method === 'GET' || method === 'DELETE' ? undefined : '{"bogus":true}', method === 'PATCH' ? 'application/merge-patch+json' : undefined)
        if (method === 'GET' && response.status === 200) return // a path that happens to name a real collection
        expectRefusal(response, `${method} ${path}`)
        expect(storeFingerprint()).toBe(before)
      }),
      { numRuns: 300 },
    )
  })

  it('refuse DELETE with malformed options and keep the object', async () => {
    const before = storeFingerprint()
    for (const body of ['{', '5', '"x"', '[1]', '{"propagationPolicy":"Sometimes"}', '{"preconditions":{"resourceVersion":"1"}}', '{"dryRun":"All!"}']) {
      const response = await send('DELETE', `/api/v1/namespaces/${ns}/pods/p0`, body)
      expectRefusal(response, `DELETE with ${body}`)
    }
    expectRefusal(await send('DELETE', `/api/v1/namespaces/${ns}/pods/p0?propagationPolicy=Sometimes`), 'DELETE with a bad propagationPolicy')
    expect(storeFingerprint()).toBe(before)
  })

  it('refuse bodies over 3 MiB with 413 and stay up', async () => {
    const big = JSON.stringify({ ...pod, metadata: { name: 'big', annotations: { a: 'x'.repeat(3 * 1024 * 1024 + 10) } } })
    const response = await send('POST', `/api/v1/namespaces/${ns}/pods`, big)
    expect(response.status).toBe(413)
    expectRefusal(response, 'oversized body')
    expect((await send('GET', `/api/v1/namespaces/${ns}/pods/p0`)).status).toBe(200)
  })

  it('refuse a watch past the per-peer limit with 429, and take one again once a watch ends', async () => {
    const watches = peer.state.store.watches
    const held = Array.from({ length: watches.watchersMax - watches.watchers }, () => watches.watchFrom(peer.state.appliedIndex, () => {}))
    const refused = await send('GET', `/api/v1/namespaces/${ns}/pods?watch=true&timeoutSeconds=1`)
    expect(refused.status).toBe(429)
    expectRefusal(refused, 'a watch past the limit')
    held.pop()!()
    const accepted = await send('GET', `/api/v1/namespaces/${ns}/pods?watch=true&timeoutSeconds=1`)
    expect(accepted.status).toBe(200)
    expect(accepted.text).toContain('"ADDED"')
    for (const stop of held) stop()
  })

  it('refuse requests without the token with 401, except health checks', async () => {
    const anonymous: ApiTarget = { ...target }
    delete anonymous.token
    expect((await apiRequest(anonymous, 'GET', '/api/v1/pods')).status).toBe(401)
    expect((await apiRequest(anonymous, 'POST', `/api/v1/namespaces/${ns}/pods`, { body: JSON.stringify({ ...pod, metadata: { name: 'sneaky' } }) })).status).toBe(401)
    expect((await apiRequest({ ...target, token: 'wrong' }, 'GET', '/api/v1/pods')).status).toBe(401)
    expect((await apiRequest(anonymous, 'GET', '/healthz')).status).toBe(200)
    expect(peer.state.store.get({ apiVersion: 'v1', kind: 'Pod', namespace: ns, name: 'sneaky' })).toBeUndefined()
  })
})
