// Simulated nodes and pods for the scheduler's tests.
import type { ApiObject } from '../../node/kinds/meta.js'
import type { Toleration } from '../../node/scheduler/snapshot.js'

export interface NodeOptions {
  cpu?: string
  memory?: string
  pods?: string
  labels?: Record<string, string>
  taints?: { key: string; value?: string; effect: string }[]
  unschedulable?: boolean
  ready?: 'True' | 'False' | 'Unknown' | null
}

export function simNode(name: string, o: NodeOptions = {}): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: o.labels ?? {} },
    spec: { ...(o.unschedulable === undefined ? {} : { unschedulable: o.unschedulable }), ...(o.taints === undefined ? {} : { taints: o.taints }) },
    status: {
      allocatable: { cpu: o.cpu ?? '4', memory: o.memory ?? '8Gi', pods: o.pods ?? '110' },
      conditions: o.ready === null ? [] : [{ type: 'Ready', status: o.ready ?? 'True' }],
    },
  }
}

export interface PodOptions {
  cpu?: string
  memory?: string
  nodeSelector?: Record<string, string>
  tolerations?: Partial<Toleration>[]
  hostPort?: { port: number; protocol?: string; hostIP?: string }
  owner?: string
  nodeName?: string
  phase?: string
  created?: string
}

export function simPod(name: string, o: PodOptions = {}): ApiObject {
  const requests = { ...(o.cpu === undefined ? {} : { cpu: o.cpu }), ...(o.memory === undefined ? {} : { memory: o.memory }) }
  const port = o.hostPort === undefined ? [] : [{ containerPort: 8080, hostPort: o.hostPort.port, protocol: o.hostPort.protocol ?? 'TCP', ...(o.hostPort.hostIP === undefined ? {} : { hostIP: o.hostPort.hostIP }) }]
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'default',
      uid: `uid-${name}`,
      creationTimestamp: o.created ?? '2025-01-01T00:00:00Z',
      ...(o.owner === undefined ? {} : { ownerReferences: [{ apiVersion: 'v1', kind: 'ReplicationController', name: o.owner, uid: `rc-${o.owner}`, controller: true }] }),
    },
    spec: {
      containers: [{ name: 'c', image: 'nginx', resources: { requests }, ports: port }],
      ...(o.nodeSelector === undefined ? {} : { nodeSelector: o.nodeSelector }),
      ...(o.tolerations === undefined ? {} : { tolerations: o.tolerations }),
      ...(o.nodeName === undefined ? {} : { nodeName: o.nodeName }),
    },
    status: { phase: o.phase ?? 'Pending' },
  }
}

/** Pods bound per node name. */
export function perNode(bindings: { nodeName: string }[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const b of bindings) counts[b.nodeName] = (counts[b.nodeName] ?? 0) + 1
  return counts
}
