// The parts of a v1 Pod the agent reads and writes, typed. The store holds
// pods as validated JSON (kinds/pod-spec.ts); these views name what the agent
// relies on and leave the rest untouched.
import type { ApiObject } from '../kinds/meta.js'

export interface ProbeJson {
  httpGet?: { path?: string; port: number | string; host?: string; scheme?: string; httpHeaders?: { name: string; value: string }[] }
  tcpSocket?: { port: number | string; host?: string }
  exec?: { command?: string[] }
  initialDelaySeconds?: number
  periodSeconds?: number
  timeoutSeconds?: number
  successThreshold?: number
  failureThreshold?: number
}

export interface EnvVarJson {
  name: string
  value?: string
  valueFrom?: {
    fieldRef?: { fieldPath: string }
    resourceFieldRef?: { resource?: string; containerName?: string; divisor?: string }
    configMapKeyRef?: unknown
    secretKeyRef?: unknown
  }
}

export interface ContainerJson {
  name: string
  image: string
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never'
  command?: string[]
  args?: string[]
  workingDir?: string
  env?: EnvVarJson[]
  envFrom?: unknown
  ports?: { name?: string; containerPort: number; protocol?: 'TCP' | 'UDP' | 'SCTP' }[]
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[]
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> }
  livenessProbe?: ProbeJson
  readinessProbe?: ProbeJson
  startupProbe?: ProbeJson
}

export interface VolumeJson {
  name: string
  emptyDir?: { medium?: string; sizeLimit?: string }
  hostPath?: { path: string; type?: string }
  [other: string]: unknown
}

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never'

export interface PodSpecJson {
  containers: ContainerJson[]
  initContainers?: ContainerJson[]
  volumes?: VolumeJson[]
  restartPolicy?: RestartPolicy
  terminationGracePeriodSeconds?: number
  nodeName?: string
  serviceAccountName?: string
  enableServiceLinks?: boolean
  hostname?: string
  dnsPolicy?: string
}

export interface ContainerStateJson {
  waiting?: { reason?: string; message?: string }
  running?: { startedAt?: string }
  terminated?: { exitCode: number; signal?: number; reason?: string; message?: string; startedAt?: string; finishedAt?: string; containerID?: string }
}

export interface ContainerStatusJson {
  name: string
  state: ContainerStateJson
  lastState: ContainerStateJson
  ready: boolean
  started: boolean
  restartCount: number
  image: string
  imageID: string
  containerID?: string
}

export interface PodConditionJson {
  type: string
  status: 'True' | 'False' | 'Unknown'
  lastProbeTime?: string | null
  lastTransitionTime?: string
  reason?: string
  message?: string
}

export interface PodStatusJson {
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown'
  conditions?: PodConditionJson[]
  message?: string
  reason?: string
  hostIP?: string
  hostIPs?: { ip: string }[]
  podIP?: string
  podIPs?: { ip: string }[]
  startTime?: string
  qosClass?: string
  containerStatuses?: ContainerStatusJson[]
}

export type PodJson = ApiObject & { spec: PodSpecJson; status?: PodStatusJson }

/** `namespace/name`, the way logs and messages name a pod. */
export function podKey(pod: PodJson): string {
  return `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name ?? ''}`
}
