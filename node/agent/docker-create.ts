// What the Docker runtime asks the engine to create: a pod's infrastructure
// container (the sandbox: network namespace, hostname, DNS) and one run of an
// app container joined to it, with Kubernetes' meaning of command and args.

import type Docker from 'dockerode'
import type { ContainerSpec, SandboxSpec } from './runtime.js'
import { containerLabels, engineContainerName, infraContainerName } from './docker-labels.js'

/** The infrastructure container only holds namespaces: it sleeps (about 68 years). */
const infraCommand = ['sleep', '2147483647']
/** Kubernetes hostnames are the pod name cut to a DNS label's length. */
const hostnameLengthMax = 63
/** Kubernetes' ndots for ClusterFirst pods. */
const clusterDnsNdots = 5

/**
 * The sandbox of a pod. `resolvers` are the nameserver IPs its containers get (the engine
 * implies port 53; docker-dns.ts finds one for the cluster DNS); app containers joined to
 * the sandbox's network namespace share its /etc/resolv.conf.
 */
export function infraCreateOptions(nodeName: string, pod: SandboxSpec, infraImage: string, resolvers: string[]): Docker.ContainerCreateOptions {
  const hostConfig: Docker.HostConfig = { RestartPolicy: { Name: 'no' } }
  if (resolvers.length > 0) {
    hostConfig.Dns = resolvers
    if (pod.dnsSearches.length > 0) hostConfig.DnsSearch = pod.dnsSearches
    // As Kubernetes: `web` and `web.other` are tried in the search domains before as they are.
    hostConfig.DnsOptions = [`ndots:${clusterDnsNdots}`]
  }
  return {
    name: engineContainerName(nodeName, pod, infraContainerName, 0),
    Image: infraImage,
    Entrypoint: infraCommand,
    Cmd: [],
    Hostname: pod.name.slice(0, hostnameLengthMax),
    Labels: containerLabels(nodeName, pod, infraContainerName, 0, infraImage),
    HostConfig: hostConfig,
  }
}

/**
 * One run of an app container in the sandbox `infraId`. `command` replaces
 * the image's entrypoint (and so its default arguments), `args` its default
 * arguments. `sharesHostname`: Podman lets the container join the sandbox's
 * UTS namespace (hostname = pod name); Docker refuses `UTSMode: container:`.
 */
export function appCreateOptions(nodeName: string, pod: SandboxSpec, spec: ContainerSpec, infraId: string, sharesHostname: boolean): Docker.ContainerCreateOptions {
  const hostConfig: Docker.HostConfig & { UTSMode?: string } = {
    NetworkMode: `container:${infraId}`,
    Binds: spec.mounts.map((mount) => `${mount.hostPath}:${mount.mountPath}${mount.readOnly ? ':ro' : ''}`),
    RestartPolicy: { Name: 'no' },
  }
  if (spec.memoryLimitBytes !== undefined) {
    hostConfig.Memory = spec.memoryLimitBytes
    hostConfig.MemorySwap = spec.memoryLimitBytes // no swap beyond the limit, as Kubernetes
  }
  if (spec.cpuLimitMillis !== undefined) hostConfig.NanoCpus = spec.cpuLimitMillis * 1_000_000
  if (sharesHostname) hostConfig.UTSMode = `container:${infraId}`
  const options: Docker.ContainerCreateOptions = {
    name: engineContainerName(nodeName, pod, spec.name, spec.attempt),
    Image: spec.image,
    Env: resolvedEnv(spec.env),
    Labels: containerLabels(nodeName, pod, spec.name, spec.attempt, spec.image),
    HostConfig: hostConfig,
  }
  if (spec.command !== undefined && spec.command.length > 0) options.Entrypoint = spec.command
  if (spec.args !== undefined && spec.args.length > 0) options.Cmd = spec.args
  if (spec.workingDir !== undefined && spec.workingDir !== '') options.WorkingDir = spec.workingDir
  return options
}

/** `NAME=value` in order of first appearance, the last value of a repeated name winning. */
function resolvedEnv(env: { name: string; value: string }[]): string[] {
  const byName = new Map<string, string>()
  for (const { name, value } of env) byName.set(name, value)
  return [...byName].map(([name, value]) => `${name}=${value}`)
}
