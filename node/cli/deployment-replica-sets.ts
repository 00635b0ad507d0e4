// A Deployment's ReplicaSets as kubectl finds them client-side (its
// deploymentutil.GetAllReplicaSets): those its selector picks that it
// controls; the new one is the oldest whose template equals the Deployment's
// once the pod-template-hash label is set aside.
import type { LabelSelector } from '../api/label-selectors.js'
import { byCreation, equalIgnoreHash, revisionOf } from '../controllers/deployment-util.js'
import type { PodTemplateView } from '../controllers/replication.js'
import { formatLabelSelector } from '../kinds/label-selector.js'
import type { ApiObject } from '../kinds/meta.js'
import { resourcePath } from './resources.js'
import type { Session } from './session.js'
import type { WorkloadObject } from './workload.js'

export const changeCauseAnnotation = 'kubernetes.io/change-cause'

export interface DeploymentReplicaSets {
  newReplicaSet: WorkloadObject | undefined
  /** Every other ReplicaSet the Deployment controls, oldest first. */
  oldReplicaSets: WorkloadObject[]
}

const asApiObject = (o: WorkloadObject): ApiObject => o as unknown as ApiObject
const templateView = (o: WorkloadObject): PodTemplateView | undefined => o.spec?.template as PodTemplateView | undefined

export async function replicaSetsOf(session: Session, deployment: WorkloadObject): Promise<DeploymentReplicaSets> {
  const selector = formatLabelSelector(deployment.spec?.selector as LabelSelector | undefined)
  const resource = (await session.resources()).resolve('replicasets.apps')
  const list = await session.json<{ items?: WorkloadObject[] }>(resourcePath(resource, deployment.metadata.namespace), { query: { labelSelector: selector === '<none>' ? undefined : selector } })
  const uid = deployment.metadata.uid
  const owned = (list.items ?? []).filter((rs) => (rs.metadata.ownerReferences ?? []).some((r) => r.controller === true && r.uid === uid))
  owned.sort((a, b) => byCreation(asApiObject(a), asApiObject(b)))
  const newReplicaSet = owned.find((rs) => equalIgnoreHash(templateView(rs), templateView(deployment)))
  return { newReplicaSet, oldReplicaSets: owned.filter((rs) => rs !== newReplicaSet) }
}

/** Every ReplicaSet with its revision (those without a number left out). */
export function revisions(sets: DeploymentReplicaSets): Map<number, WorkloadObject> {
  const byRevision = new Map<number, WorkloadObject>()
  for (const rs of [...sets.oldReplicaSets, ...(sets.newReplicaSet === undefined ? [] : [sets.newReplicaSet])]) {
    const text = rs.metadata.annotations?.['deployment.kubernetes.io/revision']
    if (text === undefined || !/^\d+$/.test(text)) continue
    byRevision.set(revisionOf(asApiObject(rs)), rs)
  }
  return byRevision
}
