// What a ReplicationController or a ReplicaSet needs done, decided as
// Kubernetes' ReplicaSetController decides it (its ReplicationManager is the
// same code): claim the pods (keep the owned ones that match, adopt matching
// orphans, release owned ones that stopped matching), then create the missing
// replicas or delete the surplus, and report status. The two kinds differ only
// in their selector: a label map (v1) or a LabelSelector (apps/v1).
// Pure: the controller (replication-controller.ts) reads the store and writes.
import { matches, nothing, selectorFromLabelSelector, selectorFromMap, type LabelSelector, type Selector } from '../api/selectors.js'
import type { ApiObject, ObjectMeta, OwnerReference } from '../kinds/meta.js'

/**
 * Pods one round creates for all controllers together (Kubernetes' burstReplicas is 500; our creates
 * go in entries of 256, and 2,000 a round took an RC of 10,000 from 940 to 1,480 pods/s). A round costs
 * a few Raft round trips whatever its size, so 5,000 went faster still (~2,500 bound/s), but applying
 * that burst on the leader outlasted the election timeout (0.5-1 s): leadership moved in most runs.
 * The next round, which these writes trigger, does more.
 */
export const createsPerRoundMax = 2000
/** Pods one round deletes for all controllers together. */
export const deletesPerRoundMax = 500

export interface PodTemplateView {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string>; finalizers?: string[] }
  spec?: Record<string, unknown>
}

export interface ReplicationStatus {
  replicas: number
  fullyLabeledReplicas?: number
  readyReplicas?: number
  availableReplicas?: number
  observedGeneration?: number
  conditions?: unknown[]
}

/** A ReplicationController (selector: a label map) or a ReplicaSet (selector: a LabelSelector). */
export type RcObject = ApiObject & {
  spec?: { replicas?: number; minReadySeconds?: number; selector?: Record<string, string> | LabelSelector; template?: PodTemplateView }
  status?: Partial<ReplicationStatus>
}

interface PodCondition {
  type: string
  status: string
  lastTransitionTime?: string
}

export type PodObject = ApiObject & {
  spec?: { nodeName?: string }
  status?: { phase?: string; conditions?: PodCondition[]; containerStatuses?: { restartCount?: number }[] }
}

export interface ReplicationPlan {
  rc: RcObject
  /** Orphans to adopt: copies carrying this controller's ownerReference (write with the original's resourceVersion). */
  adopt: PodObject[]
  /** Owned pods that stopped matching: copies without this controller's ownerReference. */
  release: PodObject[]
  /** Replicas to create from the template. */
  createCount: number
  /** Surplus pods to delete, the first to go first. */
  remove: PodObject[]
}

export function controllerRefOf(object: ApiObject): OwnerReference | undefined {
  return (object.metadata.ownerReferences ?? []).find((r) => r.controller === true)
}

export function ownerReferenceFor(rc: ApiObject): OwnerReference {
  return { apiVersion: rc.apiVersion, kind: rc.kind, name: rc.metadata.name ?? '', uid: rc.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }
}

/** Counts toward replicas: not finished and not being deleted (Kubernetes' IsPodActive). */
export function isActivePod(pod: PodObject): boolean {
  const phase = pod.status?.phase
  return phase !== 'Succeeded' && phase !== 'Failed' && pod.metadata.deletionTimestamp === undefined
}

function readyCondition(pod: PodObject): PodCondition | undefined {
  return (pod.status?.conditions ?? []).find((c) => c.type === 'Ready')
}

export function isPodReady(pod: PodObject): boolean {
  return readyCondition(pod)?.status === 'True'
}

/** Ready for at least minReadySeconds (Kubernetes' IsPodAvailable). */
export function isPodAvailable(pod: PodObject, minReadySeconds: number, nowMs: number): boolean {
  if (!isPodReady(pod)) return false
  if (minReadySeconds <= 0) return true
  const since = Date.parse(readyCondition(pod)?.lastTransitionTime ?? '')
  return Number.isFinite(since) && since + minReadySeconds * 1000 <= nowMs
}

/** The pods `rc` selects; a selector that does not parse (the API refuses those) selects nothing. */
export function selectorOf(rc: RcObject): Selector {
  try {
    return rc.apiVersion === 'v1' ? selectorFromMap(rc.spec?.selector as Record<string, string> | undefined) : selectorFromLabelSelector(rc.spec?.selector as LabelSelector | undefined)
  } catch {
    return nothing
  }
}

/**
 * Kubernetes' ClaimPods: the pods of `rc`'s namespace it owns and that match,
 * the matching orphans it may adopt, and the owned ones it must let go.
 */
export function claimPods(rc: RcObject, pods: readonly PodObject[]): { owned: PodObject[]; adopt: PodObject[]; release: PodObject[] } {
  const selector = selectorOf(rc)
  const uid = rc.metadata.uid
  const deleting = rc.metadata.deletionTimestamp !== undefined
  const owned: PodObject[] = []
  const adopt: PodObject[] = []
  const release: PodObject[] = []
  for (const pod of pods) {
    if (pod.metadata.namespace !== rc.metadata.namespace) continue
    const ref = controllerRefOf(pod)
    const matching = matches(selector, pod.metadata.labels)
    if (ref !== undefined) {
      if (ref.uid !== uid) continue
      if (matching) owned.push(pod)
      else if (!deleting) release.push(withoutOwner(pod, uid))
      continue
    }
    if (matching && !deleting && pod.metadata.deletionTimestamp === undefined) adopt.push(withOwner(pod, rc))
  }
  return { owned, adopt, release }
}

function withOwner(pod: PodObject, rc: RcObject): PodObject {
  return { ...pod, metadata: { ...pod.metadata, ownerReferences: [...(pod.metadata.ownerReferences ?? []), ownerReferenceFor(rc)] } }
}

function withoutOwner(pod: PodObject, uid: string | undefined): PodObject {
  const others = (pod.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid)
  const metadata: ObjectMeta = { ...pod.metadata, ownerReferences: others }
  if (others.length === 0) delete metadata.ownerReferences
  return { ...pod, metadata }
}

/** What `rc` needs done, given every pod of its namespace. */
export function planReplication(rc: RcObject, pods: readonly PodObject[]): ReplicationPlan {
  const { owned, adopt, release } = claimPods(rc, pods)
  const plan: ReplicationPlan = { rc, adopt, release, createCount: 0, remove: [] }
  if (rc.metadata.deletionTimestamp !== undefined) return plan
  const active = [...owned, ...adopt].filter(isActivePod)
  const wanted = rc.spec?.replicas ?? 1
  if (active.length < wanted) plan.createCount = wanted - active.length
  else if (active.length > wanted) plan.remove = [...active].sort(deletionOrder).slice(0, active.length - wanted)
  return plan
}

const phaseOrdinal: Readonly<Record<string, number>> = { Pending: 0, Unknown: 1, Running: 2 }

function restartsOf(pod: PodObject): number {
  return Math.max(0, ...(pod.status?.containerStatuses ?? []).map((c) => c.restartCount ?? 0))
}

function timeOf(iso: string | undefined): number {
  const ms = Date.parse(iso ?? '')
  return Number.isFinite(ms) ? ms : 0
}

/**
 * Kubernetes' ActivePods order, the pod to delete first first: unassigned
 * before assigned, Pending before Unknown before Running, not ready before
 * ready, ready for less time before more, more restarts before fewer, newer
 * before older (then by name, so the choice is the same on every leader).
 */
export function deletionOrder(a: PodObject, b: PodObject): number {
  const assigned = (p: PodObject): number => ((p.spec?.nodeName ?? '') === '' ? 0 : 1)
  if (assigned(a) !== assigned(b)) return assigned(a) - assigned(b)
  const phase = (p: PodObject): number => phaseOrdinal[p.status?.phase ?? ''] ?? 0
  if (phase(a) !== phase(b)) return phase(a) - phase(b)
  const ready = (p: PodObject): number => (isPodReady(p) ? 1 : 0)
  if (ready(a) !== ready(b)) return ready(a) - ready(b)
  if (ready(a) === 1) {
    const readySince = (p: PodObject): number => timeOf(readyCondition(p)?.lastTransitionTime)
    if (readySince(a) !== readySince(b)) return readySince(b) - readySince(a)
  }
  if (restartsOf(a) !== restartsOf(b)) return restartsOf(b) - restartsOf(a)
  const created = (p: PodObject): number => timeOf(p.metadata.creationTimestamp)
  if (created(a) !== created(b)) return created(b) - created(a)
  const an = a.metadata.name ?? ''
  const bn = b.metadata.name ?? ''
  return an < bn ? 1 : an > bn ? -1 : 0
}

/** Kubernetes keeps generated names within 63 characters: at most 58 of prefix, then 5 random ones. */
const generateNamePrefixMax = 58

/** The body of a new replica (Kubernetes' GetPodFromTemplate), for prepareCreate. */
export function podBodyFromTemplate(rc: RcObject): Record<string, unknown> {
  const template = rc.spec?.template ?? {}
  const meta = template.metadata ?? {}
  const metadata: Record<string, unknown> = {
    generateName: `${rc.metadata.name ?? ''}-`.slice(0, generateNamePrefixMax),
    ownerReferences: [ownerReferenceFor(rc)],
  }
  if (meta.labels !== undefined) metadata.labels = { ...meta.labels }
  if (meta.annotations !== undefined) metadata.annotations = { ...meta.annotations }
  if (meta.finalizers !== undefined) metadata.finalizers = [...meta.finalizers]
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec: structuredClone(template.spec ?? {}) }
}

/**
 * When the next of `rc`'s ready pods becomes available (ready for minReadySeconds), so the status
 * says so then rather than at the next round that happens to come; undefined when none is waiting.
 */
export function nextAvailableAtMs(rc: RcObject, pods: Iterable<PodObject>, nowMs: number): number | undefined {
  const minReadySeconds = rc.spec?.minReadySeconds ?? 0
  if (minReadySeconds <= 0) return undefined
  let next: number | undefined
  for (const p of pods) {
    if (!isActivePod(p) || !isPodReady(p)) continue
    const at = Date.parse(readyCondition(p)?.lastTransitionTime ?? '') + minReadySeconds * 1000
    if (Number.isFinite(at) && at > nowMs && (next === undefined || at < next)) next = at
  }
  return next
}

/** The status Kubernetes' calculateStatus gives, from the pods `rc` owns (zeros left out, as its JSON omits them). One pass: it runs every round. */
export function replicationStatus(rc: RcObject, pods: readonly PodObject[], nowMs: number): ReplicationStatus {
  const selector = selectorOf(rc)
  const templateSelector = selectorFromMap(rc.spec?.template?.metadata?.labels)
  const minReadySeconds = rc.spec?.minReadySeconds ?? 0
  const counts = { fullyLabeledReplicas: 0, readyReplicas: 0, availableReplicas: 0 }
  let replicas = 0
  for (const p of pods) {
    if (p.metadata.namespace !== rc.metadata.namespace || controllerRefOf(p)?.uid !== rc.metadata.uid || !isActivePod(p) || !matches(selector, p.metadata.labels)) continue
    replicas++
    if (matches(templateSelector, p.metadata.labels)) counts.fullyLabeledReplicas++
    if (!isPodReady(p)) continue
    counts.readyReplicas++
    if (isPodAvailable(p, minReadySeconds, nowMs)) counts.availableReplicas++
  }
  return statusFromCounts(rc, { replicas, ...counts })
}

/** The status from counts already made (observedGeneration is `rc`'s generation); zeros left out, conditions kept. */
export function statusFromCounts(rc: RcObject, counts: { replicas: number; fullyLabeledReplicas: number; readyReplicas: number; availableReplicas: number }): ReplicationStatus {
  const { replicas, ...rest } = counts
  const status: ReplicationStatus = { replicas }
  for (const [key, value] of Object.entries({ ...rest, observedGeneration: rc.metadata.generation ?? 0 }) as [keyof typeof rest | 'observedGeneration', number][]) if (value !== 0) status[key] = value
  if (rc.status?.conditions !== undefined) status.conditions = rc.status.conditions
  return status
}

/** Whether the stored status already says what `wanted` says (a missing count is 0). */
export function sameStatus(stored: Partial<ReplicationStatus> | undefined, wanted: ReplicationStatus): boolean {
  const keys = ['replicas', 'fullyLabeledReplicas', 'readyReplicas', 'availableReplicas', 'observedGeneration'] as const
  return keys.every((k) => (stored?.[k] ?? 0) === (wanted[k] ?? 0))
}
