// apps/v1 Deployment: a pod template rolled out through ReplicaSets, one per
// version of the template (node/controllers/deployment-*.ts). Schema, defaults
// and validation as Kubernetes' apps/v1 has them; the columns kubectl prints.
import type { LabelSelector } from '../api/label-selectors.js'
import { s, type FieldCause } from '../api/schema.js'
import type { KindDefinition } from './kind.js'
import { formatLabelSelector, labelSelectorSchema } from './label-selector.js'
import { topLevel, type ApiObject } from './meta.js'
import { defaultPodTemplate, podTemplateSchema } from './pod-spec.js'
import { age } from './printing.js'
import { validateSelectedTemplate } from './replica-set.js'

export type IntOrPercent = number | string

export interface RollingUpdateView {
  maxSurge?: IntOrPercent
  maxUnavailable?: IntOrPercent
}

interface DeploymentView {
  spec?: {
    replicas?: number
    selector?: LabelSelector
    template?: { metadata?: { labels?: Record<string, string>; creationTimestamp?: unknown }; spec?: { containers?: { name: string; image?: string }[] } & Record<string, unknown> }
    strategy?: { type?: string; rollingUpdate?: RollingUpdateView }
    minReadySeconds?: number
    revisionHistoryLimit?: number
    progressDeadlineSeconds?: number
  }
  status?: { replicas?: number; updatedReplicas?: number; readyReplicas?: number; availableReplicas?: number }
}

const view = (o: ApiObject): DeploymentView => o as ApiObject & DeploymentView

const condition = s.object({ type: s.string(), status: s.string(), lastUpdateTime: s.string(), lastTransitionTime: s.string(), reason: s.string(), message: s.string() }, ['type', 'status'])

const percentPattern = /^[0-9]+%$/
const percentHint = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"

/** Kubernetes' ValidatePositiveIntOrPercent. */
function intOrPercentCauses(value: IntOrPercent | undefined, field: string): FieldCause[] {
  if (value === undefined) return []
  if (typeof value === 'string') return percentPattern.test(value) ? [] : [{ reason: 'FieldValueInvalid', field, message: `Invalid value: ${JSON.stringify(value)}: ${percentHint}` }]
  return value < 0 ? [{ reason: 'FieldValueInvalid', field, message: `Invalid value: ${value}: must be greater than or equal to 0` }] : []
}

/** The number in a valid int-or-percent (25 for "25%"); NaN when it is not one. */
function intOrPercentValue(value: IntOrPercent | undefined): number {
  if (value === undefined) return Number.NaN
  return typeof value === 'number' ? value : percentPattern.test(value) ? Number(value.slice(0, -1)) : Number.NaN
}

/** Kubernetes' ValidateDeploymentStrategy, ValidateRollingUpdateDeployment and the progress deadline rule. */
function validateDeployment(o: ApiObject, old: ApiObject | null): FieldCause[] {
  const causes = validateSelectedTemplate(o, old)
  const spec = view(o).spec ?? {}
  const strategy = spec.strategy ?? {}
  const path = 'spec.strategy.rollingUpdate'
  if (strategy.type === 'Recreate' && strategy.rollingUpdate !== undefined && strategy.rollingUpdate !== null) {
    causes.push({ reason: 'FieldValueForbidden', field: path, message: "Forbidden: may not be specified when strategy `type` is 'Recreate'" })
  }
  if (strategy.type === 'RollingUpdate') {
    const { maxSurge, maxUnavailable } = strategy.rollingUpdate ?? {}
    causes.push(...intOrPercentCauses(maxUnavailable, `${path}.maxUnavailable`), ...intOrPercentCauses(maxSurge, `${path}.maxSurge`))
    if (intOrPercentValue(maxUnavailable) === 0 && intOrPercentValue(maxSurge) === 0) {
      causes.push({ reason: 'FieldValueInvalid', field: `${path}.maxUnavailable`, message: `Invalid value: ${JSON.stringify(maxUnavailable)}: may not be 0 when \`maxSurge\` is 0` })
    }
    if (typeof maxUnavailable === 'string' && intOrPercentValue(maxUnavailable) > 100) {
      causes.push({ reason: 'FieldValueInvalid', field: `${path}.maxUnavailable`, message: `Invalid value: ${JSON.stringify(maxUnavailable)}: must not be greater than 100%` })
    }
  }
  if (spec.progressDeadlineSeconds !== undefined && spec.progressDeadlineSeconds <= (spec.minReadySeconds ?? 0)) {
    causes.push({ reason: 'FieldValueInvalid', field: 'spec.progressDeadlineSeconds', message: `Invalid value: ${spec.progressDeadlineSeconds}: must be greater than minReadySeconds` })
  }
  return causes
}

/** Kubernetes' SetDefaults_Deployment (apps/v1). Mutates. */
function defaultDeployment(o: ApiObject): void {
  const spec = ((o.spec ??= {}) as NonNullable<DeploymentView['spec']>)
  spec.replicas ??= 1
  const strategy = (spec.strategy ??= {})
  strategy.type ??= 'RollingUpdate'
  if (strategy.type === 'RollingUpdate') {
    const rolling = (strategy.rollingUpdate ??= {})
    rolling.maxUnavailable ??= '25%'
    rolling.maxSurge ??= '25%'
  }
  spec.revisionHistoryLimit ??= 10
  spec.progressDeadlineSeconds ??= 600
  defaultPodTemplate(spec.template)
}

const containersOf = (o: ApiObject): { name: string; image?: string }[] => view(o).spec?.template?.spec?.containers ?? []

export const deploymentKind: KindDefinition = {
  group: 'apps',
  version: 'v1',
  kind: 'Deployment',
  plural: 'deployments',
  singular: 'deployment',
  shortNames: ['deploy'],
  categories: ['all'],
  namespaced: true,
  nameRule: 'subdomain',
  schema: topLevel({
    spec: s.object(
      {
        replicas: s.integer({ minimum: 0 }),
        selector: labelSelectorSchema,
        template: podTemplateSchema,
        strategy: s.object({ type: s.string({ enum: ['RollingUpdate', 'Recreate'] }), rollingUpdate: s.object({ maxSurge: s.intOrString(), maxUnavailable: s.intOrString() }) }),
        minReadySeconds: s.integer({ minimum: 0 }),
        revisionHistoryLimit: s.integer({ minimum: 0 }),
        progressDeadlineSeconds: s.integer({ minimum: 0 }),
        paused: s.boolean(),
      },
      ['selector', 'template'],
    ),
    status: s.object({
      observedGeneration: s.integer(),
      replicas: s.integer(),
      updatedReplicas: s.integer(),
      readyReplicas: s.integer(),
      availableReplicas: s.integer(),
      unavailableReplicas: s.integer(),
      terminatingReplicas: s.integer(),
      conditions: s.array(condition),
      collisionCount: s.integer(),
    }),
  }),
  subresources: { status: true, scale: { specReplicasPath: 'spec.replicas', statusReplicasPath: 'status.replicas', selectorPath: 'spec.selector' } },
  fieldSelectors: [],
  columns: [
    { name: 'Name', type: 'string', priority: 0, description: 'Name', value: (o) => o.metadata.name ?? '' },
    { name: 'Ready', type: 'string', priority: 0, description: 'Ready replicas of desired replicas', value: (o) => `${view(o).status?.readyReplicas ?? 0}/${view(o).spec?.replicas ?? 0}` },
    { name: 'Up-to-date', type: 'integer', priority: 0, description: 'Replicas of the current template', value: (o) => view(o).status?.updatedReplicas ?? 0 },
    { name: 'Available', type: 'integer', priority: 0, description: 'Available replicas', value: (o) => view(o).status?.availableReplicas ?? 0 },
    { name: 'Age', type: 'string', priority: 0, description: 'Time since creation', value: (o, c) => age(o.metadata.creationTimestamp, c.nowMs) },
    { name: 'Containers', type: 'string', priority: 1, description: 'Containers', value: (o) => containersOf(o).map((c) => c.name).join(',') },
    { name: 'Images', type: 'string', priority: 1, description: 'Images', value: (o) => containersOf(o).map((c) => c.image ?? '').join(',') },
    { name: 'Selector', type: 'string', priority: 1, description: 'Selector', value: (o) => formatLabelSelector(view(o).spec?.selector) },
  ],
  defaults: defaultDeployment,
  validate: validateDeployment,
  initialStatus: () => ({}),
}
