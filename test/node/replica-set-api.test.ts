// apps/v1 ReplicaSets through the HTTPS API of a real peer in this process
// (single voter, real libp2p and LevelDB, its own leader loop): discovery as
// kubectl and client libraries read it, create with the 422s Kubernetes gives,
// the scale subresource, strategic merge of template containers by name, and
// the controller's pods, cascading and orphaning deletes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiRequest, resolveTarget, type ApiTarget } from '../../node/cli/client.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import type { Peer } from '../../node/peer.js'
import { startLocalPeer, type LocalPeer } from './local-peer.js'
import { until } from './process-cluster.js'

let local: LocalPeer | undefined
let peer: Peer
let target: ApiTarget
const waitMs = 15_000
const base = '/apis/apps/v1/namespaces/default/replicasets'

beforeAll(async () => {
  local = await startLocalPeer('rs-api')
  peer = local.peer
  target = await resolveTarget({ 'data-dir': local.dataDir })
}, 60_000)

afterAll(async () => {
  await local?.stop()
})

type Json = Record<string, any>

async function api(method: string, path: string, body?: unknown, contentType = 'application/json', accept?: string): Promise<{ status: number; json: Json }> {
  const r = await apiRequest(target, method, path, { timeoutMs: 10_000, ...(body === undefined ? {} : { body: JSON.stringify(body), contentType }), ...(accept === undefined ? {} : { accept }) })
  return { status: r.status, json: JSON.parse(r.text) as Json }
}

function replicaSet(name: string, replicas: number, selector: Json, labels: Record<string, string>): Json {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name },
    spec: { replicas, selector, template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: 'nginx:1', ports: [{ containerPort: 80 }] }, { name: 'sidecar', image: 'busybox' }] } } },
  }
}

function podsOwnedBy(uid: string): ApiObject[] {
  return peer.state.store.list(peer.state.store.kinds.byKind('v1', 'Pod')!, 'default').filter((p) => p.metadata.ownerReferences?.some((r) => r.uid === uid && r.controller === true))
}

function podsLabelled(app: string): ApiObject[] {
  return peer.state.store.list(peer.state.store.kinds.byKind('v1', 'Pod')!, 'default').filter((p) => p.metadata.labels?.app === app)
}

describe('discovery', () => {
  it('lists apps/v1 with replicasets (rs, all, status and scale) in the group list, the group, its resources and the aggregated form', async () => {
    const groups = (await api('GET', '/apis')).json
    expect(groups.groups).toContainEqual({ name: 'apps', versions: [{ groupVersion: 'apps/v1', version: 'v1' }], preferredVersion: { groupVersion: 'apps/v1', version: 'v1' } })
    expect((await api('GET', '/apis/apps')).json).toMatchObject({ name: 'apps', preferredVersion: { groupVersion: 'apps/v1' } })
    const resources = (await api('GET', '/apis/apps/v1')).json
    expect(resources.groupVersion).toBe('apps/v1')
    expect(resources.resources).toContainEqual(expect.objectContaining({ name: 'replicasets', kind: 'ReplicaSet', namespaced: true, shortNames: ['rs'], categories: ['all'] }))
    expect(resources.resources).toContainEqual(expect.objectContaining({ name: 'replicasets/scale', group: 'autoscaling', version: 'v1', kind: 'Scale' }))
    expect(resources.resources).toContainEqual(expect.objectContaining({ name: 'replicasets/status', kind: 'ReplicaSet' }))
    const aggregated = (await api('GET', '/apis', undefined, undefined, 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList')).json
    const apps = (aggregated.items as Json[]).find((g) => g.metadata.name === 'apps')!
    const rs = (apps.versions[0].resources as Json[]).find((r) => r.resource === 'replicasets')!
    expect(rs).toMatchObject({ responseKind: { group: 'apps', version: 'v1', kind: 'ReplicaSet' }, scope: 'Namespaced', shortNames: ['rs'] })
    expect(rs.subresources.map((s: Json) => s.subresource)).toEqual(['status', 'scale'])
    const index = (await api('GET', '/openapi/v3')).json
    expect(Object.keys(index.paths)).toContain('apis/apps/v1')
    const doc = (await api('GET', '/openapi/v3/apis/apps/v1')).json
    expect(Object.keys(doc.paths)).toContain('/apis/apps/v1/namespaces/{namespace}/replicasets/{name}')
  })
})

describe('the API', () => {
  let web: Json

  it('creates a ReplicaSet whose controller makes its pods, owned with an apps/v1 controller reference', async () => {
    const created = await api('POST', base, replicaSet('web', 3, { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'track', operator: 'In', values: ['stable'] }] }, { app: 'web', track: 'stable' }))
    expect(created.status, JSON.stringify(created.json)).toBe(201)
    web = created.json
    await until(() => podsOwnedBy(web.metadata.uid).length === 3 || undefined, waitMs, '3 pods of web')
    for (const p of podsOwnedBy(web.metadata.uid)) {
      expect(p.metadata.name).toMatch(/^web-[a-z0-9]{5}$/)
      expect(p.metadata.ownerReferences).toEqual([{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: web.metadata.uid, controller: true, blockOwnerDeletion: true }])
    }
    await until(async () => (await api('GET', `${base}/web`)).json.status?.replicas === 3 || undefined, waitMs, 'status.replicas 3')
    const table = (await api('GET', base, undefined, undefined, 'application/json;as=Table;v=v1;g=meta.k8s.io')).json
    expect(table.columnDefinitions.map((c: Json) => c.name)).toEqual(['Name', 'Desired', 'Current', 'Ready', 'Age', 'Containers', 'Images', 'Selector'])
    expect(table.rows[0].cells.slice(0, 4)).toEqual(['web', 3, 3, 0])
    expect(table.rows[0].cells.slice(5)).toEqual(['web,sidecar', 'nginx:1,busybox', 'app=web,track in (stable)'])
  })

  it('refuses a selector that does not select the template with 422 Invalid, and a changed selector too', async () => {
    const refused = await api('POST', base, replicaSet('mismatch', 1, { matchLabels: { app: 'other' } }, { app: 'web' }))
    expect(refused.status).toBe(422)
    expect(refused.json).toMatchObject({ kind: 'Status', reason: 'Invalid', details: { name: 'mismatch', group: 'apps', kind: 'ReplicaSet' } })
    expect(refused.json.message).toBe('ReplicaSet.apps "mismatch" is invalid: spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`')
    expect((await api('GET', `${base}/mismatch`)).status).toBe(404)
    const changed = await api('PATCH', `${base}/web`, { spec: { selector: { matchLabels: { app: 'web', track: 'stable' } } } }, 'application/merge-patch+json')
    expect(changed.status).toBe(422)
    expect(changed.json.message).toContain('field is immutable')
  })

  it('scales through the scale subresource, and the controller follows', async () => {
    const scale = (await api('GET', `${base}/web/scale`)).json
    expect(scale).toMatchObject({ kind: 'Scale', apiVersion: 'autoscaling/v1', metadata: { name: 'web' }, spec: { replicas: 3 }, status: { selector: 'app=web,track in (stable)' } })
    const patched = await api('PATCH', `${base}/web/scale`, { spec: { replicas: 1 } }, 'application/merge-patch+json')
    expect(patched.status).toBe(200)
    expect(patched.json.spec).toEqual({ replicas: 1 })
    await until(() => podsOwnedBy(web.metadata.uid).length === 1 || undefined, waitMs, 'scaled down to 1')
    const put = await api('PUT', `${base}/web/scale`, { kind: 'Scale', apiVersion: 'autoscaling/v1', metadata: { name: 'web' }, spec: { replicas: 2 } })
    expect(put.status).toBe(200)
    await until(() => podsOwnedBy(web.metadata.uid).length === 2 || undefined, waitMs, 'scaled up to 2')
    await until(async () => (await api('GET', `${base}/web`)).json.status?.replicas === 2 || undefined, waitMs, 'status.replicas 2')
  })

  it('merges template containers by name in a strategic merge patch', async () => {
    const patched = await api('PATCH', `${base}/web`, { spec: { template: { spec: { containers: [{ name: 'web', image: 'nginx:2' }] } } } }, 'application/strategic-merge-patch+json')
    expect(patched.status, JSON.stringify(patched.json)).toBe(200)
    const containers = patched.json.spec.template.spec.containers as Json[]
    expect(containers.map((c) => [c.name, c.image])).toEqual([['web', 'nginx:2'], ['sidecar', 'busybox']])
    expect(containers[0]!.ports).toEqual([{ containerPort: 80, protocol: 'TCP' }])
  })

  it('deleted with propagationPolicy=Orphan, leaves its pods to a new ReplicaSet that adopts them; deleted by default, takes them along', async () => {
    const kept = podsOwnedBy(web.metadata.uid).map((p) => p.metadata.name).sort()
    const orphaned = await api('DELETE', `${base}/web?propagationPolicy=Orphan`)
    expect(orphaned.status).toBe(200)
    expect(orphaned.json).toMatchObject({ kind: 'Status', status: 'Success', details: { name: 'web', group: 'apps', kind: 'replicasets' } })
    expect(podsLabelled('web').map((p) => p.metadata.name).sort()).toEqual(kept)
    for (const p of podsLabelled('web')) expect(p.metadata.ownerReferences).toBeUndefined()
    const again = await api('POST', base, replicaSet('web-again', 2, { matchExpressions: [{ key: 'app', operator: 'In', values: ['web'] }] }, { app: 'web', track: 'stable' }))
    expect(again.status).toBe(201)
    await until(() => podsOwnedBy(again.json.metadata.uid).length === 2 || undefined, waitMs, 'the orphans adopted')
    expect(podsOwnedBy(again.json.metadata.uid).map((p) => p.metadata.name).sort()).toEqual(kept)
    expect((await api('DELETE', `${base}/web-again`)).status).toBe(200)
    expect(podsLabelled('web')).toEqual([])
  })
})
