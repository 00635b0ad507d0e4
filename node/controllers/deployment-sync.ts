// One round of one Deployment, as Kubernetes' deployment controller runs a
// sync (pkg/controller/deployment: sync.go, rolling.go, recreate.go): find or
// make the ReplicaSet of the current template and keep revisions, then scale
// (a scaling event or a paused deployment), roll (RollingUpdate), or recreate.
// Everything is decided on in-memory copies of the ReplicaSets; the changed
// ones are written together afterwards (deployment-plan.ts). Pure.
import { isActivePod, isPodAvailable, isPodReady, type PodObject } from './replication.js'
import {
  byCreation,
  byRevision,
  conditionOf,
  desiredReplicasAnnotation,
  equalIgnoreHash,
  hasProgressDeadline,
  intAnnotation,
  isRollingUpdate,
  maxReplicasAnnotation,
  maxSurge,
  maxUnavailable,
  newCondition,
  podTemplateHash,
  podTemplateHashLabel,
  reasons,
  replicasAnnotationsNeedUpdate,
  replicasOf,
  revisionAnnotation,
  revisionOf,
  setCondition,
  setNewReplicaSetAnnotations,
  setReplicasAnnotations,
  type DeploymentObject,
  type DeploymentStatus,
  type ReplicaSetObject,
} from './deployment-util.js'
import { deploymentComplete, isoSeconds, type RsState } from './deployment-status.js'

export interface PlannedEvent {
  type: 'Normal' | 'Warning'
  reason: string
  message: string
  /** The ReplicaSet whose write the event tells of: recorded only once that write succeeds. */
  replicaSet: string
}

/** Pods of one ReplicaSet counted as the rollout counts them. */
export function podCounts(rs: ReplicaSetObject, pods: readonly PodObject[], nowMs: number): RsState['pods'] {
  const counts = { active: 0, ready: 0, available: 0 }
  const minReadySeconds = rs.spec?.minReadySeconds ?? 0
  for (const p of pods) {
    if (!isActivePod(p)) continue
    counts.active++
    if (!isPodReady(p)) continue
    counts.ready++
    if (isPodAvailable(p, minReadySeconds, nowMs)) counts.available++
  }
  return counts
}

const replicas = (s: RsState): number => replicasOf(s.rs)
const total = (states: readonly RsState[]): number => states.reduce((n, s) => n + replicas(s), 0)
const active = (states: readonly RsState[]): RsState[] => states.filter((s) => replicas(s) > 0)
/**
 * Available pods that stay available: never more than the replicas the ReplicaSet is scaled to. A
 * ReplicaSet just scaled down still has the pods it is about to delete; counting them would let the
 * next round take down more than maxUnavailable allows (the status a round reads may trail its writes).
 */
const availableKept = (s: RsState): number => Math.min(s.pods.available, replicas(s))

export class DeploymentSync {
  readonly events: PlannedEvent[] = []
  /** The status as this round changes it (conditions, collisionCount) before counting. */
  readonly working: DeploymentStatus
  /** A pod-template-hash collision: this round only records it (collisionCount) and stops. */
  collided = false
  private readonly nowIso: string

  constructor(
    /** A copy of the deployment; its annotations are changed in place (the revision). */
    readonly d: DeploymentObject,
    readonly states: RsState[],
    /** Every ReplicaSet name taken in the namespace (a new one must not collide). */
    private readonly namesTaken: ReadonlyMap<string, ReplicaSetObject>,
    private readonly nowMs: number,
  ) {
    this.working = structuredClone(d.status ?? {})
    this.nowIso = isoSeconds(nowMs)
  }

  /** Kubernetes' FindNewReplicaSet: the oldest ReplicaSet whose template is the deployment's. */
  findNew(): RsState | undefined {
    return [...this.states].sort((a, b) => byCreation(a.rs, b.rs)).find((s) => equalIgnoreHash(s.rs.spec?.template, this.d.spec?.template))
  }

  /** Kubernetes' getAllReplicaSetsAndSyncRevision: the new ReplicaSet (made when `create`), the old ones, revisions synced. */
  getAll(create: boolean): { newRS: RsState | undefined; olds: RsState[] } {
    const existing = this.findNew()
    const olds = this.states.filter((s) => s !== existing)
    const newRevision = Math.max(0, ...olds.map((s) => revisionOf(s.rs))) + 1
    if (existing !== undefined) {
      const rs = existing.rs
      const annotated = setNewReplicaSetAnnotations(this.d, rs, newRevision, true)
      if (annotated || (rs.spec?.minReadySeconds ?? 0) !== (this.d.spec?.minReadySeconds ?? 0)) {
        rs.spec = { ...rs.spec, minReadySeconds: this.d.spec?.minReadySeconds ?? 0 }
        existing.dirty = true
      }
      this.setRevision(rs.metadata.annotations?.[revisionAnnotation] ?? '')
      if (hasProgressDeadline(this.d) && conditionOf(this.working, 'Progressing') === undefined) {
        setCondition(this.working, newCondition('Progressing', 'True', reasons.foundNewReplicaSet, `Found new replica set ${JSON.stringify(rs.metadata.name ?? '')}`, this.nowIso))
      }
      return { newRS: existing, olds }
    }
    if (!create || this.collided) return { newRS: undefined, olds }
    const created = this.newReplicaSet(olds, newRevision)
    if (created === undefined) return { newRS: undefined, olds }
    this.states.push(created)
    if (replicas(created) > 0) this.tell(created, `Scaled up replica set ${created.rs.metadata.name} to ${replicas(created)}`)
    this.setRevision(String(newRevision))
    if (hasProgressDeadline(this.d)) {
      setCondition(this.working, newCondition('Progressing', 'True', reasons.newReplicaSetCreated, `Created new replica set ${JSON.stringify(created.rs.metadata.name ?? '')}`, this.nowIso))
    }
    return { newRS: created, olds }
  }

  /** The ReplicaSet of the current template, named DEPLOYMENT-HASH; undefined on a hash collision (counted in collisionCount). */
  private newReplicaSet(olds: RsState[], revision: number): RsState | undefined {
    const d = this.d
    const hash = podTemplateHash(d.spec?.template, this.working.collisionCount)
    const name = `${d.metadata.name}-${hash}`
    if (this.namesTaken.has(name)) {
      // Another object has the name (not ours, or not this template): Kubernetes' collision handling.
      this.working.collisionCount = (this.working.collisionCount ?? 0) + 1
      this.collided = true
      return undefined
    }
    const template = structuredClone(d.spec?.template ?? {})
    const labels = { ...(template.metadata?.labels ?? {}), [podTemplateHashLabel]: hash }
    template.metadata = { ...template.metadata, labels }
    const selector = d.spec?.selector ?? {}
    const rs: ReplicaSetObject = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name,
        ...(d.metadata.namespace === undefined ? {} : { namespace: d.metadata.namespace }),
        labels: { ...labels },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name ?? '', uid: d.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }],
        creationTimestamp: this.nowIso,
      },
      spec: {
        replicas: 0,
        minReadySeconds: d.spec?.minReadySeconds ?? 0,
        selector: { ...selector, matchLabels: { ...(selector.matchLabels ?? {}), [podTemplateHashLabel]: hash } },
        template,
      },
    }
    const state: RsState = { rs, stored: null, dirty: true, pods: { active: 0, ready: 0, available: 0 } }
    rs.spec!.replicas = this.newRSNewReplicas([...olds, state], state)
    setNewReplicaSetAnnotations(d, rs, revision, false)
    return state
  }

  private setRevision(revision: string): void {
    const annotations = (this.d.metadata.annotations ??= {})
    if (annotations[revisionAnnotation] !== revision) annotations[revisionAnnotation] = revision
  }

  /** Kubernetes' NewRSNewReplicas: up to maxSurge above the desired count (all at once when recreating). */
  newRSNewReplicas(all: readonly RsState[], newRS: RsState): number {
    const want = replicasOf(this.d)
    if (!isRollingUpdate(this.d)) return want
    const maxTotal = want + maxSurge(this.d)
    const current = total(all)
    if (current >= maxTotal) return replicas(newRS)
    return replicas(newRS) + Math.min(maxTotal - current, want - replicas(newRS))
  }

  private tell(s: RsState, message: string): void {
    this.events.push({ type: 'Normal', reason: 'ScalingReplicaSet', message, replicaSet: s.rs.metadata.name ?? '' })
  }

  /** Kubernetes' scaleReplicaSet: the new size and the replica annotations; true when the size changed. */
  scaleTo(s: RsState, newScale: number): boolean {
    const oldScale = replicas(s)
    const sizeChanged = oldScale !== newScale
    const desired = replicasOf(this.d)
    const max = desired + maxSurge(this.d)
    if (!sizeChanged && !replicasAnnotationsNeedUpdate(s.rs, desired, max)) return false
    s.rs.spec = { ...s.rs.spec, replicas: newScale }
    setReplicasAnnotations(s.rs, desired, max)
    s.dirty = true
    if (sizeChanged) this.tell(s, `Scaled ${newScale > oldScale ? 'up' : 'down'} replica set ${s.rs.metadata.name} to ${newScale} from ${oldScale}`)
    return sizeChanged
  }

  /** Kubernetes' scaleReplicaSetAndRecordEvent: nothing when the size is already right. */
  private scaleIfNeeded(s: RsState, newScale: number): boolean {
    return replicas(s) === newScale ? false : this.scaleTo(s, newScale)
  }

  /** Kubernetes' isScalingEvent: an active ReplicaSet was sized for another desired count. */
  isScalingEvent(): boolean {
    const { newRS, olds } = this.getAll(false)
    const all = newRS === undefined ? olds : [...olds, newRS]
    return active(all).some((s) => {
      const desired = intAnnotation(s.rs, desiredReplicasAnnotation)
      return desired !== undefined && desired !== replicasOf(this.d)
    })
  }

  /** Kubernetes' scale: the whole count on the one active ReplicaSet, or proportionally over all while rolling. */
  scale(newRS: RsState | undefined, olds: RsState[]): void {
    const want = replicasOf(this.d)
    const all = newRS === undefined ? olds : [...olds, newRS]
    const live = active(all)
    const only = live.length === 1 ? live[0] : live.length === 0 ? (newRS ?? [...olds].sort((a, b) => byCreation(b.rs, a.rs))[0]) : undefined
    if (only !== undefined) {
      if (replicas(only) !== want) this.scaleIfNeeded(only, want)
      return
    }
    if (newRS !== undefined && this.saturated(newRS)) {
      for (const old of active(olds)) this.scaleIfNeeded(old, 0)
      return
    }
    if (!isRollingUpdate(this.d) || live.length === 0) return
    const allowed = want > 0 ? want + maxSurge(this.d) : 0
    const toAdd = allowed - total(live)
    // Larger first; among equals, newer first when adding and older first when removing.
    live.sort((a, b) => replicas(b) - replicas(a) || (toAdd > 0 ? byCreation(b.rs, a.rs) : byCreation(a.rs, b.rs)))
    const sizes = new Map<RsState, number>()
    let added = 0
    for (const s of live) {
      const proportion = toAdd === 0 ? 0 : this.proportion(s, toAdd, added)
      sizes.set(s, replicas(s) + proportion)
      added += proportion
    }
    live.forEach((s, k) => {
      // The leftover goes to the largest.
      if (k === 0 && toAdd !== 0) sizes.set(s, Math.max(0, sizes.get(s)! + toAdd - added))
      this.scaleTo(s, sizes.get(s)!)
    })
  }

  /** Kubernetes' GetProportion and getReplicaSetFraction. */
  private proportion(s: RsState, toAdd: number, added: number): number {
    if (replicas(s) === 0 || toAdd === added) return 0
    const want = replicasOf(this.d)
    let fraction: number
    if (want === 0) fraction = -replicas(s)
    else {
      const annotated = intAnnotation(s.rs, maxReplicasAnnotation) ?? this.d.status?.replicas ?? 0
      const size = annotated === 0 ? replicas(s) : (replicas(s) * (want + maxSurge(this.d))) / annotated
      fraction = Math.sign(size) * Math.round(Math.abs(size)) - replicas(s)
    }
    const allowed = toAdd - added
    return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed)
  }

  /** Kubernetes' IsSaturated: the new ReplicaSet holds every replica, all available. */
  private saturated(s: RsState): boolean {
    const want = replicasOf(this.d)
    return intAnnotation(s.rs, desiredReplicasAnnotation) === want && replicas(s) === want && s.pods.available === want
  }

  /** Kubernetes' rolloutRolling, up to the status: scale the new ReplicaSet up, else the old ones down, else clean up. */
  rollRolling(): { newRS: RsState | undefined; olds: RsState[] } {
    const { newRS, olds } = this.getAll(true)
    if (newRS === undefined) return { newRS, olds }
    const all = [...olds, newRS]
    if (this.reconcileNew(all, newRS)) return { newRS, olds }
    if (this.reconcileOlds(all, active(olds), newRS)) return { newRS, olds }
    if (deploymentComplete(this.d, this.d.status ?? {})) this.cleanup(olds)
    return { newRS, olds }
  }

  /** Kubernetes' reconcileNewReplicaSet. */
  private reconcileNew(all: RsState[], newRS: RsState): boolean {
    const want = replicasOf(this.d)
    if (replicas(newRS) === want) return false
    if (replicas(newRS) > want) return this.scaleIfNeeded(newRS, want)
    return this.scaleIfNeeded(newRS, this.newRSNewReplicas(all, newRS))
  }

  /** Kubernetes' reconcileOldReplicaSets: scale old ones down as far as maxUnavailable allows, counting available pods. */
  private reconcileOlds(all: RsState[], olds: RsState[], newRS: RsState): boolean {
    if (total(olds) === 0) return false
    const minAvailable = replicasOf(this.d) - maxUnavailable(this.d)
    const newUnavailable = replicas(newRS) - availableKept(newRS)
    const maxScaledDown = total(all) - minAvailable - newUnavailable
    if (maxScaledDown <= 0) return false
    // Unhealthy replicas of old ReplicaSets go first: taking them down costs no availability.
    let cleaned = 0
    for (const s of [...olds].sort((a, b) => byCreation(a.rs, b.rs))) {
      if (cleaned >= maxScaledDown) break
      if (replicas(s) === 0 || replicas(s) === availableKept(s)) continue
      const down = Math.min(maxScaledDown - cleaned, replicas(s) - availableKept(s))
      this.scaleIfNeeded(s, replicas(s) - down)
      cleaned += down
    }
    // Then available ones, down to minAvailable.
    const available = all.reduce((n, s) => n + availableKept(s), 0)
    let scaled = 0
    if (available > minAvailable) {
      const budget = available - minAvailable
      for (const s of [...olds].sort((a, b) => byCreation(a.rs, b.rs))) {
        if (scaled >= budget) break
        if (replicas(s) === 0) continue
        const down = Math.min(replicas(s), budget - scaled)
        this.scaleIfNeeded(s, replicas(s) - down)
        scaled += down
      }
    }
    return cleaned + scaled > 0
  }

  /** Kubernetes' rolloutRecreate: old ReplicaSets to zero, wait for their pods to go, then the new one at full size. */
  rollRecreate(oldPodsRunning: (newRS: RsState | undefined) => boolean): { newRS: RsState | undefined; olds: RsState[] } {
    let { newRS, olds } = this.getAll(false)
    let scaledDown = false
    for (const s of active(olds)) if (this.scaleIfNeeded(s, 0)) scaledDown = true
    if (scaledDown || oldPodsRunning(newRS)) return { newRS, olds }
    if (newRS === undefined) ({ newRS, olds } = this.getAll(true))
    if (newRS === undefined) return { newRS, olds }
    this.reconcileNew([...olds, newRS], newRS)
    if (deploymentComplete(this.d, this.d.status ?? {})) this.cleanup(olds)
    return { newRS, olds }
  }

  /** Kubernetes' checkPausedConditions: Progressing Unknown while paused, and again once resumed. */
  checkPaused(): void {
    if (!hasProgressDeadline(this.d)) return
    const condition = conditionOf(this.working, 'Progressing')
    if (condition?.reason === reasons.progressDeadlineExceeded) return
    const pausedNoted = condition?.reason === reasons.deploymentPaused
    if (this.d.spec?.paused === true && !pausedNoted) setCondition(this.working, newCondition('Progressing', 'Unknown', reasons.deploymentPaused, 'Deployment is paused', this.nowIso))
    else if (this.d.spec?.paused !== true && pausedNoted) setCondition(this.working, newCondition('Progressing', 'Unknown', reasons.deploymentResumed, 'Deployment is resumed', this.nowIso))
  }

  /** Kubernetes' cleanupDeployment: old ReplicaSets past revisionHistoryLimit, oldest revision first, once they have no pods. */
  cleanup(olds: RsState[]): void {
    const limit = this.d.spec?.revisionHistoryLimit
    if (limit === undefined || limit === 2147483647) return
    const cleanable = olds.filter((s) => s.stored !== null && s.rs.metadata.deletionTimestamp === undefined)
    const excess = cleanable.length - limit
    if (excess <= 0) return
    for (const s of [...cleanable].sort((a, b) => byRevision(a.rs, b.rs)).slice(0, excess)) {
      const settled = (s.rs.status?.observedGeneration ?? 0) >= (s.rs.metadata.generation ?? 0)
      if (replicas(s) !== 0 || s.pods.active !== 0 || s.dirty || !settled) continue
      this.removed.push(s.stored!)
    }
  }

  /** Old ReplicaSets this round deletes. */
  readonly removed: ReplicaSetObject[] = []
}
