// The ReplicationController and Endpoints controllers on a real peer in this
// process (a single voter, real libp2p and LevelDB), driven by the peer's own
// LeaderLoop: replicas created, scaled, adopted, released and orphaned;
// Endpoints following pods' IPs and readiness; and rounds that write nothing
// once nothing needs doing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prepareCreate } from '../../node/api/prepare.js'
import { submit } from '../../node/api/submit.js'
import type { ControlContext } from '../../node/control/controllers.js'
import { EventRecorder } from '../../node/control/events.js'
import { EndpointsController, desiredSubsets, sameSubsets, type EndpointsObject, type EndpointsPod, type ServiceObject } from '../../node/controllers/endpoints.js'
import { ReplicationManager } from '../../node/controllers/replication-controller.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import { Peer } from '../../node/peer.js'
import { refOf, type ObjectRef, type StoreCommand } from '../../node/store/commands.js'
import { startLocalPeer, type LocalPeer } from './local-peer.js'
import { until } from './process-cluster.js'

let peer: Peer
let local: LocalPeer | undefined
const nodeName = 'ctrl'
const waitMs = 15_000

beforeAll(async () => {
  local = await startLocalPeer(nodeName)
  peer = local.peer
  await until(() => peer.state.store.get({ apiVersion: 'v1', kind: 'Node', name: nodeName }), 30_000, 'the peer\'s Node')
})

afterAll(async () => {
  await local?.stop()
})

type Rc = ApiObject & { spec: { replicas: number }; status?: { replicas?: number; readyReplicas?: number; availableReplicas?: number; observedGeneration?: number } }
type Event = ApiObject & { reason: string; message: string; involvedObject: { uid?: string } }

const kind = (k: string) => peer.state.store.kinds.byKind('v1', k)!
const ref = (k: string, name: string): ObjectRef => ({ apiVersion: 'v1', kind: k, namespace: 'default', name })
const get = <T extends ApiObject>(k: string, name: string): T | undefined => peer.state.store.get(ref(k, name)) as T | undefined

async function write(command: StoreCommand): Promise<ApiObject | null> {
  const outcome = (await submit(peer.submitter, command)).outcomes[0]!
  if (!outcome.ok) throw new Error(outcome.failure.message)
  return outcome.object
}

async function create(k: string, body: Record<string, unknown>): Promise<ApiObject> {
  return (await write({ op: 'obj.create', object: prepareCreate(kind(k), body, 'default', 'Strict', new Date().toISOString()).object }))!
}

/** Read, change, write back; retried when a controller changed the object in between. */
async function mutate(k: string, name: string, change: (o: ApiObject & Record<string, any>) => void): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const current = structuredClone(get(k, name))
    if (current === undefined) throw new Error(`${k} ${name} is gone`)
    change(current)
    const outcome = (await submit(peer.submitter, { op: 'obj.update', object: current, expectResourceVersion: current.metadata.resourceVersion! })).outcomes[0]!
    if (outcome.ok) return
  }
  throw new Error(`could not update ${k} ${name}`)
}

/** What a test agent would report: the pod bound here and Running with `ip`, ready or not. */
async function runPod(name: string, ip: string, ready: boolean): Promise<void> {
  await mutate('Pod', name, (p) => {
    p.spec.nodeName ??= nodeName
  })
  const pod = get('Pod', name)!
  const status = { ...(pod.status as object), phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] }
  await write({ op: 'obj.update', object: { ...pod, status }, subresource: 'status' })
}

function podsOf(rc: ApiObject): ApiObject[] {
  return peer.state.store.list(kind('Pod'), 'default').filter((p) => (p.metadata.ownerReferences ?? []).some((r) => r.controller === true && r.uid === rc.metadata.uid))
}

function eventsOf(object: ApiObject, reason: string): Event[] {
  return (peer.state.store.list(kind('Event'), 'default') as Event[]).filter((e) => e.involvedObject.uid === object.metadata.uid && e.reason === reason)
}

const names = (objects: readonly ApiObject[]): string[] => objects.map((o) => o.metadata.name ?? '').sort()

function rcBody(name: string, replicas: number, app: string): Record<string, unknown> {
  return { metadata: { name }, spec: { replicas, selector: { app }, template: { metadata: { labels: { app } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } } } }
}

async function scale(name: string, replicas: number): Promise<void> {
  await mutate('ReplicationController', name, (rc) => {
    rc.spec.replicas = replicas
  })
}

describe('the ReplicationController controller', () => {
  let web: Rc
  let survivors: string[] = []

  it('creates the replicas from the template, named NAME-xxxxx and owned by the controller, and reports them', async () => {
    web = (await create('ReplicationController', rcBody('web', 5, 'web'))) as Rc
    await until(() => podsOf(web).length === 5 && get<Rc>('ReplicationController', 'web')?.status?.replicas === 5, waitMs, '5 pods and status.replicas 5')
    const pods = podsOf(web)
    for (const p of pods) {
      expect(p.metadata.name).toMatch(/^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/)
      expect(p.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'ReplicationController', name: 'web', uid: web.metadata.uid, controller: true, blockOwnerDeletion: true }])
      expect(p.metadata.labels).toEqual({ app: 'web' })
    }
    expect(get<Rc>('ReplicationController', 'web')!.status).toMatchObject({ replicas: 5, observedGeneration: 1 })
    expect(eventsOf(web, 'SuccessfulCreate').map((e) => e.message).sort()).toEqual(names(pods).map((n) => `Created pod: ${n}`))
    await new Promise((r) => setTimeout(r, 300))
    expect(peer.state.store.list(kind('Pod'), 'default').filter((p) => p.metadata.labels?.app === 'web')).toHaveLength(5)
  })

  it('scaled to 2, deletes 3, the pods not yet running first, and says so in events', async () => {
    survivors = names(podsOf(web)).slice(0, 2)
    await runPod(survivors[0]!, '10.1.0.1', true)
    await runPod(survivors[1]!, '10.1.0.2', true)
    const before = names(podsOf(web))
    await scale('web', 2)
    await until(() => podsOf(web).length === 2 && get<Rc>('ReplicationController', 'web')?.status?.replicas === 2, waitMs, 'scaled down to 2')
    expect(names(podsOf(web))).toEqual(survivors)
    const deleted = before.filter((n) => !survivors.includes(n))
    expect(eventsOf(web, 'SuccessfulDelete').map((e) => e.message).sort()).toEqual(deleted.map((n) => `Deleted pod: ${n}`))
    await until(() => get<Rc>('ReplicationController', 'web')?.status?.readyReplicas === 2, waitMs, 'readyReplicas 2')
    expect(get<Rc>('ReplicationController', 'web')!.status).toMatchObject({ replicas: 2, readyReplicas: 2, availableReplicas: 2, observedGeneration: 2 })
  })

  it('scaled to 4, creates 2 and keeps the running ones', async () => {
    await scale('web', 4)
    await until(() => podsOf(web).length === 4 && get<Rc>('ReplicationController', 'web')?.status?.replicas === 4, waitMs, 'scaled up to 4')
    expect(names(podsOf(web))).toEqual(expect.arrayContaining(survivors))
    expect(eventsOf(web, 'SuccessfulCreate')).toHaveLength(7)
  })

  it('deleted, takes its pods with it', async () => {
    await write({ op: 'obj.delete', ref: refOf(web), propagation: 'Background' })
    expect(podsOf(web)).toEqual([])
    expect(peer.state.store.list(kind('Pod'), 'default').filter((p) => p.metadata.labels?.app === 'web')).toEqual([])
  })
})

describe('adoption and release', () => {
  let cache: ApiObject

  it('adopts a matching orphan and creates only the rest', async () => {
    await create('Pod', { metadata: { name: 'stray', labels: { app: 'cache' } }, spec: { containers: [{ name: 'c', image: 'redis' }] } })
    cache = await create('ReplicationController', rcBody('cache', 2, 'cache'))
    await until(() => podsOf(cache).length === 2 && get<Rc>('ReplicationController', 'cache')?.status?.replicas === 2, waitMs, 'cache at 2')
    expect(names(podsOf(cache))).toContain('stray')
    expect(get('Pod', 'stray')!.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'ReplicationController', name: 'cache', uid: cache.metadata.uid, controller: true, blockOwnerDeletion: true }])
    expect(eventsOf(cache, 'SuccessfulCreate')).toHaveLength(1)
  })

  it('releases a pod relabelled out of its selector and replaces it', async () => {
    const victim = names(podsOf(cache)).find((n) => n !== 'stray')!
    await mutate('Pod', victim, (p) => {
      p.metadata.labels = { app: 'debugging' }
    })
    await until(() => get('Pod', victim)?.metadata.ownerReferences === undefined && podsOf(cache).length === 2, waitMs, 'the relabelled pod released and replaced')
    expect(names(podsOf(cache))).not.toContain(victim)
    expect(get('Pod', victim)).toBeDefined()
    // The event follows the create it reports, in a write of its own.
    await until(() => eventsOf(cache, 'SuccessfulCreate').length >= 2, waitMs, 'the SuccessfulCreate event')
    expect(eventsOf(cache, 'SuccessfulCreate')).toHaveLength(2)
  })

  it('deleted with propagationPolicy=Orphan, leaves its pods, which a new matching controller adopts without creating any', async () => {
    const kept = names(podsOf(cache))
    await write({ op: 'obj.delete', ref: refOf(cache), propagation: 'Orphan' })
    for (const n of kept) expect(get('Pod', n)!.metadata.ownerReferences).toBeUndefined()
    const again = await create('ReplicationController', rcBody('cache-again', 2, 'cache'))
    await until(() => podsOf(again).length === 2 && get<Rc>('ReplicationController', 'cache-again')?.status?.replicas === 2, waitMs, 'the orphans adopted')
    expect(names(podsOf(again))).toEqual(kept)
    expect(eventsOf(again, 'SuccessfulCreate')).toEqual([])
  })
})

describe('the Endpoints controller', () => {
  type Subset = { addresses?: { ip: string; nodeName?: string; targetRef: { name: string } }[]; notReadyAddresses?: { ip: string }[]; ports?: { name?: string; port: number; protocol: string }[] }
  const endpoints = (): EndpointsObject | undefined => get<EndpointsObject>('Endpoints', 'front')
  const view = (subsets: Subset[] | undefined) => (subsets ?? []).map((s) => ({ ready: (s.addresses ?? []).map((a) => a.ip), notReady: (s.notReadyAddresses ?? []).map((a) => a.ip), ports: (s.ports ?? []).map((p) => `${p.name}:${p.port}/${p.protocol}`) }))
  const podBody = (name: string, namedPort: boolean) => ({
    metadata: { name, labels: { app: 'front' } },
    spec: { containers: [{ name: 'c', image: 'nginx', ...(namedPort ? { ports: [{ name: 'web', containerPort: 8080 }] } : {}) }] },
  })

  it('lists the ready pods with their IPs, node and target ports, by name and by number', async () => {
    await create('Service', { metadata: { name: 'front', labels: { tier: 'fe' } }, spec: { selector: { app: 'front' }, ports: [{ name: 'http', port: 80, targetPort: 'web' }, { name: 'metrics', port: 9090, targetPort: 9100 }] } })
    for (const [name, named] of [['front-a', true], ['front-b', true], ['front-c', false], ['front-d', true]] as const) await create('Pod', podBody(name, named))
    await runPod('front-a', '10.2.0.1', true)
    await runPod('front-b', '10.2.0.2', true)
    await runPod('front-c', '10.2.0.3', true)
    // front-d has no IP yet: not listed.
    const expected = [
      { ready: ['10.2.0.1', '10.2.0.2'], notReady: [], ports: ['http:8080/TCP', 'metrics:9100/TCP'] },
      { ready: ['10.2.0.3'], notReady: [], ports: ['metrics:9100/TCP'] },
    ]
    await until(() => JSON.stringify(view(endpoints()?.subsets as Subset[])) === JSON.stringify(expected), waitMs, 'the Endpoints of front')
    const first = (endpoints()!.subsets as Subset[])[0]!.addresses![0]!
    expect(first).toEqual({ ip: '10.2.0.1', nodeName, targetRef: { kind: 'Pod', name: 'front-a', namespace: 'default', uid: get('Pod', 'front-a')!.metadata.uid } })
    expect(endpoints()!.metadata.labels).toEqual({ tier: 'fe' })
  })

  it('moves a pod that turns not ready to notReadyAddresses', async () => {
    await runPod('front-b', '10.2.0.2', false)
    await until(() => JSON.stringify(view(endpoints()?.subsets as Subset[])[0]) === JSON.stringify({ ready: ['10.2.0.1'], notReady: ['10.2.0.2'], ports: ['http:8080/TCP', 'metrics:9100/TCP'] }), waitMs, 'front-b not ready')
  })

  it('leaves the Endpoints of a Service without a selector alone, and deletes its own when the Service goes or loses its selector', async () => {
    await create('Service', { metadata: { name: 'manual' }, spec: { ports: [{ port: 5432 }] } })
    const manual = await create('Endpoints', { metadata: { name: 'manual' }, subsets: [{ addresses: [{ ip: '192.168.9.9' }], ports: [{ port: 5432 }] }] })
    await create('Service', { metadata: { name: 'back' }, spec: { selector: { app: 'front' }, ports: [{ port: 9100 }] } })
    await until(() => get('Endpoints', 'back'), waitMs, 'the Endpoints of back')
    await mutate('Service', 'back', (s) => {
      delete s.spec.selector
    })
    await write({ op: 'obj.delete', ref: ref('Service', 'front'), propagation: 'Background' })
    await until(() => get('Endpoints', 'front') === undefined && get('Endpoints', 'back') === undefined, waitMs, 'both Endpoints deleted')
    expect(get('Endpoints', 'manual')!.metadata.resourceVersion).toBe(manual.metadata.resourceVersion)
  })
})

describe('a settled cluster', () => {
  it('costs no writes: rounds with nothing to do leave the applied index where it was', async () => {
    const nowIso = (): string => new Date().toISOString()
    const ctx: ControlContext = { store: peer.state.store, kinds: peer.state.store.kinds, submitter: peer.submitter, events: new EventRecorder({ store: peer.state.store, submitter: peer.submitter, source: { component: 'test', host: nodeName }, nowIso }), nowMs: () => Date.now(), nowIso }
    const controllers = [new ReplicationManager(ctx), new EndpointsController(ctx)]
    // Something for each controller to keep: the pods of cache-again, and a Service over the running front pods.
    await create('Service', { metadata: { name: 'steady' }, spec: { selector: { app: 'front' }, ports: [{ name: 'http', port: 80, targetPort: 'web' }] } })
    await until(() => (get<EndpointsObject>('Endpoints', 'steady')?.subsets ?? []).length > 0, waitMs, 'the Endpoints of steady')
    expect(podsOf(get('ReplicationController', 'cache-again')!)).toHaveLength(2)
    // Other writers (a Node heartbeat every 40 s) may land in a window: a few tries, each long enough for the peer's own loop to run rounds.
    let moved = -1
    for (let attempt = 0; attempt < 3 && moved !== 0; attempt++) {
      const before = peer.state.store.appliedIndex
      await new Promise((r) => setTimeout(r, 1500))
      for (let k = 0; k < 3; k++) for (const c of controllers) await c.round()
      moved = peer.state.store.appliedIndex - before
    }
    expect(moved).toBe(0)
  })
})

describe('Endpoints subsets', () => {
  const service = (spec: Record<string, unknown>): ServiceObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's', namespace: 'default' }, spec: { selector: { app: 'x' }, ...spec } })
  const pod = (name: string, status: Record<string, unknown>, spec: Record<string, unknown> = {}): EndpointsPod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', uid: name, labels: { app: 'x' } },
    spec: { containers: [{ ports: [{ name: 'dns', containerPort: 53, protocol: 'UDP' }] }], ...spec },
    status: { phase: 'Running', ...status },
  })
  const ready = [{ type: 'Ready', status: 'True' }]

  it('lists pods in no-port subsets for a portless headless Service, and not at all for a portless one with a cluster IP', () => {
    const pods = [pod('a', { podIP: '10.0.0.1', conditions: ready })]
    expect(desiredSubsets(service({ clusterIP: 'None' }), pods)).toEqual([{ addresses: [{ ip: '10.0.0.1', targetRef: { kind: 'Pod', name: 'a', namespace: 'default', uid: 'a' } }] }])
    expect(desiredSubsets(service({}), pods)).toEqual([])
  })

  it('resolves a named port only with the same protocol, and lists not-ready pods as ready when the Service publishes them', () => {
    const pods = [pod('a', { podIP: '10.0.0.1' })]
    expect(desiredSubsets(service({ ports: [{ port: 53, targetPort: 'dns', protocol: 'TCP' }] }), pods)).toEqual([])
    const udp = desiredSubsets(service({ ports: [{ port: 53, targetPort: 'dns', protocol: 'UDP' }] }), pods)
    expect(udp).toMatchObject([{ notReadyAddresses: [{ ip: '10.0.0.1' }], ports: [{ port: 53, protocol: 'UDP' }] }])
    expect(desiredSubsets(service({ publishNotReadyAddresses: true, ports: [{ port: 53, targetPort: 'dns', protocol: 'UDP' }] }), pods)).toMatchObject([{ addresses: [{ ip: '10.0.0.1' }] }])
  })

  it('leaves out finished pods that will not restart, pods being deleted and pods of other selectors', () => {
    const pods = [
      pod('done', { podIP: '10.0.0.1', phase: 'Succeeded', conditions: ready }, { restartPolicy: 'Never' }),
      { ...pod('going', { podIP: '10.0.0.2', conditions: ready }), metadata: { ...pod('going', {}).metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } },
      { ...pod('other', { podIP: '10.0.0.3', conditions: ready }), metadata: { ...pod('other', {}).metadata, labels: { app: 'y' } } },
      pod('restarting', { podIP: '10.0.0.4', phase: 'Failed', conditions: ready }),
    ]
    expect(desiredSubsets(service({ ports: [{ port: 80, targetPort: 8080 }] }), pods)).toMatchObject([{ addresses: [{ ip: '10.0.0.4' }], ports: [{ port: 8080, protocol: 'TCP' }] }])
  })

  it('compares subsets whatever order their addresses, ports and subsets come in, and tells a changed node or readiness apart', () => {
    const a = { ip: '10.0.0.1', nodeName: 'n1', targetRef: { kind: 'Pod' as const, name: 'a', namespace: 'default', uid: 'a' } }
    const b = { ip: '10.0.0.2', nodeName: 'n1', targetRef: { kind: 'Pod' as const, name: 'b', namespace: 'default', uid: 'b' } }
    const ports = [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'metrics', port: 9100, protocol: 'TCP' }]
    const only = [{ addresses: [b], ports: [ports[1]!] }]
    const stored = [{ addresses: [a, b], ports }, ...only]
    expect(sameSubsets(stored, [...only, { addresses: [b, a], ports: [...ports].reverse() }])).toBe(true)
    expect(sameSubsets(stored, [{ addresses: [a, { ...b, nodeName: 'n2' }], ports }, ...only])).toBe(false)
    expect(sameSubsets(stored, [{ addresses: [a], notReadyAddresses: [b], ports }, ...only])).toBe(false)
    expect(sameSubsets([], undefined)).toBe(true)
  })
})
