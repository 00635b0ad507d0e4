// Pods for agent tests: created straight in a peer's store, bound to its Node
// (the scheduler is not what these tests look at), then read back as the
// agent reported them. And the end of a file's process cluster whose pods
// carry a marker in their command line.
import { execFileSync } from 'node:child_process'
import { prepareCreate } from '../../node/api/prepare.js'
import { submit } from '../../node/api/submit.js'
import type { PodJson } from '../../node/agent/pod-types.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import type { Peer } from '../../node/peer.js'
import type { LocalPeer } from '../node/local-peer.js'
import { until, type VotingCluster } from '../node/process-cluster.js'

export async function createObject(peer: Peer, body: ApiObject, namespace = 'default'): Promise<ApiObject> {
  const def = peer.state.store.kinds.byKind(body.apiVersion, body.kind)!
  const object = prepareCreate(def, body, namespace, 'Strict', new Date().toISOString()).object
  const answer = await submit(peer.submitter, { op: 'obj.create', object })
  const outcome = answer.outcomes[0]!
  if (!outcome.ok) throw new Error(outcome.failure.message)
  return outcome.object ?? object
}

export async function createPod(peer: Peer, name: string, spec: Record<string, unknown>, labels: Record<string, string> = {}): Promise<PodJson> {
  return (await createObject(peer, { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels }, spec: { nodeName: peer.identity.name, terminationGracePeriodSeconds: 2, ...spec } })) as PodJson
}

export function podNamed(peer: Peer, name: string): PodJson | undefined {
  return peer.state.store.get({ apiVersion: 'v1', kind: 'Pod', namespace: 'default', name }) as PodJson | undefined
}

export async function deletePod(peer: Peer, name: string): Promise<void> {
  await submit(peer.submitter, { op: 'obj.delete', ref: { apiVersion: 'v1', kind: 'Pod', namespace: 'default', name }, propagation: 'Background' })
}

/** Deletes every pod of an in-process peer, waits (bounded) for its runtime to stop them, then stops the peer. */
export async function stopLocalPeerAndPods(lp: LocalPeer | undefined, timeoutMs = 15_000): Promise<void> {
  if (lp === undefined) return
  for (const p of lp.peer.state.store.allObjects().filter((o) => o.kind === 'Pod')) await deletePod(lp.peer, p.metadata.name ?? '')
  await until(async () => (await lp.peer.agent!.runtime.listPods()).length === 0, timeoutMs, 'every pod stopped').catch(() => {})
  await lp.stop()
}

/** Waits until the pod's status satisfies `ok`; the failure message shows the last status seen. */
export async function podUntil(peer: Peer, name: string, ok: (pod: PodJson) => boolean, what: string, timeoutMs = 15_000): Promise<PodJson> {
  let last: PodJson | undefined
  try {
    return await until(() => {
      last = podNamed(peer, name)
      return last !== undefined && ok(last) ? last : undefined
    }, timeoutMs, `${name}: ${what}`)
  } catch (err) {
    throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(last?.status)}`)
  }
}

export function containerState(pod: PodJson, container = pod.spec.containers[0]!.name) {
  return pod.status?.containerStatuses?.find((c) => c.name === container)
}

export function isReady(pod: PodJson): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false
}

/** Pids of every process on this machine whose command line contains `marker`. */
export function markedPids(marker: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').filter((l) => l !== '').map(Number)
  } catch {
    return []
  }
}

/** Waits a while for the file's pods (their command lines carry `marker`) to stop, destroys the cluster, then kills any left, so none outlives the tests. */
export async function destroyClusterAndPods(vc: VotingCluster | undefined, marker: string): Promise<void> {
  await until(() => markedPids(marker).length === 0, 15_000, 'every test pod stopped').catch(() => {})
  await vc?.cluster.destroy()
  for (const pid of markedPids(marker)) process.kill(pid, 'SIGKILL')
}
