// shoal rollout history and undo for Deployments, done client-side as kubectl
// does: revisions come from the ReplicaSets' deployment.kubernetes.io/revision
// annotations, and undo patches the Deployment's template back to the chosen
// ReplicaSet's (without its pod-template-hash label).
import { equalIgnoreHash } from '../controllers/deployment-util.js'
import type { PodTemplateView } from '../controllers/replication.js'
import { DescribeWriter } from './describe-common.js'
import { writePodTemplate } from './describe-deployment.js'
import { changeCauseAnnotation, replicaSetsOf, revisions } from './deployment-replica-sets.js'
import { nameOf } from './object-print.js'
import type { Session } from './session.js'
import { describeStyle, tabwrite } from './table-print.js'
import type { NamedWorkload, PodTemplate, WorkloadObject } from './workload.js'

/** A revision that is not there, a paused Deployment, no history: the command fails with kubectl's words. */
export class RolloutError extends Error {
  override readonly name = 'RolloutError'
}

/** The Deployment annotations undo keeps from the Deployment rather than the ReplicaSet (kubectl's annotationsToSkip). */
const deploymentOwnedAnnotations = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  'deployment.kubernetes.io/revision',
  'deployment.kubernetes.io/revision-history',
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
  'deprecated.deployment.rollback.to',
])

export function requireDeployment(target: NamedWorkload, command: string): void {
  if (target.resource.kind !== 'Deployment') throw new RolloutError(`${command} is implemented for deployments only, not ${target.resource.plural}`)
}

export async function rolloutHistory(session: Session, target: NamedWorkload, revision: number): Promise<void> {
  requireDeployment(target, 'rollout history')
  const deployment = await session.json<WorkloadObject>(target.path)
  const byRevision = revisions(await replicaSetsOf(session, deployment))
  const name = nameOf(target.resource, deployment)
  if (byRevision.size === 0) {
    process.stdout.write(`${name} \nNo rollout history found.\n`)
    return
  }
  if (revision > 0) {
    const rs = byRevision.get(revision)
    if (rs === undefined) throw new RolloutError('unable to find the specified revision')
    const w = new DescribeWriter()
    writePodTemplate(w, rs.spec?.template)
    process.stdout.write(`${name} with revision #${revision}\n${w.toString()}\n`)
    return
  }
  let table = 'REVISION\tCHANGE-CAUSE\n'
  for (const r of [...byRevision.keys()].sort((a, b) => a - b)) {
    const cause = byRevision.get(r)!.metadata.annotations?.[changeCauseAnnotation]
    table += `${r}\t${cause === undefined || cause === '' ? '<none>' : cause}\n`
  }
  process.stdout.write(`${name} \n${tabwrite(table, describeStyle)}\n`)
}

/** kubectl's deploymentRevision: the given revision, or (0) the one before the newest. */
function revisionToRestore(byRevision: Map<number, WorkloadObject>, toRevision: number, deploymentName: string): WorkloadObject {
  if (toRevision > 0) {
    const rs = byRevision.get(toRevision)
    if (rs === undefined) throw new RolloutError(`unable to find specified revision ${toRevision} in history`)
    return rs
  }
  const sorted = [...byRevision.keys()].sort((a, b) => b - a)
  if (sorted.length < 2) throw new RolloutError(`no rollout history found for deployment "${deploymentName}"`)
  return byRevision.get(sorted[1]!)!
}

export async function rolloutUndo(session: Session, target: NamedWorkload, toRevision: number): Promise<void> {
  requireDeployment(target, 'rollout undo')
  if (toRevision < 0) throw new RolloutError(`unable to find specified revision ${toRevision} in history`)
  const deployment = await session.json<WorkloadObject>(target.path)
  const rs = revisionToRestore(revisions(await replicaSetsOf(session, deployment)), toRevision, target.name)
  const name = nameOf(target.resource, deployment)
  if (deployment.spec?.paused === true) throw new RolloutError(`you cannot rollback a paused deployment; resume it first with 'shoal rollout resume deployment/${target.name}' and try again`)
  const template = structuredClone(rs.spec?.template ?? {}) as PodTemplate
  if (equalIgnoreHash(template as PodTemplateView, deployment.spec?.template as PodTemplateView | undefined)) {
    process.stdout.write(`${name} skipped rollback (current template already matches revision)\n`)
    return
  }
  if (template.metadata?.labels !== undefined) delete template.metadata.labels['pod-template-hash']
  const annotations: Record<string, string> = {}
  for (const [k, v] of Object.entries(deployment.metadata.annotations ?? {})) if (deploymentOwnedAnnotations.has(k)) annotations[k] = v
  for (const [k, v] of Object.entries(rs.metadata.annotations ?? {})) if (!deploymentOwnedAnnotations.has(k)) annotations[k] = v
  const patch = [
    { op: 'replace', path: '/spec/template', value: template },
    { op: 'replace', path: '/metadata/annotations', value: annotations },
  ]
  await session.json(target.path, { method: 'PATCH', body: patch, contentType: 'application/json-patch+json' })
  process.stdout.write(`${name} rolled back\n`)
}
