// A container's environment as the kubelet builds it: the Service variables
// ({NAME}_SERVICE_HOST, _SERVICE_PORT and the Docker-link style ones) for the
// services of the pod's namespace that exist when it starts, then the
// container's own `env` in order, each value able to refer to earlier ones as
// $(NAME), with `valueFrom.fieldRef` and `resourceFieldRef` resolved.
import { quantityMilliValue, quantityValue } from '../kinds/quantity.js'
import type { ApiObject } from '../kinds/meta.js'
import type { ContainerJson, EnvVarJson, PodJson } from './pod-types.js'

/** An env var that cannot be built: the container waits with `CreateContainerConfigError`. */
export class ContainerConfigError extends Error {
  override readonly name = 'ContainerConfigError'
}

export interface ServiceJson extends ApiObject {
  spec?: { clusterIP?: string; ports?: { name?: string; port: number; protocol?: string }[] }
}

/** What the pod's fieldRefs can name that the pod object does not hold yet. */
export interface PodRuntimeFacts {
  podIp: string
  hostIp: string
}

/** `redis-master` -> `REDIS_MASTER`, as Kubernetes names service variables. */
export function envNameOf(serviceName: string): string {
  return serviceName.replace(/-/g, '_').toUpperCase()
}

/** The variables one service gives every container of its namespace. */
export function serviceEnv(service: ServiceJson): { name: string; value: string }[] {
  const ip = service.spec?.clusterIP
  const ports = service.spec?.ports ?? []
  if (ip === undefined || ip === '' || ip === 'None' || ports.length === 0) return []
  const prefix = envNameOf(service.metadata.name ?? '')
  const out = [
    { name: `${prefix}_SERVICE_HOST`, value: ip },
    { name: `${prefix}_SERVICE_PORT`, value: String(ports[0]!.port) },
  ]
  for (const p of ports) if (p.name !== undefined && p.name !== '') out.push({ name: `${prefix}_SERVICE_PORT_${envNameOf(p.name)}`, value: String(p.port) })
  ports.forEach((p, k) => {
    const protocol = (p.protocol ?? 'TCP').toLowerCase()
    const url = `${protocol}://${ip}:${p.port}`
    const portPrefix = `${prefix}_PORT_${p.port}_${protocol.toUpperCase()}`
    if (k === 0) out.push({ name: `${prefix}_PORT`, value: url })
    out.push({ name: portPrefix, value: url }, { name: `${portPrefix}_PROTO`, value: protocol }, { name: `${portPrefix}_PORT`, value: String(p.port) }, { name: `${portPrefix}_ADDR`, value: ip })
  })
  return out
}

/**
 * `$(NAME)` replaced by the value of NAME when it is defined, left as written
 * when not; `$$` is a literal `$` (Kubernetes' expansion rules).
 */
export function expandVariables(input: string, lookup: (name: string) => string | undefined): string {
  let out = ''
  for (let k = 0; k < input.length; k++) {
    const c = input[k]!
    if (c !== '$' || k + 1 >= input.length) {
      out += c
      continue
    }
    const next = input[k + 1]!
    if (next === '$') {
      out += '$'
      k++
    } else if (next === '(') {
      const close = input.indexOf(')', k + 2)
      if (close < 0) {
        out += c
        continue
      }
      const name = input.slice(k + 2, close)
      const value = lookup(name)
      out += value ?? `$(${name})`
      k = close
    } else {
      out += c
    }
  }
  return out
}

const fieldRefBracket = /^metadata\.(labels|annotations)\['(.+)'\]$/

/** The value of a `fieldRef.fieldPath` for this pod. */
export function fieldRefValue(pod: PodJson, fieldPath: string, facts: PodRuntimeFacts): string {
  const m = fieldRefBracket.exec(fieldPath)
  if (m !== null) {
    const map = (m[1] === 'labels' ? pod.metadata.labels : pod.metadata.annotations) ?? {}
    return map[m[2]!] ?? ''
  }
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata.name ?? ''
    case 'metadata.namespace':
      return pod.metadata.namespace ?? ''
    case 'metadata.uid':
      return pod.metadata.uid ?? ''
    case 'metadata.labels':
    case 'metadata.annotations': {
      const map = (fieldPath === 'metadata.labels' ? pod.metadata.labels : pod.metadata.annotations) ?? {}
      return Object.keys(map).sort().map((k) => `${k}=${JSON.stringify(map[k])}`).join('\n')
    }
    case 'spec.nodeName':
      return pod.spec.nodeName ?? ''
    case 'spec.serviceAccountName':
      return pod.spec.serviceAccountName ?? ''
    case 'status.podIP':
    case 'status.podIPs':
      return facts.podIp
    case 'status.hostIP':
    case 'status.hostIPs':
      return facts.hostIp
    default:
      throw new ContainerConfigError(`unsupported fieldRef fieldPath "${fieldPath}"`)
  }
}

/** `limits.cpu` and friends, in units of the divisor (cores rounded up, as Kubernetes does). */
export function resourceFieldValue(container: ContainerJson, resource: string, divisor: string | undefined, nodeAllocatable: Record<string, string>): string {
  const [section, name] = resource.split('.') as [string, string | undefined]
  if ((section !== 'limits' && section !== 'requests') || (name !== 'cpu' && name !== 'memory' && name !== 'ephemeral-storage')) {
    throw new ContainerConfigError(`unsupported resourceFieldRef resource "${resource}"`)
  }
  const given = container.resources?.[section]?.[name] ?? (section === 'limits' ? nodeAllocatable[name] : undefined) ?? '0'
  if (name === 'cpu') return String(Math.ceil(quantityMilliValue(given) / quantityMilliValue(divisor ?? '1')))
  return String(Math.ceil(quantityValue(given) / quantityValue(divisor ?? '1')))
}

export interface EnvContext {
  pod: PodJson
  container: ContainerJson
  /** Services of the pod's namespace (only when `enableServiceLinks` is not false). */
  services: readonly ServiceJson[]
  facts: PodRuntimeFacts
  nodeAllocatable: Record<string, string>
}

/** The container's resolved environment, in order (a later entry of the same name wins). */
export function containerEnv(ctx: EnvContext): { name: string; value: string }[] {
  const values = new Map<string, string>()
  if (ctx.pod.spec.enableServiceLinks !== false) {
    const services = [...ctx.services].sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))
    for (const s of services) for (const v of serviceEnv(s)) values.set(v.name, v.value)
  }
  if (ctx.container.envFrom !== undefined) throw new ContainerConfigError('envFrom is not supported: Shoal has no ConfigMaps or Secrets')
  for (const v of ctx.container.env ?? []) values.set(v.name, envValue(ctx, v, values))
  return [...values].map(([name, value]) => ({ name, value }))
}

function envValue(ctx: EnvContext, v: EnvVarJson, sofar: Map<string, string>): string {
  if (v.valueFrom === undefined) return expandVariables(v.value ?? '', (n) => sofar.get(n))
  const from = v.valueFrom
  if (from.fieldRef !== undefined) return fieldRefValue(ctx.pod, from.fieldRef.fieldPath, ctx.facts)
  if (from.resourceFieldRef !== undefined) return resourceFieldValue(ctx.container, from.resourceFieldRef.resource ?? '', from.resourceFieldRef.divisor, ctx.nodeAllocatable)
  const source = from.configMapKeyRef !== undefined ? 'configMapKeyRef' : from.secretKeyRef !== undefined ? 'secretKeyRef' : 'valueFrom'
  throw new ContainerConfigError(`env ${v.name}: ${source} is not supported: Shoal has no ConfigMaps or Secrets`)
}

/** `command` and `args` with $(NAME) references to the environment expanded. */
export function expandCommand(list: readonly string[] | undefined, env: readonly { name: string; value: string }[]): string[] | undefined {
  if (list === undefined) return undefined
  const map = new Map(env.map((e) => [e.name, e.value]))
  return list.map((s) => expandVariables(s, (n) => map.get(n)))
}
