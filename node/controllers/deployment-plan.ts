// What one Deployment needs done this round, decided as Kubernetes'
// syncDeployment decides it: claim its ReplicaSets, then (paused or a scaling
// event) scale proportionally, or roll out (RollingUpdate or Recreate), and
// compute the status. Everything is read from the replicated store each round
// and nothing is remembered between rounds, so a new leader carries on a
// rollout exactly where the old one left it. Pure: deployment-controller.ts
// reads the store and writes what the plan says.
import { jsonEqual } from '../api/json-values.js'
import { matches, nothing, selectorFromLabelSelector, type Selector } from '../api/selectors.js'
import type { ObjectMeta, OwnerReference } from '../kinds/meta.js'
import { controllerRefOf, nextAvailableAtMs, type PodObject } from './replication.js'
import { calculateStatus, isoSeconds, rolloutStatus, type RsState } from './deployment-status.js'
import { DeploymentSync, podCounts, type PlannedEvent } from './deployment-sync.js'
import type { DeploymentObject, DeploymentStatus, ReplicaSetObject } from './deployment-util.js'

export interface DeploymentInput {
  deployment: DeploymentObject
  /** Every ReplicaSet in the deployment's namespace. */
  replicaSets: readonly ReplicaSetObject[]
  /** The pods whose controller is the ReplicaSet with this uid. */
  podsOf: (replicaSetUid: string) => readonly PodObject[]
  nowMs: number
}

export interface DeploymentPlan {
  deployment: DeploymentObject
  /** ReplicaSets to adopt or release: copies to write with their stored resourceVersion. Nothing else is planned in such a round. */
  claims: ReplicaSetObject[]
  /** New ReplicaSets (bodies for the API's create). */
  creates: ReplicaSetObject[]
  /** Changed copies of stored ReplicaSets (scaled, annotated), carrying the stored resourceVersion. */
  updates: ReplicaSetObject[]
  /** Old ReplicaSets past revisionHistoryLimit. */
  deletes: ReplicaSetObject[]
  /** The deployment's annotations when the revision changed them. */
  annotations: Record<string, string> | null
  /** The deployment's status when it differs from the stored one. */
  status: DeploymentStatus | null
  events: PlannedEvent[]
  /** A round is due then: the progress deadline, or a pod becoming available after minReadySeconds. */
  nextRoundAtMs?: number
}

export function deploymentSelector(d: DeploymentObject): Selector {
  try {
    return selectorFromLabelSelector(d.spec?.selector)
  } catch {
    return nothing
  }
}

function ownerReferenceFor(d: DeploymentObject): OwnerReference {
  return { apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name ?? '', uid: d.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }
}

/** Kubernetes' ClaimReplicaSets: owned and matching, matching orphans to adopt, owned that stopped matching to release. */
export function claimReplicaSets(d: DeploymentObject, replicaSets: readonly ReplicaSetObject[]): { owned: ReplicaSetObject[]; adopt: ReplicaSetObject[]; release: ReplicaSetObject[] } {
  const selector = deploymentSelector(d)
  const deleting = d.metadata.deletionTimestamp !== undefined
  const owned: ReplicaSetObject[] = []
  const adopt: ReplicaSetObject[] = []
  const release: ReplicaSetObject[] = []
  for (const rs of replicaSets) {
    if (rs.metadata.namespace !== d.metadata.namespace) continue
    const ref = controllerRefOf(rs)
    const matching = matches(selector, rs.metadata.labels)
    if (ref !== undefined) {
      if (ref.uid !== d.metadata.uid) continue
      if (matching) owned.push(rs)
      else if (!deleting) release.push(withOwners(rs, (rs.metadata.ownerReferences ?? []).filter((r) => r.uid !== d.metadata.uid)))
    } else if (matching && !deleting && rs.metadata.deletionTimestamp === undefined) {
      adopt.push(withOwners(rs, [...(rs.metadata.ownerReferences ?? []), ownerReferenceFor(d)]))
    }
  }
  return { owned, adopt, release }
}

function withOwners(rs: ReplicaSetObject, owners: OwnerReference[]): ReplicaSetObject {
  const metadata: ObjectMeta = { ...rs.metadata, ownerReferences: owners }
  if (owners.length === 0) delete metadata.ownerReferences
  return { ...rs, metadata }
}

/** What `input.deployment` needs done now. */
export function planDeployment(input: DeploymentInput): DeploymentPlan {
  const stored = input.deployment
  const plan: DeploymentPlan = { deployment: stored, claims: [], creates: [], updates: [], deletes: [], annotations: null, status: null, events: [] }
  const { owned, adopt, release } = claimReplicaSets(stored, input.replicaSets)
  if (adopt.length + release.length > 0) {
    // Claims first, alone: the next round (which their writes trigger) plans with the claimed set.
    plan.claims = [...adopt, ...release]
    return plan
  }
  const states: RsState[] = owned.map((rs) => ({ rs: structuredClone(rs), stored: rs, dirty: false, pods: podCounts(rs, input.podsOf(rs.metadata.uid ?? ''), input.nowMs) }))
  const sync = new DeploymentSync(structuredClone(stored), states, new Map(input.replicaSets.map((rs) => [rs.metadata.name ?? '', rs])), input.nowMs)
  const { status, deadlineAtMs } = decide(sync, input)
  if (sync.collided) {
    // Kubernetes records the collision alone, and the next round hashes with the new count.
    plan.status = { ...(stored.status ?? {}), collisionCount: sync.working.collisionCount ?? 0 }
    return plan
  }
  for (const s of sync.states) {
    if (s.stored === null) plan.creates.push(s.rs)
    else if (s.dirty) plan.updates.push(s.rs)
  }
  plan.deletes = sync.removed
  plan.events = sync.events
  if (!jsonEqual(sync.d.metadata.annotations ?? {}, stored.metadata.annotations ?? {})) plan.annotations = sync.d.metadata.annotations ?? {}
  if (!jsonEqual(stored.status ?? {}, status)) plan.status = status
  const wakeUps = [deadlineAtMs, ...owned.map((rs) => nextAvailableAtMs(rs, input.podsOf(rs.metadata.uid ?? ''), input.nowMs))].filter((t): t is number => t !== undefined)
  if (wakeUps.length > 0) plan.nextRoundAtMs = Math.min(...wakeUps)
  return plan
}

/** syncDeployment's choice between status only, sync (paused, scaling), rolling and recreating. */
function decide(sync: DeploymentSync, input: DeploymentInput): { status: DeploymentStatus; deadlineAtMs?: number } {
  const d = sync.d
  const nowIso = isoSeconds(input.nowMs)
  const statusOf = ({ newRS, olds }: { newRS: RsState | undefined; olds: RsState[] }): DeploymentStatus => calculateStatus(d, sync.working, newRS === undefined ? olds : [...olds, newRS], newRS, nowIso)
  if (d.metadata.deletionTimestamp !== undefined) return { status: statusOf(sync.getAll(false)) }
  sync.checkPaused()
  const paused = d.spec?.paused === true
  if (paused || sync.isScalingEvent()) {
    const sets = sync.getAll(false)
    sync.scale(sets.newRS, sets.olds)
    if (paused) sync.cleanup(sets.olds)
    return { status: statusOf(sets) }
  }
  const sets = d.spec?.strategy?.type === 'Recreate' ? sync.rollRecreate((newRS) => oldPodsRunning(sync.states, newRS, input)) : sync.rollRolling()
  return rolloutStatus(d, sync.working, sets.newRS === undefined ? sets.olds : [...sets.olds, sets.newRS], sets.newRS, input.nowMs)
}

/** Kubernetes' oldPodsRunning: any pod of an old ReplicaSet that has not finished (being deleted still counts: it may still run). */
function oldPodsRunning(states: readonly RsState[], newRS: RsState | undefined, input: DeploymentInput): boolean {
  return states.some((s) => s !== newRS && s.stored !== null && input.podsOf(s.rs.metadata.uid ?? '').some((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed'))
}
