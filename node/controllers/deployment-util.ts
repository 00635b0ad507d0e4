// The pieces of Kubernetes' pkg/controller/deployment/util that the
// Deployment controller decides with: maxSurge and maxUnavailable from numbers
// or percentages, the pod-template-hash, which ReplicaSet carries the current
// template, revisions and the annotations that record them, and conditions.
// Pure.
import type { LabelSelector } from '../api/label-selectors.js'
import { jsonEqual } from '../api/json-values.js'
import type { ApiObject } from '../kinds/meta.js'
import type { IntOrPercent } from '../kinds/deployment.js'
import type { PodTemplateView } from './replication.js'

export const podTemplateHashLabel = 'pod-template-hash'
export const revisionAnnotation = 'deployment.kubernetes.io/revision'
export const revisionHistoryAnnotation = 'deployment.kubernetes.io/revision-history'
export const desiredReplicasAnnotation = 'deployment.kubernetes.io/desired-replicas'
export const maxReplicasAnnotation = 'deployment.kubernetes.io/max-replicas'
const lastAppliedAnnotation = 'kubectl.kubernetes.io/last-applied-configuration'
const rollbackToAnnotation = 'deprecated.deployment.rollback.to'
/** The deployment's annotations a ReplicaSet does not copy (Kubernetes' annotationsToSkip). */
const annotationsToSkip = new Set([lastAppliedAnnotation, revisionAnnotation, revisionHistoryAnnotation, desiredReplicasAnnotation, maxReplicasAnnotation, rollbackToAnnotation])
/** Kubernetes keeps about 100 revisions (2,000 characters) in the revision-history annotation. */
export const revisionHistoryCharsMax = 2000

export interface DeploymentCondition {
  type: string
  status: 'True' | 'False' | 'Unknown'
  lastUpdateTime: string
  lastTransitionTime: string
  reason: string
  message: string
}

export interface DeploymentStatus {
  observedGeneration?: number
  replicas?: number
  updatedReplicas?: number
  readyReplicas?: number
  availableReplicas?: number
  unavailableReplicas?: number
  conditions?: DeploymentCondition[]
  collisionCount?: number
}

export type DeploymentObject = ApiObject & {
  spec?: {
    replicas?: number
    selector?: LabelSelector
    template?: PodTemplateView
    strategy?: { type?: string; rollingUpdate?: { maxSurge?: IntOrPercent; maxUnavailable?: IntOrPercent } }
    minReadySeconds?: number
    revisionHistoryLimit?: number
    progressDeadlineSeconds?: number
    paused?: boolean
  }
  status?: DeploymentStatus
}

export type ReplicaSetObject = ApiObject & {
  spec?: { replicas?: number; minReadySeconds?: number; selector?: LabelSelector; template?: PodTemplateView }
  status?: { replicas?: number; availableReplicas?: number; observedGeneration?: number }
}

// Progressing reasons (Kubernetes' deployment util constants).
export const reasons = {
  newReplicaSetCreated: 'NewReplicaSetCreated',
  foundNewReplicaSet: 'FoundNewReplicaSet',
  replicaSetUpdated: 'ReplicaSetUpdated',
  newReplicaSetAvailable: 'NewReplicaSetAvailable',
  progressDeadlineExceeded: 'ProgressDeadlineExceeded',
  deploymentPaused: 'DeploymentPaused',
  deploymentResumed: 'DeploymentResumed',
  minimumReplicasAvailable: 'MinimumReplicasAvailable',
  minimumReplicasUnavailable: 'MinimumReplicasUnavailable',
} as const

/** Kubernetes' GetScaledValueFromIntOrPercent: a percentage of `total`, rounded up or down. */
export function scaledValue(value: IntOrPercent | undefined, total: number, roundUp: boolean): number {
  if (value === undefined) return 0
  if (typeof value === 'number') return value
  const percent = Number(value.endsWith('%') ? value.slice(0, -1) : Number.NaN)
  if (!Number.isInteger(percent)) return 0
  const exact = (percent * total) / 100
  return roundUp ? Math.ceil(exact) : Math.floor(exact)
}

export function isRollingUpdate(d: DeploymentObject): boolean {
  return (d.spec?.strategy?.type ?? 'RollingUpdate') === 'RollingUpdate'
}

export function replicasOf(o: DeploymentObject | ReplicaSetObject): number {
  return o.spec?.replicas ?? 1
}

/** Kubernetes' ResolveFenceposts: surge rounds up, unavailable down, and both 0 means 1 unavailable. */
export function resolveFenceposts(d: DeploymentObject): { surge: number; unavailable: number } {
  const desired = replicasOf(d)
  const rolling = d.spec?.strategy?.rollingUpdate ?? {}
  const surge = scaledValue(rolling.maxSurge ?? '25%', desired, true)
  const unavailable = scaledValue(rolling.maxUnavailable ?? '25%', desired, false)
  return surge === 0 && unavailable === 0 ? { surge, unavailable: 1 } : { surge, unavailable }
}

export function maxSurge(d: DeploymentObject): number {
  return isRollingUpdate(d) ? resolveFenceposts(d).surge : 0
}

export function maxUnavailable(d: DeploymentObject): number {
  if (!isRollingUpdate(d) || replicasOf(d) === 0) return 0
  return Math.min(resolveFenceposts(d).unavailable, replicasOf(d))
}

/** JSON with keys sorted at every level, so equal templates give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined && v !== null)
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/** Kubernetes' rand.SafeEncodeString alphabet: no vowels, no look-alikes. */
const safeAlphabet = 'bcdfghjklmnpqrstvwxz2456789'

/**
 * The pod-template-hash, as Kubernetes' ComputeHash builds it: 32-bit FNV-1a of the template
 * (here its canonical JSON), then the collision count as 4 little-endian bytes when there is one,
 * the decimal sum encoded with SafeEncodeString.
 */
export function podTemplateHash(template: PodTemplateView | undefined, collisionCount: number | undefined): string {
  const bytes = [...new TextEncoder().encode(canonicalJson(template ?? {}))]
  if (collisionCount !== undefined) for (let k = 0; k < 4; k++) bytes.push((collisionCount >>> (8 * k)) & 0xff)
  let hash = 0x811c9dc5
  for (const b of bytes) hash = Math.imul(hash ^ b, 0x01000193) >>> 0
  return [...String(hash)].map((c) => safeAlphabet[c.charCodeAt(0) % safeAlphabet.length]).join('')
}

/** Kubernetes' EqualIgnoreHash: the templates are the same once the pod-template-hash label is set aside. */
export function equalIgnoreHash(a: PodTemplateView | undefined, b: PodTemplateView | undefined): boolean {
  const strip = (t: PodTemplateView | undefined): unknown => {
    const copy = structuredClone(t ?? {}) as PodTemplateView
    if (copy.metadata?.labels !== undefined) {
      delete copy.metadata.labels[podTemplateHashLabel]
      if (Object.keys(copy.metadata.labels).length === 0) delete copy.metadata.labels
    }
    return JSON.parse(canonicalJson(copy))
  }
  return jsonEqual(strip(a), strip(b))
}

export function revisionOf(o: ApiObject): number {
  const text = o.metadata.annotations?.[revisionAnnotation]
  if (text === undefined) return 0
  const n = Number(text)
  return Number.isInteger(n) ? n : 0
}

function timeOf(o: ApiObject): number {
  const ms = Date.parse(o.metadata.creationTimestamp ?? '')
  return Number.isFinite(ms) ? ms : 0
}

/** Kubernetes' ReplicaSetsByCreationTimestamp: older first, then by name. */
export function byCreation(a: ApiObject, b: ApiObject): number {
  if (timeOf(a) !== timeOf(b)) return timeOf(a) - timeOf(b)
  const an = a.metadata.name ?? ''
  const bn = b.metadata.name ?? ''
  return an < bn ? -1 : an > bn ? 1 : 0
}

/** Kubernetes' ReplicaSetsByRevision: lower revision first, then by creation. */
export function byRevision(a: ApiObject, b: ApiObject): number {
  return revisionOf(a) !== revisionOf(b) ? revisionOf(a) - revisionOf(b) : byCreation(a, b)
}

/**
 * Kubernetes' SetNewReplicaSetAnnotations: copy the deployment's annotations (but the skipped ones),
 * raise the revision to `newRevision` when it is lower (keeping the old one in revision-history: a
 * rollback to this ReplicaSet), and on a new ReplicaSet set the replica annotations. Mutates `rs`.
 */
export function setNewReplicaSetAnnotations(d: DeploymentObject, rs: ReplicaSetObject, newRevision: number, exists: boolean): boolean {
  const annotations = (rs.metadata.annotations ??= {})
  let changed = false
  for (const [k, v] of Object.entries(d.metadata.annotations ?? {})) {
    if (annotationsToSkip.has(k) || annotations[k] === v) continue
    annotations[k] = v
    changed = true
  }
  const oldText = annotations[revisionAnnotation]
  const oldRevision = oldText === undefined ? 0 : Number(oldText)
  if (!Number.isInteger(oldRevision)) return changed
  if (oldRevision < newRevision) {
    annotations[revisionAnnotation] = String(newRevision)
    changed = true
    if (oldText !== undefined) recordOldRevision(annotations, oldText)
  }
  if (!exists && setReplicasAnnotations(rs, replicasOf(d), replicasOf(d) + maxSurge(d))) changed = true
  return changed
}

function recordOldRevision(annotations: Record<string, string>, oldRevision: string): void {
  const history = annotations[revisionHistoryAnnotation] ?? ''
  if (history === '') {
    annotations[revisionHistoryAnnotation] = oldRevision
    return
  }
  const revisions = history.split(',')
  let total = history.length + oldRevision.length + 1
  let start = 0
  while (total > revisionHistoryCharsMax && start < revisions.length) total -= revisions[start++]!.length + 1
  if (total <= revisionHistoryCharsMax) annotations[revisionHistoryAnnotation] = [...revisions.slice(start), oldRevision].join(',')
}

/** Kubernetes' SetReplicasAnnotations. Mutates `rs`; whether anything changed. */
export function setReplicasAnnotations(rs: ReplicaSetObject, desired: number, max: number): boolean {
  const annotations = (rs.metadata.annotations ??= {})
  let changed = false
  if (annotations[desiredReplicasAnnotation] !== String(desired)) {
    annotations[desiredReplicasAnnotation] = String(desired)
    changed = true
  }
  if (annotations[maxReplicasAnnotation] !== String(max)) {
    annotations[maxReplicasAnnotation] = String(max)
    changed = true
  }
  return changed
}

export function replicasAnnotationsNeedUpdate(rs: ReplicaSetObject, desired: number, max: number): boolean {
  const annotations = rs.metadata.annotations ?? {}
  return annotations[desiredReplicasAnnotation] !== String(desired) || annotations[maxReplicasAnnotation] !== String(max)
}

/** An int annotation, or undefined when missing or not a number. */
export function intAnnotation(o: ApiObject, key: string): number | undefined {
  const text = o.metadata.annotations?.[key]
  if (text === undefined) return undefined
  const n = Number(text)
  return Number.isInteger(n) ? n : undefined
}

export function conditionOf(status: DeploymentStatus, type: string): DeploymentCondition | undefined {
  return (status.conditions ?? []).find((c) => c.type === type)
}

export function newCondition(type: string, status: DeploymentCondition['status'], reason: string, message: string, nowIso: string): DeploymentCondition {
  return { type, status, lastUpdateTime: nowIso, lastTransitionTime: nowIso, reason, message }
}

/** Kubernetes' SetDeploymentCondition: nothing when status and reason are unchanged; the transition time kept while the status holds. */
export function setCondition(status: DeploymentStatus, condition: DeploymentCondition): void {
  const current = conditionOf(status, condition.type)
  if (current !== undefined && current.status === condition.status && current.reason === condition.reason) return
  const next = current !== undefined && current.status === condition.status ? { ...condition, lastTransitionTime: current.lastTransitionTime } : condition
  status.conditions = [...(status.conditions ?? []).filter((c) => c.type !== condition.type), next]
}

export function removeCondition(status: DeploymentStatus, type: string): void {
  if (status.conditions === undefined) return
  status.conditions = status.conditions.filter((c) => c.type !== type)
}

export function hasProgressDeadline(d: DeploymentObject): boolean {
  const seconds = d.spec?.progressDeadlineSeconds
  return seconds !== undefined && seconds !== 2147483647
}
