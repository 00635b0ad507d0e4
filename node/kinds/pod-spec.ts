// The pod spec and status, shared by Pods and every controller's template.
// Fields Shoal does not act on yet (affinity, security contexts, ...) are
// accepted as free-form, so manifests written for Kubernetes apply as they are.
import { s, type FieldCause, type Schema } from '../api/schema.js'
import { dns1123Label, dns1123LabelHint } from './meta.js'

const port = s.intOrString()

const probe = s.object({
  httpGet: s.object({ path: s.string(), port, host: s.string(), scheme: s.string({ enum: ['HTTP', 'HTTPS'] }), httpHeaders: s.array(s.object({ name: s.string(), value: s.string() }, ['name', 'value'])) }, ['port']),
  tcpSocket: s.object({ port, host: s.string() }, ['port']),
  exec: s.object({ command: s.array(s.string()) }),
  grpc: s.any(),
  initialDelaySeconds: s.integer({ minimum: 0 }),
  periodSeconds: s.integer({ minimum: 1 }),
  timeoutSeconds: s.integer({ minimum: 1 }),
  successThreshold: s.integer({ minimum: 1 }),
  failureThreshold: s.integer({ minimum: 1 }),
  terminationGracePeriodSeconds: s.integer({ minimum: 0 }),
})

const envVar = s.object(
  {
    name: s.string(),
    value: s.string(),
    valueFrom: s.object({
      fieldRef: s.object({ fieldPath: s.string(), apiVersion: s.string() }, ['fieldPath']),
      resourceFieldRef: s.any(),
      configMapKeyRef: s.any(),
      secretKeyRef: s.any(),
    }),
  },
  ['name'],
)

const containerPort = s.object(
  {
    name: s.string({ maxLength: 15 }),
    containerPort: s.integer({ minimum: 1, maximum: 65535 }),
    hostPort: s.integer({ minimum: 1, maximum: 65535 }),
    hostIP: s.string(),
    protocol: s.string({ enum: ['TCP', 'UDP', 'SCTP'] }),
  },
  ['containerPort'],
)

const resources = s.object({ requests: s.map(s.quantity()), limits: s.map(s.quantity()), claims: s.any() })

export const containerSchema = s.object(
  {
    name: s.string({ pattern: dns1123Label, patternHint: dns1123LabelHint, maxLength: 63 }),
    image: s.string(),
    command: s.array(s.string()),
    args: s.array(s.string()),
    workingDir: s.string(),
    ports: s.array(containerPort),
    env: s.array(envVar),
    envFrom: s.any(),
    resources,
    volumeMounts: s.array(s.object({ name: s.string(), mountPath: s.string(), readOnly: s.boolean(), subPath: s.string(), mountPropagation: s.string() }, ['name', 'mountPath'])),
    livenessProbe: probe,
    readinessProbe: probe,
    startupProbe: probe,
    lifecycle: s.any(),
    imagePullPolicy: s.string({ enum: ['Always', 'IfNotPresent', 'Never'] }),
    terminationMessagePath: s.string(),
    terminationMessagePolicy: s.string({ enum: ['File', 'FallbackToLogsOnError'] }),
    securityContext: s.any(),
    stdin: s.boolean(),
    stdinOnce: s.boolean(),
    tty: s.boolean(),
    volumeDevices: s.any(),
    resizePolicy: s.any(),
    restartPolicy: s.string(),
  },
  ['name'],
)

const volume = s.object(
  {
    name: s.string({ pattern: dns1123Label, patternHint: dns1123LabelHint, maxLength: 63 }),
    emptyDir: s.object({ medium: s.string(), sizeLimit: s.quantity() }),
    hostPath: s.object({ path: s.string(), type: s.string() }, ['path']),
    configMap: s.any(),
    secret: s.any(),
    persistentVolumeClaim: s.any(),
    projected: s.any(),
    downwardAPI: s.any(),
  },
  ['name'],
)

const toleration = s.object({
  key: s.string(),
  operator: s.string({ enum: ['Exists', 'Equal'] }),
  value: s.string(),
  effect: s.string({ enum: ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] }),
  tolerationSeconds: s.integer(),
})

export const podSpecSchema = s.object(
  {
    containers: s.array(containerSchema),
    initContainers: s.array(containerSchema),
    volumes: s.array(volume),
    restartPolicy: s.string({ enum: ['Always', 'OnFailure', 'Never'] }),
    terminationGracePeriodSeconds: s.integer({ minimum: 0 }),
    activeDeadlineSeconds: s.integer({ minimum: 1 }),
    dnsPolicy: s.string({ enum: ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'] }),
    dnsConfig: s.any(),
    nodeSelector: s.map(s.string()),
    nodeName: s.string(),
    serviceAccountName: s.string(),
    serviceAccount: s.string(),
    automountServiceAccountToken: s.boolean(),
    hostNetwork: s.boolean(),
    hostPID: s.boolean(),
    hostIPC: s.boolean(),
    hostname: s.string(),
    subdomain: s.string(),
    securityContext: s.any(),
    imagePullSecrets: s.array(s.object({ name: s.string() })),
    affinity: s.any(),
    schedulerName: s.string(),
    tolerations: s.array(toleration),
    priority: s.integer(),
    priorityClassName: s.string(),
    enableServiceLinks: s.boolean(),
    preemptionPolicy: s.string(),
    topologySpreadConstraints: s.any(),
    readinessGates: s.any(),
    runtimeClassName: s.string(),
    overhead: s.any(),
    shareProcessNamespace: s.boolean(),
    hostAliases: s.any(),
  },
  ['containers'],
)

const time = s.string()
const containerState = s.object({
  waiting: s.object({ reason: s.string(), message: s.string() }),
  running: s.object({ startedAt: time }),
  terminated: s.object({ exitCode: s.integer(), signal: s.integer(), reason: s.string(), message: s.string(), startedAt: time, finishedAt: time, containerID: s.string() }, ['exitCode']),
})

export const podStatusSchema = s.object({
  phase: s.string({ enum: ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'] }),
  conditions: s.array(s.object({ type: s.string(), status: s.string({ enum: ['True', 'False', 'Unknown'] }), lastProbeTime: time, lastTransitionTime: time, reason: s.string(), message: s.string() }, ['type', 'status'])),
  message: s.string(),
  reason: s.string(),
  nominatedNodeName: s.string(),
  hostIP: s.string(),
  hostIPs: s.array(s.object({ ip: s.string() })),
  podIP: s.string(),
  podIPs: s.array(s.object({ ip: s.string() })),
  startTime: time,
  qosClass: s.string(),
  containerStatuses: s.array(s.object({ name: s.string(), state: containerState, lastState: containerState, ready: s.boolean(), started: s.boolean(), restartCount: s.integer(), image: s.string(), imageID: s.string(), containerID: s.string() }, ['name'])),
  initContainerStatuses: s.any(),
})

/** A pod template, as controllers carry it. */
export const podTemplateSchema: Schema = s.object({
  // creationTimestamp: kubectl sends it as null in every template it builds.
  metadata: s.object({ labels: s.map(s.string()), annotations: s.map(s.string()), name: s.string(), generateName: s.string(), namespace: s.string(), creationTimestamp: s.string() }),
  spec: podSpecSchema,
})

/** A controller's pod template, defaulted: the pod spec's defaults, and no creationTimestamp (it means nothing there, and would make equal templates differ). */
export function defaultPodTemplate(template: { metadata?: { creationTimestamp?: unknown }; spec?: Record<string, unknown> } | undefined): void {
  if (template?.metadata !== undefined && (template.metadata.creationTimestamp === null || template.metadata.creationTimestamp === undefined)) delete template.metadata.creationTimestamp
  if (template?.spec !== undefined) defaultPodSpec(template.spec)
}

interface ContainerLike {
  name?: string
  image?: string
  imagePullPolicy?: string
  terminationMessagePath?: string
  terminationMessagePolicy?: string
  resources?: Record<string, unknown>
  ports?: { protocol?: string }[]
}

/** Kubernetes' pod spec defaults. Mutates `spec`. */
export function defaultPodSpec(spec: Record<string, unknown>): void {
  spec.restartPolicy ??= 'Always'
  spec.terminationGracePeriodSeconds ??= 30
  spec.dnsPolicy ??= 'ClusterFirst'
  spec.schedulerName ??= 'default-scheduler'
  spec.enableServiceLinks ??= true
  spec.securityContext ??= {}
  for (const list of ['containers', 'initContainers'] as const) {
    for (const c of (spec[list] as ContainerLike[] | undefined) ?? []) {
      // An image without a tag, or tagged latest, is pulled every time (as in Kubernetes).
      const tag = (c.image ?? '').split('/').pop()?.split('@')[0]?.split(':')[1]
      c.imagePullPolicy ??= tag === undefined || tag === 'latest' ? 'Always' : 'IfNotPresent'
      c.terminationMessagePath ??= '/dev/termination-log'
      c.terminationMessagePolicy ??= 'File'
      // Kubernetes stores `resources: {}` on every container; kubectl sends it back (rollout undo), and a
      // template without it would hash differently from the same template with it.
      c.resources ??= {}
      for (const p of c.ports ?? []) p.protocol ??= 'TCP'
    }
  }
}

/** Rules the schema cannot say: unique names, images present, at least one container. */
export function validatePodSpec(spec: Record<string, unknown>, path: string): FieldCause[] {
  const causes: FieldCause[] = []
  const containers = (spec.containers as ContainerLike[] | undefined) ?? []
  if (containers.length === 0) causes.push({ reason: 'FieldValueRequired', field: `${path}.containers`, message: 'Required value' })
  const names = new Set<string>()
  containers.forEach((c, k) => {
    if (c.name !== undefined && names.has(c.name)) causes.push({ reason: 'FieldValueDuplicate', field: `${path}.containers[${k}].name`, message: `Duplicate value: "${c.name}"` })
    if (c.name !== undefined) names.add(c.name)
    if (c.image === undefined || c.image === '') causes.push({ reason: 'FieldValueRequired', field: `${path}.containers[${k}].image`, message: 'Required value' })
  })
  return causes
}

type ResourceMap = Record<string, string | number>
interface ContainerResources {
  resources?: { requests?: ResourceMap; limits?: ResourceMap }
}

/**
 * A pod's QoS class as Kubernetes computes it: BestEffort when no container asks for or
 * caps CPU or memory; Guaranteed when every container caps both and asks for exactly its
 * caps (a request left out defaults to the limit); Burstable otherwise.
 */
export function qosClassOf(spec: Record<string, unknown>): 'BestEffort' | 'Burstable' | 'Guaranteed' {
  const containers = [...((spec.containers ?? []) as ContainerResources[]), ...((spec.initContainers ?? []) as ContainerResources[])]
  const compute = ['cpu', 'memory']
  let any = false
  let guaranteed = containers.length > 0
  for (const c of containers) {
    const requests = c.resources?.requests ?? {}
    const limits = c.resources?.limits ?? {}
    if (compute.some((r) => requests[r] !== undefined || limits[r] !== undefined)) any = true
    for (const r of compute) {
      const limit = limits[r]
      const request = requests[r] ?? limit
      if (limit === undefined || String(request) !== String(limit)) guaranteed = false
    }
  }
  return !any ? 'BestEffort' : guaranteed ? 'Guaranteed' : 'Burstable'
}
