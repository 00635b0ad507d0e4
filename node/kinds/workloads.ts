// core/v1 Pod and ReplicationController.
import { s, type FieldCause } from '../api/schema.js'
import type { KindDefinition } from './kind.js'
import { topLevel, type ApiObject } from './meta.js'
import { qosClassOf, defaultPodSpec, defaultPodTemplate, podSpecSchema, podStatusSchema, podTemplateSchema, validatePodSpec } from './pod-spec.js'
import { age, renderLabelMap } from './printing.js'

interface ContainerStatus {
  name: string
  ready?: boolean
  restartCount?: number
  state?: { waiting?: { reason?: string }; terminated?: { reason?: string; exitCode?: number; signal?: number } }
}

interface PodView {
  spec?: { containers?: { name: string; image?: string }[]; nodeName?: string }
  status?: { phase?: string; reason?: string; podIP?: string; nominatedNodeName?: string; containerStatuses?: ContainerStatus[] }
}

/** kubectl's STATUS column: the most telling reason, as Kubernetes' pod printer computes it. */
export function podStatusText(pod: ApiObject): string {
  const { status } = pod as ApiObject & PodView
  let reason = status?.reason ?? status?.phase ?? 'Pending'
  let running = false
  for (const c of [...(status?.containerStatuses ?? [])].reverse()) {
    if (c.state?.waiting?.reason) reason = c.state.waiting.reason
    else if (c.state?.terminated?.reason) reason = c.state.terminated.reason
    else if (c.state?.terminated) reason = c.state.terminated.signal ? `Signal:${c.state.terminated.signal}` : `ExitCode:${c.state.terminated.exitCode}`
    else if (c.ready) running = true
  }
  if (reason === 'Completed' && running) reason = 'Running'
  if (pod.metadata.deletionTimestamp !== undefined) reason = 'Terminating'
  return reason
}

function readyText(pod: ApiObject): string {
  const { spec, status } = pod as ApiObject & PodView
  const ready = (status?.containerStatuses ?? []).filter((c) => c.ready === true).length
  return `${ready}/${spec?.containers?.length ?? 0}`
}

function restarts(pod: ApiObject): number {
  return ((pod as ApiObject & PodView).status?.containerStatuses ?? []).reduce((sum, c) => sum + (c.restartCount ?? 0), 0)
}

export const podKind: KindDefinition = {
  group: '',
  version: 'v1',
  kind: 'Pod',
  plural: 'pods',
  singular: 'pod',
  shortNames: ['po'],
  categories: ['all'],
  namespaced: true,
  nameRule: 'subdomain',
  schema: topLevel({ spec: podSpecSchema, status: podStatusSchema }),
  subresources: { status: true, log: true },
  fieldSelectors: ['spec.nodeName', 'status.phase', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'status.podIP', 'status.nominatedNodeName'],
  columns: [
    { name: 'Name', type: 'string', priority: 0, description: 'Name of the pod', value: (o) => o.metadata.name ?? '' },
    { name: 'Ready', type: 'string', priority: 0, description: 'Ready containers of all containers', value: readyText },
    { name: 'Status', type: 'string', priority: 0, description: 'The pod status', value: podStatusText },
    { name: 'Restarts', type: 'string', priority: 0, description: 'Container restarts', value: (o) => String(restarts(o)) },
    { name: 'Age', type: 'string', priority: 0, description: 'Time since creation', value: (o, c) => age(o.metadata.creationTimestamp, c.nowMs) },
    { name: 'IP', type: 'string', priority: 1, description: 'The pod IP', value: (o) => (o as ApiObject & PodView).status?.podIP ?? '<none>' },
    { name: 'Node', type: 'string', priority: 1, description: 'The node the pod is bound to', value: (o) => (o as ApiObject & PodView).spec?.nodeName ?? '<none>' },
    { name: 'Nominated Node', type: 'string', priority: 1, description: 'Nominated node', value: (o) => (o as ApiObject & PodView).status?.nominatedNodeName ?? '<none>' },
    { name: 'Readiness Gates', type: 'string', priority: 1, description: 'Readiness gates', value: () => '<none>' },
  ],
  defaults: (o) => defaultPodSpec(((o.spec ??= {}) as Record<string, unknown>)),
  validate: (o) => validatePodSpec((o.spec ?? {}) as Record<string, unknown>, 'spec'),
  initialStatus: (o) => ({ phase: 'Pending', qosClass: qosClassOf((o.spec ?? {}) as Record<string, unknown>) }),
}

interface ReplicationControllerView {
  spec?: { replicas?: number; selector?: Record<string, string>; template?: { metadata?: { labels?: Record<string, string> }; spec?: PodView['spec'] } }
  status?: { replicas?: number; readyReplicas?: number }
}

function validateReplicationController(o: ApiObject): FieldCause[] {
  const { spec } = o as ApiObject & ReplicationControllerView
  const causes: FieldCause[] = []
  const selector = spec?.selector ?? {}
  const labels = spec?.template?.metadata?.labels ?? {}
  if (Object.keys(selector).length === 0) causes.push({ reason: 'FieldValueRequired', field: 'spec.selector', message: 'Required value' })
  for (const [k, v] of Object.entries(selector)) {
    if (labels[k] !== v) {
      causes.push({ reason: 'FieldValueInvalid', field: 'spec.template.metadata.labels', message: `Invalid value: ${JSON.stringify(labels)}: \`selector\` does not match template \`labels\`` })
      break
    }
  }
  if (spec?.template?.spec !== undefined) causes.push(...validatePodSpec(spec.template.spec as Record<string, unknown>, 'spec.template.spec'))
  return causes
}

export const replicationControllerKind: KindDefinition = {
  group: '',
  version: 'v1',
  kind: 'ReplicationController',
  plural: 'replicationcontrollers',
  singular: 'replicationcontroller',
  shortNames: ['rc'],
  categories: ['all'],
  namespaced: true,
  nameRule: 'subdomain',
  schema: topLevel({
    spec: s.object({ replicas: s.integer({ minimum: 0 }), minReadySeconds: s.integer({ minimum: 0 }), selector: s.map(s.string()), template: podTemplateSchema }, ['template']),
    status: s.object({ replicas: s.integer(), fullyLabeledReplicas: s.integer(), readyReplicas: s.integer(), availableReplicas: s.integer(), observedGeneration: s.integer(), conditions: s.array(s.any()) }),
  }),
  subresources: { status: true, scale: { specReplicasPath: 'spec.replicas', statusReplicasPath: 'status.replicas', selectorPath: 'spec.selector' } },
  fieldSelectors: ['status.replicas'],
  columns: [
    { name: 'Name', type: 'string', priority: 0, description: 'Name', value: (o) => o.metadata.name ?? '' },
    { name: 'Desired', type: 'integer', priority: 0, description: 'Desired replicas', value: (o) => (o as ApiObject & ReplicationControllerView).spec?.replicas ?? 0 },
    { name: 'Current', type: 'integer', priority: 0, description: 'Current replicas', value: (o) => (o as ApiObject & ReplicationControllerView).status?.replicas ?? 0 },
    { name: 'Ready', type: 'integer', priority: 0, description: 'Ready replicas', value: (o) => (o as ApiObject & ReplicationControllerView).status?.readyReplicas ?? 0 },
    { name: 'Age', type: 'string', priority: 0, description: 'Time since creation', value: (o, c) => age(o.metadata.creationTimestamp, c.nowMs) },
    { name: 'Containers', type: 'string', priority: 1, description: 'Containers', value: (o) => ((o as ApiObject & ReplicationControllerView).spec?.template?.spec?.containers ?? []).map((c) => c.name).join(',') },
    { name: 'Images', type: 'string', priority: 1, description: 'Images', value: (o) => ((o as ApiObject & ReplicationControllerView).spec?.template?.spec?.containers ?? []).map((c) => c.image ?? '').join(',') },
    { name: 'Selector', type: 'string', priority: 1, description: 'Selector', value: (o) => renderLabelMap((o as ApiObject & ReplicationControllerView).spec?.selector) },
  ],
  defaults: (o) => {
    const spec = ((o.spec ??= {}) as Record<string, unknown>)
    spec.replicas ??= 1
    const template = (spec.template ?? {}) as { metadata?: { labels?: Record<string, string>; creationTimestamp?: unknown }; spec?: Record<string, unknown> }
    // As in Kubernetes: no selector means the template's labels; no labels on the RC means the template's too.
    if (spec.selector === undefined && template.metadata?.labels !== undefined) spec.selector = { ...template.metadata.labels }
    if (o.metadata.labels === undefined && template.metadata?.labels !== undefined) o.metadata.labels = { ...template.metadata.labels }
    defaultPodTemplate(template)
  },
  validate: validateReplicationController,
  initialStatus: () => ({ replicas: 0 }),
}
