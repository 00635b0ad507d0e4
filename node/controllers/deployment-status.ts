// A Deployment's status as Kubernetes' deployment controller computes it
// (sync.go calculateStatus, progress.go syncRolloutStatus): counts over its
// ReplicaSets, the Available condition, and the Progressing condition that
// tells a rollout moving, complete, or stuck past progressDeadlineSeconds.
// Counts come from the pods in the store, not from the ReplicaSets' status:
// they are what the leader sees now, whichever peer it is. Pure.
import {
  conditionOf,
  hasProgressDeadline,
  maxUnavailable,
  newCondition,
  reasons,
  removeCondition,
  replicasOf,
  setCondition,
  type DeploymentObject,
  type DeploymentStatus,
  type ReplicaSetObject,
} from './deployment-util.js'

/** A ReplicaSet of the deployment, as one round sees it: the object (changed in memory by the round) and its pods. */
export interface RsState {
  rs: ReplicaSetObject
  /** The stored object; null for one this round creates. */
  stored: ReplicaSetObject | null
  /** Changed by this round: to be written. */
  dirty: boolean
  /** Its active pods, the ready ones, and those ready for minReadySeconds. */
  pods: { active: number; ready: number; available: number }
}

const sum = (states: readonly RsState[], f: (s: RsState) => number): number => states.reduce((n, s) => n + f(s), 0)

/**
 * Kubernetes' calculateStatus: zeros left out (as its JSON omits them), conditions carried over from
 * `working` (the status the round has been changing), Available set from maxUnavailable.
 */
export function calculateStatus(d: DeploymentObject, working: DeploymentStatus, all: readonly RsState[], newRS: RsState | undefined, nowIso: string): DeploymentStatus {
  const available = sum(all, (s) => s.pods.available)
  const total = sum(all, (s) => replicasOf(s.rs))
  const counts: Omit<DeploymentStatus, 'conditions' | 'collisionCount'> = {
    observedGeneration: d.metadata.generation ?? 0,
    replicas: sum(all, (s) => s.pods.active),
    updatedReplicas: newRS === undefined ? 0 : newRS.pods.active,
    readyReplicas: sum(all, (s) => s.pods.ready),
    availableReplicas: available,
    unavailableReplicas: Math.max(0, total - available),
  }
  const status: DeploymentStatus = {}
  for (const [k, v] of Object.entries(counts) as [keyof typeof counts, number][]) if (v !== 0) status[k] = v
  status.conditions = [...(working.conditions ?? [])]
  if (available >= replicasOf(d) - maxUnavailable(d)) setCondition(status, newCondition('Available', 'True', reasons.minimumReplicasAvailable, 'Deployment has minimum availability.', nowIso))
  else setCondition(status, newCondition('Available', 'False', reasons.minimumReplicasUnavailable, 'Deployment does not have minimum availability.', nowIso))
  if (working.collisionCount !== undefined) status.collisionCount = working.collisionCount
  return status
}

/** Kubernetes' DeploymentComplete: every replica updated and available, none of the old ones left. */
export function deploymentComplete(d: DeploymentObject, status: DeploymentStatus): boolean {
  const want = replicasOf(d)
  return (status.updatedReplicas ?? 0) === want && (status.replicas ?? 0) === want && (status.availableReplicas ?? 0) === want && (status.observedGeneration ?? 0) >= (d.metadata.generation ?? 0)
}

/** Kubernetes' DeploymentProgressing: more updated, fewer old, more ready or more available than the stored status says. */
function deploymentProgressing(old: DeploymentStatus, next: DeploymentStatus): boolean {
  const n = (v: number | undefined): number => v ?? 0
  const oldOld = n(old.replicas) - n(old.updatedReplicas)
  const newOld = n(next.replicas) - n(next.updatedReplicas)
  return n(next.updatedReplicas) > n(old.updatedReplicas) || newOld < oldOld || n(next.readyReplicas) > n(old.readyReplicas) || n(next.availableReplicas) > n(old.availableReplicas)
}

/** Kubernetes' DeploymentTimedOut: no progress noticed for progressDeadlineSeconds since the condition's lastUpdateTime. */
function deploymentTimedOut(d: DeploymentObject, status: DeploymentStatus, nowMs: number): boolean {
  const condition = conditionOf(status, 'Progressing')
  if (!hasProgressDeadline(d) || condition === undefined || condition.reason === reasons.newReplicaSetAvailable) return false
  if (condition.reason === reasons.progressDeadlineExceeded) return true
  return Date.parse(condition.lastUpdateTime) + (d.spec?.progressDeadlineSeconds ?? 0) * 1000 < nowMs
}

export interface RolloutStatus {
  status: DeploymentStatus
  /** When the progress deadline falls due, for a round then (Kubernetes' requeueStuckDeployment). */
  deadlineAtMs?: number
}

/** Kubernetes' syncRolloutStatus: the status with the Progressing condition estimated. */
export function rolloutStatus(d: DeploymentObject, working: DeploymentStatus, all: readonly RsState[], newRS: RsState | undefined, nowMs: number): RolloutStatus {
  const nowIso = isoSeconds(nowMs)
  const status = calculateStatus(d, working, all, newRS, nowIso)
  const stored = d.status ?? {}
  if (!hasProgressDeadline(d)) removeCondition(status, 'Progressing')
  const current = conditionOf(working, 'Progressing')
  const complete = status.replicas === status.updatedReplicas && current?.reason === reasons.newReplicaSetAvailable
  const name = newRS?.rs.metadata.name ?? ''
  if (hasProgressDeadline(d) && !complete) {
    if (deploymentComplete(d, status)) {
      setCondition(status, newCondition('Progressing', 'True', reasons.newReplicaSetAvailable, `ReplicaSet ${JSON.stringify(name)} has successfully progressed.`, nowIso))
    } else if (deploymentProgressing(stored, status)) {
      const message = newRS === undefined ? `Deployment ${JSON.stringify(d.metadata.name ?? '')} is progressing.` : `ReplicaSet ${JSON.stringify(name)} is progressing.`
      const condition = newCondition('Progressing', 'True', reasons.replicaSetUpdated, message, nowIso)
      // Progress moves lastUpdateTime even when the reason stays: that is what the deadline counts from.
      const previous = conditionOf(status, 'Progressing')
      if (previous?.status === 'True') condition.lastTransitionTime = previous.lastTransitionTime
      removeCondition(status, 'Progressing')
      setCondition(status, condition)
    } else if (deploymentTimedOut(d, status, nowMs)) {
      setCondition(status, newCondition('Progressing', 'False', reasons.progressDeadlineExceeded, `ReplicaSet ${JSON.stringify(name)} has timed out progressing.`, nowIso))
    }
  }
  const progressing = conditionOf(status, 'Progressing')
  if (!hasProgressDeadline(d) || progressing === undefined || progressing.reason === reasons.newReplicaSetAvailable || progressing.reason === reasons.progressDeadlineExceeded) return { status }
  return { status, deadlineAtMs: Date.parse(progressing.lastUpdateTime) + (d.spec?.progressDeadlineSeconds ?? 0) * 1000 + 1 }
}

/** Kubernetes' timestamps: RFC 3339 in whole seconds. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z')
}
