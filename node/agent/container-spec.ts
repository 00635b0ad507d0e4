// From a pod's container to the ContainerSpec a runtime starts: the resolved
// environment and mounts, the expanded command and args, the ports and the
// limits as numbers.
import { quantityMilliValue, quantityValue } from '../kinds/quantity.js'
import { containerEnv, expandCommand, type PodRuntimeFacts, type ServiceJson } from './pod-env.js'
import { containerMounts } from './pod-volumes.js'
import type { ContainerJson, PodJson } from './pod-types.js'
import type { ContainerSpec, ImagePullPolicy, PortSpec, SandboxSpec } from './runtime.js'

export function portsOf(container: ContainerJson): PortSpec[] {
  return (container.ports ?? []).map((p) => ({ ...(p.name === undefined ? {} : { name: p.name }), containerPort: p.containerPort, protocol: p.protocol ?? 'TCP' }))
}

export interface SandboxContext {
  dnsServers: string[]
  /** The cluster domain, for search domains (`cluster.local`). */
  clusterDomain: string
}

/** The pod's terminationGracePeriodSeconds in ms (Kubernetes' default: 30 s). */
export function podGracePeriodMs(pod: PodJson): number {
  return (pod.spec.terminationGracePeriodSeconds ?? 30) * 1000
}

export function sandboxSpecOf(pod: PodJson, ctx: SandboxContext): SandboxSpec {
  const ns = pod.metadata.namespace ?? 'default'
  const clusterDns = ctx.dnsServers.length > 0 && (pod.spec.dnsPolicy ?? 'ClusterFirst') === 'ClusterFirst'
  return {
    uid: pod.metadata.uid ?? '',
    namespace: ns,
    name: pod.metadata.name ?? '',
    ports: pod.spec.containers.flatMap(portsOf),
    dnsServers: clusterDns ? ctx.dnsServers : [],
    dnsSearches: clusterDns ? [`${ns}.svc.${ctx.clusterDomain}`, `svc.${ctx.clusterDomain}`, ctx.clusterDomain] : [],
    terminationGracePeriodMs: podGracePeriodMs(pod),
  }
}

export interface ContainerSpecContext {
  pod: PodJson
  container: ContainerJson
  services: readonly ServiceJson[]
  facts: PodRuntimeFacts
  nodeAllocatable: Record<string, string>
  volumes: Map<string, string>
  attempt: number
}

export function containerSpecOf(ctx: ContainerSpecContext): ContainerSpec {
  const { container } = ctx
  const env = containerEnv(ctx)
  const limits = container.resources?.limits ?? {}
  const spec: ContainerSpec = {
    name: container.name,
    image: container.image,
    imagePullPolicy: (container.imagePullPolicy ?? 'IfNotPresent') as ImagePullPolicy,
    env,
    ports: portsOf(container),
    mounts: containerMounts(ctx.pod, container, ctx.volumes),
    attempt: ctx.attempt,
  }
  const command = expandCommand(container.command, env)
  const args = expandCommand(container.args, env)
  if (command !== undefined) spec.command = command
  if (args !== undefined) spec.args = args
  if (container.workingDir !== undefined && container.workingDir !== '') spec.workingDir = container.workingDir
  if (limits.cpu !== undefined) spec.cpuLimitMillis = quantityMilliValue(limits.cpu)
  if (limits.memory !== undefined) spec.memoryLimitBytes = quantityValue(limits.memory)
  return spec
}
