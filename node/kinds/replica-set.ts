// apps/v1 ReplicaSet: a ReplicationController with a set-based selector
// (matchLabels, matchExpressions), which must be given, must select the
// template's labels and cannot change, as Kubernetes' apps/v1 validation has it.
import type { LabelSelector } from '../api/label-selectors.js'
import { jsonEqual } from '../api/json-values.js'
import { s, type FieldCause } from '../api/schema.js'
import type { KindDefinition } from './kind.js'
import { formatLabelSelector, labelSelectorSchema, templateLabelsCause, validateLabelSelector } from './label-selector.js'
import { topLevel, type ApiObject } from './meta.js'
import { defaultPodTemplate, podTemplateSchema, validatePodSpec } from './pod-spec.js'
import { age } from './printing.js'

interface ReplicaSetView {
  spec?: {
    replicas?: number
    selector?: LabelSelector
    template?: { metadata?: { labels?: Record<string, string> }; spec?: { containers?: { name: string; image?: string }[]; restartPolicy?: string; activeDeadlineSeconds?: number } }
  }
  status?: { replicas?: number; readyReplicas?: number }
}

const view = (o: ApiObject): ReplicaSetView => o as ApiObject & ReplicaSetView

/**
 * The rules of Kubernetes' ValidateReplicaSetSpec and ValidateReplicaSetUpdate the schema cannot
 * say; shared by kinds that carry a selector and a pod template the same way (a Deployment's).
 */
export function validateSelectedTemplate(o: ApiObject, old: ApiObject | null): FieldCause[] {
  const { spec } = view(o)
  const causes = validateLabelSelector(spec?.selector, 'spec.selector')
  causes.push(...templateLabelsCause(spec?.selector, spec?.template?.metadata?.labels, 'spec.template.metadata.labels'))
  const podSpec = spec?.template?.spec
  if (podSpec !== undefined) {
    causes.push(...validatePodSpec(podSpec as Record<string, unknown>, 'spec.template.spec'))
    if (podSpec.restartPolicy !== undefined && podSpec.restartPolicy !== 'Always') {
      causes.push({ reason: 'FieldValueNotSupported', field: 'spec.template.spec.restartPolicy', message: `Unsupported value: ${JSON.stringify(podSpec.restartPolicy)}: supported values: "Always"` })
    }
    if (podSpec.activeDeadlineSeconds !== undefined) causes.push({ reason: 'FieldValueForbidden', field: 'spec.template.spec.activeDeadlineSeconds', message: `Forbidden: activeDeadlineSeconds in ${o.kind} is not Supported` })
  }
  const oldSelector = old === null ? undefined : view(old).spec?.selector
  if (old !== null && !jsonEqual(oldSelector ?? null, spec?.selector ?? null)) {
    causes.push({ reason: 'FieldValueInvalid', field: 'spec.selector', message: `Invalid value: ${JSON.stringify(spec?.selector ?? null)}: field is immutable` })
  }
  return causes
}

const containersOf = (o: ApiObject): { name: string; image?: string }[] => view(o).spec?.template?.spec?.containers ?? []

export const replicaSetKind: KindDefinition = {
  group: 'apps',
  version: 'v1',
  kind: 'ReplicaSet',
  plural: 'replicasets',
  singular: 'replicaset',
  shortNames: ['rs'],
  categories: ['all'],
  namespaced: true,
  nameRule: 'subdomain',
  schema: topLevel({
    spec: s.object({ replicas: s.integer({ minimum: 0 }), minReadySeconds: s.integer({ minimum: 0 }), selector: labelSelectorSchema, template: podTemplateSchema }, ['selector', 'template']),
    status: s.object({ replicas: s.integer(), fullyLabeledReplicas: s.integer(), readyReplicas: s.integer(), availableReplicas: s.integer(), observedGeneration: s.integer(), conditions: s.array(s.any()) }),
  }),
  subresources: { status: true, scale: { specReplicasPath: 'spec.replicas', statusReplicasPath: 'status.replicas', selectorPath: 'spec.selector' } },
  fieldSelectors: ['status.replicas'],
  columns: [
    { name: 'Name', type: 'string', priority: 0, description: 'Name', value: (o) => o.metadata.name ?? '' },
    { name: 'Desired', type: 'integer', priority: 0, description: 'Desired replicas', value: (o) => view(o).spec?.replicas ?? 0 },
    { name: 'Current', type: 'integer', priority: 0, description: 'Current replicas', value: (o) => view(o).status?.replicas ?? 0 },
    { name: 'Ready', type: 'integer', priority: 0, description: 'Ready replicas', value: (o) => view(o).status?.readyReplicas ?? 0 },
    { name: 'Age', type: 'string', priority: 0, description: 'Time since creation', value: (o, c) => age(o.metadata.creationTimestamp, c.nowMs) },
    { name: 'Containers', type: 'string', priority: 1, description: 'Containers', value: (o) => containersOf(o).map((c) => c.name).join(',') },
    { name: 'Images', type: 'string', priority: 1, description: 'Images', value: (o) => containersOf(o).map((c) => c.image ?? '').join(',') },
    { name: 'Selector', type: 'string', priority: 1, description: 'Selector', value: (o) => formatLabelSelector(view(o).spec?.selector) },
  ],
  defaults: (o) => {
    // apps/v1 defaults only the replica count (and the pod spec): no selector or labels from the template.
    const spec = (o.spec ??= {}) as Record<string, unknown>
    spec.replicas ??= 1
    defaultPodTemplate(spec.template as Parameters<typeof defaultPodTemplate>[0])
  },
  validate: validateSelectedTemplate,
  initialStatus: () => ({ replicas: 0 }),
}
