// The loop of Kubernetes 1.x's kubectl rolling-update (pkg/kubectl/rolling_updater.go):
// the new ReplicationController scales up as far as maxSurge allows, then,
// after the update period, the old one scales down as far as the new pods'
// readiness keeps minAvailable pods available; until the new one has the
// desired replicas and the old none. Then cleanup: the old controller is
// deleted, and the new one renamed to the old name (deleted with its pods
// orphaned, created again under the old name, which adopts them), or, for a
// rollback, the abandoned one deleted.
import type { JsonObject } from './manifests.js'
import { resourcePath, type ResourceInfo } from './resources.js'
import type { Session } from './session.js'
import { isNotFound, sleep, updateWithRetries, type WorkloadObject } from './workload.js'

export const sourceIdAnnotation = 'kubectl.kubernetes.io/update-source-id'
export const desiredReplicasAnnotation = 'kubectl.kubernetes.io/desired-replicas'
export const originalReplicasAnnotation = 'kubectl.kubernetes.io/original-replicas'
export const nextControllerAnnotation = 'kubectl.kubernetes.io/next-controller-id'

/** The update could not go on: no progress within --timeout, a controller that is not what it should be. */
export class RollingUpdateError extends Error {
  override readonly name = 'RollingUpdateError'
}

export type ControllerObject = WorkloadObject & { spec?: WorkloadObject['spec'] & { selector?: Record<string, string> } }

export interface UpdaterConfig {
  session: Session
  rcs: ResourceInfo
  pods: ResourceInfo
  namespace: string
  oldRc: ControllerObject
  /** Created with 0 replicas unless it exists (a resumed update, or the old controller in a rollback). */
  newRc: ControllerObject
  updatePeriodMs: number
  pollIntervalMs: number
  timeoutMs: number
  /** Rename: delete the old controller and give the new one its name. Delete: delete the old one only. */
  cleanup: 'rename' | 'delete'
  out: (line: string) => void
}

const replicasOf = (rc: ControllerObject): number => rc.spec?.replicas ?? 1

function rcPath(c: UpdaterConfig, name: string): string {
  return resourcePath(c.rcs, c.namespace, name)
}

/** The existing target controller (checked to come from this update), or the new one created with 0 replicas. */
async function targetController(c: UpdaterConfig, sourceId: string): Promise<{ rc: ControllerObject; existed: boolean }> {
  try {
    const existing = await c.session.json<ControllerObject>(rcPath(c, c.newRc.metadata.name))
    const annotations = existing.metadata.annotations ?? {}
    if (annotations[sourceIdAnnotation] !== sourceId || annotations[desiredReplicasAnnotation] === undefined) {
      throw new RollingUpdateError(`Missing/unexpected annotations for controller ${existing.metadata.name}, expected ${sourceId} : ${JSON.stringify(annotations)}`)
    }
    return { rc: existing, existed: true }
  } catch (err) {
    if (!isNotFound(err)) throw err
  }
  const desired = replicasOf(c.newRc)
  if (desired <= 0) throw new RollingUpdateError(`Invalid controller spec for ${c.newRc.metadata.name}; required: > 0 replicas, actual: ${desired}`)
  const body = structuredClone(c.newRc)
  body.metadata.annotations = { ...body.metadata.annotations, [desiredReplicasAnnotation]: String(desired), [sourceIdAnnotation]: sourceId }
  body.spec = { ...body.spec, replicas: 0 }
  return { rc: await c.session.json<ControllerObject>(resourcePath(c.rcs, c.namespace), { method: 'POST', body }), existed: false }
}

/** Sets the replicas, then waits (polling) until the controller reports them. */
async function scaleAndWait(c: UpdaterConfig, rc: ControllerObject, replicas: number): Promise<ControllerObject> {
  const path = rcPath(c, rc.metadata.name)
  await updateWithRetries<ControllerObject>(c.session, path, (o) => {
    o.spec = { ...o.spec, replicas }
  })
  const deadline = Date.now() + c.timeoutMs
  for (;;) {
    const current = await c.session.json<ControllerObject>(path)
    const status = (current.status ?? {}) as { replicas?: number; observedGeneration?: number }
    if ((status.observedGeneration ?? 0) >= (current.metadata.generation ?? 0) && (status.replicas ?? 0) === replicas) return current
    if (Date.now() > deadline) throw new RollingUpdateError(`timed out waiting for ${rc.metadata.name} to have ${replicas} replicas`)
    await sleep(c.pollIntervalMs)
  }
}

/** Pods the controller's selector picks that are not being deleted and have been Ready for minReadySeconds. */
export async function availablePods(c: UpdaterConfig, rc: ControllerObject, nowMs: number): Promise<number> {
  const selector = Object.entries(rc.spec?.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',')
  const list = await c.session.json<{ items?: JsonObject[] }>(resourcePath(c.pods, c.namespace), { query: { labelSelector: selector } })
  const minReadyMs = (rc.spec?.minReadySeconds ?? 0) * 1000
  let available = 0
  for (const pod of list.items ?? []) {
    if ((pod.metadata as { deletionTimestamp?: string }).deletionTimestamp !== undefined) continue
    const ready = ((pod.status as { conditions?: { type: string; status: string; lastTransitionTime?: string }[] } | undefined)?.conditions ?? []).find((x) => x.type === 'Ready')
    if (ready?.status !== 'True') continue
    if (minReadyMs > 0 && Date.parse(ready.lastTransitionTime ?? '') + minReadyMs > nowMs) continue
    available++
  }
  return available
}

interface Bounds {
  desired: number
  maxSurge: number
  minAvailable: number
}

async function scaleUp(c: UpdaterConfig, newRc: ControllerObject, oldRc: ControllerObject, b: Bounds): Promise<ControllerObject> {
  if (replicasOf(newRc) === b.desired) return newRc
  const increment = replicasOf(oldRc) === 0 ? b.desired - replicasOf(newRc) : b.desired + b.maxSurge - (replicasOf(oldRc) + replicasOf(newRc))
  if (increment <= 0) return newRc
  const target = Math.min(b.desired, replicasOf(newRc) + increment)
  c.out(`Scaling ${newRc.metadata.name} up to ${target}`)
  return scaleAndWait(c, newRc, target)
}

async function scaleDown(c: UpdaterConfig, newRc: ControllerObject, oldRc: ControllerObject, b: Bounds): Promise<ControllerObject> {
  if (replicasOf(oldRc) === 0) return oldRc
  const newAvailable = await availablePods(c, newRc, Date.now())
  // The old controller counts in the total so availability holds even while its pods come and go.
  const decrement = replicasOf(oldRc) + replicasOf(newRc) - b.minAvailable - (replicasOf(newRc) - newAvailable)
  if (decrement <= 0) return oldRc
  let target = Math.max(0, replicasOf(oldRc) - decrement)
  if (replicasOf(newRc) === b.desired && newAvailable === b.desired) target = 0
  c.out(`Scaling ${oldRc.metadata.name} down to ${target}`)
  return scaleAndWait(c, oldRc, target)
}

/** kubectl's RollingUpdater.Update, with maxUnavailable 0 and maxSurge 1 as kubectl rolling-update used them. */
export async function runRollingUpdate(c: UpdaterConfig): Promise<void> {
  let oldRc = c.oldRc
  const { rc: created, existed } = await targetController(c, `${oldRc.metadata.name}:${oldRc.metadata.uid ?? ''}`)
  let newRc = created
  c.out(existed ? `Continuing update with existing controller ${newRc.metadata.name}.` : `Created ${newRc.metadata.name}`)
  const desired = Number(newRc.metadata.annotations?.[desiredReplicasAnnotation])
  if (!Number.isInteger(desired)) throw new RollingUpdateError(`Unable to parse annotation for ${newRc.metadata.name}: ${desiredReplicasAnnotation}=${newRc.metadata.annotations?.[desiredReplicasAnnotation]}`)
  if (oldRc.metadata.annotations?.[originalReplicasAnnotation] === undefined) {
    oldRc = await updateWithRetries<ControllerObject>(c.session, rcPath(c, oldRc.metadata.name), (o) => {
      o.metadata.annotations = { ...o.metadata.annotations, [originalReplicasAnnotation]: String(replicasOf(o)) }
    })
  }
  const bounds: Bounds = desired === 0 ? { desired, maxSurge: 1, minAvailable: 0 } : { desired, maxSurge: 1, minAvailable: desired }
  c.out(`Scaling up ${newRc.metadata.name} from ${replicasOf(newRc)} to ${desired}, scaling down ${oldRc.metadata.name} from ${replicasOf(oldRc)} to 0 (keep ${bounds.minAvailable} pods available, don't exceed ${desired + bounds.maxSurge} pods)`)
  let progressDeadline = Date.now() + c.timeoutMs
  while (replicasOf(newRc) !== desired || replicasOf(oldRc) !== 0) {
    const [newBefore, oldBefore] = [replicasOf(newRc), replicasOf(oldRc)]
    newRc = await scaleUp(c, newRc, oldRc, bounds)
    await sleep(c.updatePeriodMs)
    oldRc = await scaleDown(c, newRc, oldRc, bounds)
    if (replicasOf(newRc) !== newBefore || replicasOf(oldRc) !== oldBefore) progressDeadline = Date.now() + c.timeoutMs
    else if (Date.now() > progressDeadline) throw new RollingUpdateError('timed out waiting for any update progress to be made')
  }
  await cleanup(c, oldRc, newRc)
}

async function cleanup(c: UpdaterConfig, oldRc: ControllerObject, newRc: ControllerObject): Promise<void> {
  newRc = await updateWithRetries<ControllerObject>(c.session, rcPath(c, newRc.metadata.name), (o) => {
    const annotations = { ...o.metadata.annotations }
    delete annotations[sourceIdAnnotation]
    delete annotations[desiredReplicasAnnotation]
    o.metadata.annotations = annotations
  })
  newRc = await scaleAndWait(c, newRc, replicasOf(newRc))
  const remove = (name: string, propagationPolicy: string): Promise<unknown> => c.session.json(rcPath(c, name), { method: 'DELETE', body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy } })
  if (c.cleanup === 'delete') {
    c.out(`Update succeeded. Deleting ${oldRc.metadata.name}`)
    await remove(oldRc.metadata.name, 'Background')
    return
  }
  c.out(`Update succeeded. Deleting old controller: ${oldRc.metadata.name}`)
  await remove(oldRc.metadata.name, 'Background')
  c.out(`Renaming ${newRc.metadata.name} to ${oldRc.metadata.name}`)
  // Its pods become orphans for a moment; the controller created under the old name adopts them, so none restarts.
  await remove(newRc.metadata.name, 'Orphan')
  const renamed = structuredClone(newRc)
  renamed.metadata = { name: oldRc.metadata.name, namespace: c.namespace, ...(newRc.metadata.labels === undefined ? {} : { labels: newRc.metadata.labels }), ...(newRc.metadata.annotations === undefined ? {} : { annotations: newRc.metadata.annotations }) }
  delete renamed.status
  await c.session.json(resourcePath(c.rcs, c.namespace), { method: 'POST', body: renamed })
}
