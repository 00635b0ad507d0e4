// The official Kubernetes JavaScript client (@kubernetes/client-node 1.4)
// against a 3-peer cluster of real processes, through the kubeconfig a peer
// writes: typed CoreV1Api calls, conflicts, selectors, the scale subresource
// and watches, on the leader and on followers alike.
import { join } from 'node:path'
import { ApiException, CoreV1Api, KubeConfig, PatchStrategy, Watch, setHeaderOptions, type V1Pod, type V1ReplicationController, type V1Service } from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startVotingCluster, until, type PeerProcess, type ProcessCluster } from './process-cluster.js'

let cluster: ProcessCluster
let leader: PeerProcess
let followers: PeerProcess[]
/** The typed client of the leader and of the first follower. */
let onLeader: CoreV1Api
let onFollower: CoreV1Api

function kubeconfigOf(peer: PeerProcess): KubeConfig {
  const kc = new KubeConfig()
  kc.loadFromFile(join(peer.dataDir, 'kubeconfig'))
  return kc
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

beforeAll(async () => {
  ;({ cluster, leader, followers } = await startVotingCluster(['cn1', 'cn2', 'cn3']))
  onLeader = kubeconfigOf(leader).makeApiClient(CoreV1Api)
  onFollower = kubeconfigOf(followers[0]!).makeApiClient(CoreV1Api)
  for (const api of [onLeader, onFollower]) await until(() => api.readNamespace({ name: 'default' }), 30_000, 'the default namespace')
}, 60_000)

afterAll(async () => {
  await cluster?.destroy()
})

/** The Status a failed call carried: code, reason and message, as the client hands them over. */
async function failure(call: Promise<unknown>): Promise<{ code: number; reason: string; message: string }> {
  try {
    await call
  } catch (err) {
    expect(err).toBeInstanceOf(ApiException)
    const e = err as ApiException<string>
    const status = JSON.parse(e.body) as { reason: string; message: string; code: number }
    expect(status.code).toBe(e.code)
    return { code: e.code, reason: status.reason, message: status.message }
  }
  throw new Error('the call succeeded')
}

/** Pods for another scheduler: the cluster's own leaves them alone, so only this test writes them (and their resourceVersions). */
const schedulerName = 'client-node-test'

function podOf(name: string, labels: Record<string, string>): V1Pod {
  return { metadata: { name, labels }, spec: { schedulerName, containers: [{ name: 'web', image: 'busybox', ports: [{ containerPort: 80 }] }] } }
}

function serviceOf(name: string): V1Service {
  return { metadata: { name, labels: { tier: 'front' } }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } }
}

function controllerOf(name: string, replicas: number): V1ReplicationController {
  return {
    metadata: { name },
    spec: { replicas, selector: { app: name }, template: { metadata: { labels: { app: name } }, spec: { schedulerName, containers: [{ name: 'web', image: 'busybox' }] } } },
  }
}

describe('@kubernetes/client-node against any peer', () => {
  it.each(['default', 'client-node-ns'])('creates, reads, replaces, merge-patches and deletes pods, services and RCs in namespace %s', async (namespace) => {
    if (namespace !== 'default') {
      const created = await onFollower.createNamespace({ body: { metadata: { name: namespace } } })
      expect(created.status?.phase).toBe('Active')
      expect((await onLeader.readNamespace({ name: namespace })).metadata?.uid).toBe(created.metadata?.uid)
    }
    // Pods: written through a follower, read back on the leader.
    const pod = await onFollower.createNamespacedPod({ namespace, body: podOf('web-1', { app: 'web' }) })
    expect(pod.metadata?.namespace).toBe(namespace)
    expect(pod.status?.phase).toBe('Pending')
    const read = await onLeader.readNamespacedPod({ namespace, name: 'web-1' })
    expect(read.metadata?.uid).toBe(pod.metadata?.uid)
    expect(read.spec?.containers[0]?.ports?.[0]?.protocol).toBe('TCP')
    read.metadata!.labels = { ...read.metadata!.labels, version: 'v2' }
    const replaced = await onLeader.replaceNamespacedPod({ namespace, name: 'web-1', body: read })
    expect(replaced.metadata?.labels).toEqual({ app: 'web', version: 'v2' })
    expect(Number(replaced.metadata?.resourceVersion)).toBeGreaterThan(Number(read.metadata?.resourceVersion))
    const patched = await onFollower.patchNamespacedPod({ namespace, name: 'web-1', body: { metadata: { labels: { version: null, patched: 'yes' }, annotations: { note: 'merge' } } } }, mergePatch)
    expect(patched.metadata?.labels).toEqual({ app: 'web', patched: 'yes' })
    expect(patched.metadata?.annotations).toEqual({ note: 'merge' })
    expect((await onLeader.readNamespacedPod({ namespace, name: 'web-1' })).metadata?.labels).toEqual({ app: 'web', patched: 'yes' })

    // Services.
    const service = await onLeader.createNamespacedService({ namespace, body: serviceOf('web') })
    expect(service.spec?.ports?.[0]).toMatchObject({ port: 80, targetPort: 8080, protocol: 'TCP' })
    const svc = await onFollower.readNamespacedService({ namespace, name: 'web' })
    svc.spec!.ports = [{ port: 81, targetPort: 8081 }]
    expect((await onFollower.replaceNamespacedService({ namespace, name: 'web', body: svc })).spec?.ports?.[0]?.port).toBe(81)
    const svcPatched = await onLeader.patchNamespacedService({ namespace, name: 'web', body: { spec: { selector: { app: 'web', tier: 'front' } } } }, mergePatch)
    expect(svcPatched.spec?.selector).toEqual({ app: 'web', tier: 'front' })

    // Replication controllers.
    const rc = await onFollower.createNamespacedReplicationController({ namespace, body: controllerOf('frontend', 2) })
    expect(rc.metadata?.labels).toEqual({ app: 'frontend' })
    // The replication controller creates the pods and writes the RC's status; read it once that has settled.
    const rcRead = await until(async () => {
      const r = await onLeader.readNamespacedReplicationController({ namespace, name: 'frontend' })
      return r.status?.replicas === 2 && r.status.observedGeneration === r.metadata?.generation ? r : undefined
    }, 10_000, 'the RC status to settle')
    rcRead.spec!.replicas = 3
    expect((await onLeader.replaceNamespacedReplicationController({ namespace, name: 'frontend', body: rcRead })).spec?.replicas).toBe(3)
    const rcPatched = await onFollower.patchNamespacedReplicationController({ namespace, name: 'frontend', body: { spec: { replicas: 4 } } }, mergePatch)
    expect(rcPatched.spec?.replicas).toBe(4)
    expect(rcPatched.metadata?.generation).toBe(3)

    // Deletes: pods and services answer with the object, controllers with a Success Status (as Kubernetes does).
    expect((await onFollower.deleteNamespacedPod({ namespace, name: 'web-1' })).metadata?.uid).toBe(pod.metadata?.uid)
    expect((await onLeader.deleteNamespacedService({ namespace, name: 'web' })).metadata?.uid).toBe(service.metadata?.uid)
    const rcDeleted = await onFollower.deleteNamespacedReplicationController({ namespace, name: 'frontend' })
    expect(rcDeleted).toMatchObject({ kind: 'Status', status: 'Success', details: { name: 'frontend', kind: 'replicationcontrollers', uid: rc.metadata?.uid } })
    const reads = [() => onLeader.readNamespacedPod({ namespace, name: 'web-1' }), () => onFollower.readNamespacedService({ namespace, name: 'web' }), () => onLeader.readNamespacedReplicationController({ namespace, name: 'frontend' })]
    for (const read of reads) expect(await failure(read())).toMatchObject({ code: 404, reason: 'NotFound' })
  })

  it('lists by label selector and field selector, on the leader and on a follower', async () => {
    const namespace = 'selectors'
    await onLeader.createNamespace({ body: { metadata: { name: namespace } } })
    await onLeader.createNamespacedPod({ namespace, body: podOf('front-a', { app: 'web', tier: 'front' }) })
    await onLeader.createNamespacedPod({ namespace, body: podOf('front-b', { app: 'web', tier: 'front', canary: 'true' }) })
    await onLeader.createNamespacedPod({ namespace, body: podOf('back-a', { app: 'db', tier: 'back' }) })
    await onLeader.createNamespacedPod({ namespace: 'default', body: podOf('front-elsewhere', { app: 'web', tier: 'front' }) })
    const names = (list: { items: V1Pod[] }): string[] => list.items.map((p) => p.metadata?.name ?? '').sort()
    // The follower may apply the last write a moment after the leader answered.
    await until(async () => (await onFollower.listNamespacedPod({ namespace })).items.length === 3 || undefined, 5000, 'the follower to see the pods')
    for (const api of [onLeader, onFollower]) {
      expect(names(await api.listNamespacedPod({ namespace, labelSelector: 'tier=front' }))).toEqual(['front-a', 'front-b'])
      expect(names(await api.listNamespacedPod({ namespace, labelSelector: 'app in (web,db),!canary' }))).toEqual(['back-a', 'front-a'])
      expect(names(await api.listNamespacedPod({ namespace, fieldSelector: 'metadata.name=back-a' }))).toEqual(['back-a'])
      expect(names(await api.listNamespacedPod({ namespace, fieldSelector: 'metadata.name!=back-a', labelSelector: 'app=web' }))).toEqual(['front-a', 'front-b'])
      expect(names(await api.listPodForAllNamespaces({ labelSelector: 'tier=front', fieldSelector: 'status.phase=Pending' }))).toEqual(['front-a', 'front-b', 'front-elsewhere'])
      expect(names(await api.listPodForAllNamespaces({ fieldSelector: `metadata.namespace=${namespace},status.phase=Running` }))).toEqual([])
    }
    const invalid = await failure(onFollower.listNamespacedPod({ namespace, fieldSelector: 'spec.nope=1' }))
    expect(invalid).toMatchObject({ code: 400, reason: 'BadRequest' })
    await onLeader.deleteNamespacedPod({ namespace: 'default', name: 'front-elsewhere' })
  })

  it('refuses a replace with a stale resourceVersion with 409 Conflict; a retry after re-reading succeeds', async () => {
    const namespace = 'default'
    await onLeader.createNamespacedPod({ namespace, body: podOf('contended', { app: 'c' }) })
    const mine = await onFollower.readNamespacedPod({ namespace, name: 'contended' })
    const theirs = await onLeader.readNamespacedPod({ namespace, name: 'contended' })
    theirs.metadata!.labels = { app: 'c', writer: 'them' }
    await onLeader.replaceNamespacedPod({ namespace, name: 'contended', body: theirs })
    mine.metadata!.labels = { app: 'c', writer: 'me' }
    const conflict = await failure(onFollower.replaceNamespacedPod({ namespace, name: 'contended', body: mine }))
    expect(conflict).toMatchObject({ code: 409, reason: 'Conflict' })
    expect(conflict.message).toContain('the object has been modified')
    expect((await onLeader.readNamespacedPod({ namespace, name: 'contended' })).metadata?.labels?.writer).toBe('them')
    const fresh = await onFollower.readNamespacedPod({ namespace, name: 'contended' })
    fresh.metadata!.labels = { ...fresh.metadata!.labels, writer: 'me' }
    expect((await onFollower.replaceNamespacedPod({ namespace, name: 'contended', body: fresh })).metadata?.labels?.writer).toBe('me')
    await onFollower.deleteNamespacedPod({ namespace, name: 'contended' })
  })

  it('reads and replaces the scale subresource of an RC', async () => {
    const namespace = 'default'
    await onLeader.createNamespacedReplicationController({ namespace, body: controllerOf('scaled', 2) })
    // Its controller writes the status once it has made the pods: read the Scale after that, or the write races it (a 409, as in Kubernetes).
    await until(async () => {
      const rc = await onFollower.readNamespacedReplicationController({ namespace, name: 'scaled' })
      return rc.status?.replicas === 2 && rc.status.observedGeneration === rc.metadata?.generation
    }, 10_000, 'the controller to report its 2 replicas')
    const scale = await onFollower.readNamespacedReplicationControllerScale({ namespace, name: 'scaled' })
    expect(scale).toMatchObject({ kind: 'Scale', apiVersion: 'autoscaling/v1', spec: { replicas: 2 }, status: { selector: 'app=scaled' } })
    scale.spec = { replicas: 5 }
    const updated = await onFollower.replaceNamespacedReplicationControllerScale({ namespace, name: 'scaled', body: scale })
    expect(updated.spec?.replicas).toBe(5)
    expect((await onLeader.readNamespacedReplicationController({ namespace, name: 'scaled' })).spec?.replicas).toBe(5)
    // The Scale's resourceVersion is a precondition too.
    const stale = await failure(onFollower.replaceNamespacedReplicationControllerScale({ namespace, name: 'scaled', body: { ...scale, spec: { replicas: 1 } } }))
    expect(stale).toMatchObject({ code: 409, reason: 'Conflict' })
    expect((await onLeader.readNamespacedReplicationControllerScale({ namespace, name: 'scaled' })).spec?.replicas).toBe(5)
    await onLeader.deleteNamespacedReplicationController({ namespace, name: 'scaled' })
  })
})

interface SeenEvent {
  type: string
  name: string
  resourceVersion: string
  code?: number
  reason?: string
}

/** A client-node Watch on the pods of `namespace`, collecting what arrives. */
async function watchPods(kc: KubeConfig, namespace: string, query: Record<string, string>): Promise<{ seen: SeenEvent[]; ended: Promise<unknown>; stop: () => void }> {
  const seen: SeenEvent[] = []
  let ended!: (err: unknown) => void
  const endedPromise = new Promise((resolve) => (ended = resolve))
  const controller = await new Watch(kc).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    query,
    (type, object: { metadata?: { name?: string; resourceVersion?: string }; code?: number; reason?: string }) =>
      seen.push({ type, name: object.metadata?.name ?? '', resourceVersion: object.metadata?.resourceVersion ?? '', ...(type === 'ERROR' ? { code: object.code, reason: object.reason } : {}) }),
    (err) => ended(err),
  )
  return { seen, ended: endedPromise, stop: () => controller.abort() }
}

describe('client-node Watch on a follower', () => {
  it('sees ADDED, MODIFIED and DELETED for writes made on the leader, and resumes from a resourceVersion without losing any', async () => {
    const namespace = 'watched'
    await onLeader.createNamespace({ body: { metadata: { name: namespace } } })
    const followerConfig = kubeconfigOf(followers[1]!)
    const live = await watchPods(followerConfig, namespace, {})
    const created = await onLeader.createNamespacedPod({ namespace, body: podOf('w1', { app: 'w' }) })
    const modified = await onLeader.patchNamespacedPod({ namespace, name: 'w1', body: { metadata: { labels: { step: 'two' } } } }, mergePatch)
    await onLeader.deleteNamespacedPod({ namespace, name: 'w1' })
    await until(() => live.seen.length >= 3 || undefined, 5000, 'three events on the follower')
    live.stop()
    expect(live.seen.map((e) => `${e.type} ${e.name}`)).toEqual(['ADDED w1', 'MODIFIED w1', 'DELETED w1'])
    expect(live.seen[0]!.resourceVersion).toBe(created.metadata?.resourceVersion)
    expect(live.seen[1]!.resourceVersion).toBe(modified.metadata?.resourceVersion)

    // Writes while nobody watches, then a watch from the last resourceVersion seen: all of them, in order, nothing before.
    const lastSeen = live.seen[2]!.resourceVersion
    const missed: string[] = []
    for (const n of ['w2', 'w3', 'w4']) missed.push((await onLeader.createNamespacedPod({ namespace, body: podOf(n, { app: 'w' }) })).metadata!.resourceVersion!)
    const resumed = await watchPods(followerConfig, namespace, { resourceVersion: lastSeen })
    await onLeader.deleteNamespacedPod({ namespace, name: 'w2' })
    await until(() => resumed.seen.length >= 4 || undefined, 5000, 'the replayed events and one more')
    resumed.stop()
    expect(resumed.seen.map((e) => `${e.type} ${e.name} ${e.resourceVersion}`).slice(0, 3)).toEqual(['w2', 'w3', 'w4'].map((n, k) => `ADDED ${n} ${missed[k]}`))
    expect(resumed.seen[3]).toMatchObject({ type: 'DELETED', name: 'w2' })

    // Resuming from the first of them replays only what came after it.
    const fromMiddle = await watchPods(kubeconfigOf(followers[0]!), namespace, { resourceVersion: missed[0]! })
    await until(() => fromMiddle.seen.length >= 3 || undefined, 5000, 'the events after the first create')
    fromMiddle.stop()
    expect(fromMiddle.seen.map((e) => `${e.type} ${e.name}`)).toEqual(['ADDED w3', 'ADDED w4', 'DELETED w2'])
  })

  it('answers a resourceVersion older than its history with an ERROR event carrying 410 Expired', async () => {
    // A restarted peer's watch history starts where it restarted, so resourceVersion 1 is then out of reach.
    const restarted = followers[1]!
    const namespace = 'relist'
    await onLeader.createNamespace({ body: { metadata: { name: namespace } } })
    await onLeader.createNamespacedPod({ namespace, body: podOf('before-restart', { app: 'r' }) })
    await cluster.kill(restarted)
    cluster.start(restarted)
    // It prints where its API is once it has rewritten its kubeconfig.
    await until(() => /API on https:/.test(restarted.output) || undefined, 30_000, `${restarted.name} to restart`)
    const config = kubeconfigOf(restarted)
    await until(() => config.makeApiClient(CoreV1Api).readNamespacedPod({ namespace, name: 'before-restart' }), 30_000, 'the restarted peer to serve')
    const ancient = await watchPods(config, namespace, { resourceVersion: '1' })
    await ancient.ended
    expect(ancient.seen).toEqual([{ type: 'ERROR', name: '', resourceVersion: '', code: 410, reason: 'Expired' }])
    // What a client does next: list, then watch from the list's resourceVersion.
    const list = await config.makeApiClient(CoreV1Api).listNamespacedPod({ namespace })
    expect(list.items.map((p) => p.metadata?.name)).toContain('before-restart')
    const rewatch = await watchPods(config, namespace, { resourceVersion: list.metadata!.resourceVersion! })
    await onLeader.deleteNamespacedPod({ namespace, name: 'before-restart' })
    await until(() => rewatch.seen.length >= 1 || undefined, 5000, 'the delete after the relist')
    rewatch.stop()
    expect(rewatch.seen).toMatchObject([{ type: 'DELETED', name: 'before-restart' }])
  })
})
