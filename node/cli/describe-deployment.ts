// shoal describe deployment, laid out as kubectl's deployment describer, and
// the pod template view that `rollout history --revision` prints too.
import type { LabelSelector } from '../api/label-selectors.js'
import { formatLabelSelector } from '../kinds/label-selector.js'
import { describeTime, metaOf, writeEvents, type DescribeContext, type DescribeWriter } from './describe-common.js'
import { tolerationsText, writeContainers, writeList, writeVolumes, type PodSpec } from './describe-kinds.js'
import { replicaSetsOf } from './deployment-replica-sets.js'
import type { JsonObject } from './manifests.js'
import type { PodTemplate, WorkloadObject } from './workload.js'

/** kubectl's DescribePodTemplate. */
export function writePodTemplate(w: DescribeWriter, template: PodTemplate | undefined): void {
  w.line(0, 'Pod Template:')
  w.map(1, 'Labels', template?.metadata?.labels)
  if (template?.metadata?.annotations !== undefined) w.map(1, 'Annotations', template.metadata.annotations, ': ')
  const podSpec = (template?.spec ?? {}) as PodSpec
  if ((podSpec.initContainers ?? []).length > 0) {
    w.line(1, 'Init Containers:')
    writeContainers(w, podSpec.initContainers!, null, true)
  }
  writeContainers(w, podSpec.containers ?? [], null, true)
  writeVolumes(w, 1, podSpec.volumes)
  w.map(1, 'Node-Selectors', podSpec.nodeSelector)
  writeList(w, 1, 'Tolerations', tolerationsText(podSpec))
}

interface DeploymentStatusView {
  replicas?: number
  updatedReplicas?: number
  availableReplicas?: number
  unavailableReplicas?: number
  conditions?: { type: string; status: string; reason?: string }[]
}

interface DeploymentSpecView {
  replicas?: number
  selector?: LabelSelector
  strategy?: { type?: string; rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string } }
  minReadySeconds?: number
  paused?: boolean
}

const replicaSetText = (rs: WorkloadObject): string => `${rs.metadata.name} (${(rs.status as { replicas?: number } | undefined)?.replicas ?? 0}/${rs.spec?.replicas ?? 1} replicas created)`

/** A function declaration, so describe-kinds.ts can list it whichever module loads first. */
export async function describeDeployment(ctx: DescribeContext, o: JsonObject): Promise<void> {
  const { w } = ctx
  const spec = (o.spec ?? {}) as DeploymentSpecView
  const status = (o.status ?? {}) as DeploymentStatusView
  const meta = metaOf(o)
  w.line(0, 'Name:', meta.name)
  w.line(0, 'Namespace:', meta.namespace)
  w.line(0, 'CreationTimestamp:', describeTime(meta.creationTimestamp))
  w.map(0, 'Labels', meta.labels)
  w.map(0, 'Annotations', meta.annotations, ': ')
  w.line(0, 'Selector:', formatLabelSelector(spec.selector))
  w.line(0, 'Replicas:', `${spec.replicas ?? 1} desired | ${status.updatedReplicas ?? 0} updated | ${status.replicas ?? 0} total | ${status.availableReplicas ?? 0} available | ${status.unavailableReplicas ?? 0} unavailable`)
  w.line(0, 'StrategyType:', spec.strategy?.type ?? 'RollingUpdate')
  w.line(0, 'MinReadySeconds:', spec.minReadySeconds ?? 0)
  const rolling = spec.strategy?.rollingUpdate
  if (rolling !== undefined) w.line(0, 'RollingUpdateStrategy:', `${rolling.maxUnavailable ?? '25%'} max unavailable, ${rolling.maxSurge ?? '25%'} max surge`)
  writePodTemplate(w, (o.spec as { template?: PodTemplate } | undefined)?.template)
  if ((status.conditions ?? []).length > 0) {
    w.line(0, 'Conditions:')
    w.line(1, 'Type', 'Status', 'Reason')
    w.line(1, '----', '------', '------')
    for (const c of status.conditions!) w.line(1, `${c.type} `, c.status, c.reason ?? '')
  }
  const sets = await replicaSetsOf(ctx.session, o as WorkloadObject)
  if (sets.oldReplicaSets.length > 0 || sets.newReplicaSet !== undefined) {
    w.line(0, 'OldReplicaSets:', sets.oldReplicaSets.length === 0 ? '<none>' : sets.oldReplicaSets.map(replicaSetText).join(', '))
    w.line(0, 'NewReplicaSet:', sets.newReplicaSet === undefined ? '<none>' : replicaSetText(sets.newReplicaSet))
  }
  await writeEvents(ctx, o)
}
