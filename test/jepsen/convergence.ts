// After the faults are healed and the workload has stopped, the cluster must
// settle within a deadline: one leader every peer agrees on, the same objects
// at the same resourceVersions on every peer's replica, every RC with exactly
// spec.replicas pods Running and Ready, every bare pod Running, every
// service's endpoints listing exactly its ready pods' IPs, and on every host
// exactly the processes of the pods bound to it.
import type { JepsenCluster } from './cluster.js'
import { boundPods, namespaceInodesOf, podProcesses, staleCopies } from './copies.js'

export interface ConvergenceResult {
  ok: boolean
  /** From the start of the wait to the first poll where everything held. */
  elapsedMs: number
  polls: number
  /** What still failed at the last poll, when not ok. */
  problems: string[]
}

interface ObjectJson {
  metadata: { name: string; uid: string; resourceVersion: string; labels?: Record<string, string>; ownerReferences?: { uid: string }[] }
  spec?: { replicas?: number; selector?: Record<string, string>; nodeName?: string }
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] }
}

interface EndpointsJson {
  metadata: { name: string }
  subsets?: { addresses?: { ip: string }[] }[]
}

const kinds = ['pods', 'replicationcontrollers', 'services', 'endpoints'] as const

async function listFrom(cluster: JepsenCluster, peerIndex: number, kind: string): Promise<ObjectJson[] | undefined> {
  const answer = await cluster.request(cluster.peers[peerIndex]!, 'GET', `/api/v1/namespaces/default/${kind}`, undefined, 3000)
  return answer.status === 200 ? (JSON.parse(answer.text) as { items: ObjectJson[] }).items : undefined
}

function isReady(pod: ObjectJson): boolean {
  return pod.status?.phase === 'Running' && pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true
}

function sameSet(a: Iterable<string>, b: Iterable<string>): boolean {
  const left = [...a].sort().join(',')
  return left === [...b].sort().join(',')
}

/** One look at the whole cluster: the list of what is not yet as it must be (empty when converged). */
export async function convergenceProblems(cluster: JepsenCluster, runId: string, inodes: Map<number, string>): Promise<string[]> {
  const problems: string[] = []
  const views = await Promise.all(cluster.peers.map((p) => cluster.view(p)))
  const leaders = new Set(views.map((v) => v?.leaderId ?? 'none'))
  if (leaders.size !== 1 || leaders.has('none') || leaders.has(null as unknown as string)) problems.push(`leaders seen: ${[...leaders].join(', ')}`)
  const lists = new Map<string, ObjectJson[][]>()
  for (const kind of kinds) {
    const perPeer = await Promise.all(cluster.peers.map((_, k) => listFrom(cluster, k, kind)))
    if (perPeer.some((l) => l === undefined)) {
      problems.push(`${kind}: some peer did not answer`)
      continue
    }
    const versions = perPeer.map((items) => items!.map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`).sort().join(' '))
    if (new Set(versions).size !== 1) problems.push(`${kind} differ between peers: ${versions.map((v, k) => `${cluster.peers[k]!.name}: ${v}`).join(' | ')}`)
    lists.set(kind, perPeer as ObjectJson[][])
  }
  const pods = lists.get('pods')?.[0]
  const rcs = lists.get('replicationcontrollers')?.[0]
  const services = lists.get('services')?.[0]
  const endpoints = lists.get('endpoints')?.[0]
  if (pods === undefined || rcs === undefined || services === undefined || endpoints === undefined) return problems
  for (const rc of rcs) {
    const owned = pods.filter((p) => p.metadata.ownerReferences?.some((o) => o.uid === rc.metadata.uid))
    const ready = owned.filter(isReady)
    const want = rc.spec?.replicas ?? 1
    if (owned.length !== want || ready.length !== want) problems.push(`rc ${rc.metadata.name}: ${want} wanted, ${owned.length} pods, ${ready.length} Running and Ready`)
  }
  for (const pod of pods.filter((p) => p.metadata.labels?.['jepsen-bare'] === runId)) {
    if (!isReady(pod)) problems.push(`pod ${pod.metadata.name} is ${pod.status?.phase ?? 'Pending'}, not Running and Ready`)
  }
  for (const service of services) {
    const selector = service.spec?.selector
    if (selector === undefined || service.metadata.name === 'kubernetes') continue
    const matching = pods.filter((p) => isReady(p) && Object.entries(selector).every(([k, v]) => p.metadata.labels?.[k] === v))
    const listed = endpoints.find((e) => e.metadata.name === service.metadata.name) as EndpointsJson | undefined
    const ips = (listed?.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip))
    if (!sameSet(ips, matching.map((p) => p.status?.podIP ?? '?'))) problems.push(`endpoints ${service.metadata.name}: [${ips.join(',')}], ready pods: [${matching.map((p) => p.status?.podIP).join(',')}]`)
  }
  const processes = await podProcesses(runId, inodes)
  const store = await boundPods(cluster)
  if (store === undefined) problems.push('no peer answered a linearizable pod list')
  else {
    for (const copy of staleCopies(processes, store)) problems.push(`pod ${copy.name} (${copy.uid}) still runs on ${copy.peer}, bound to ${copy.boundTo ?? 'nothing (deleted)'}`)
    for (const [uid, pod] of store) {
      if (pod.phase === 'Running' && !processes.some((p) => p.uid === uid && p.peer === pod.node)) problems.push(`pod ${pod.name} is Running on ${pod.node} but no process runs there`)
    }
  }
  return problems
}

/** Polls until everything holds or the deadline passes. */
export async function awaitConvergence(cluster: JepsenCluster, runId: string, deadlineMs: number): Promise<ConvergenceResult> {
  const inodes = await namespaceInodesOf(cluster)
  const startedAt = Date.now()
  let polls = 0
  let problems: string[] = []
  while (Date.now() - startedAt < deadlineMs) {
    polls++
    problems = await convergenceProblems(cluster, runId, inodes).catch((err: Error) => [`poll failed: ${err.message}`])
    if (problems.length === 0) return { ok: true, elapsedMs: Date.now() - startedAt, polls, problems }
    await new Promise((r) => setTimeout(r, 500))
  }
  return { ok: false, elapsedMs: Date.now() - startedAt, polls, problems }
}
