// What the rollout commands share: one named workload (TYPE/NAME or TYPE NAME)
// resolved through discovery, read-modify-write with retries on conflict, and
// Go durations for flags such as --timeout and --update-period.
import { UsageError } from './args.js'
import type { JsonObject } from './manifests.js'
import { resourcePath, type ResourceInfo } from './resources.js'
import { ServerError, type Session } from './session.js'

/** An update that keeps meeting newer versions gives up after this many tries (client-go's retry.DefaultRetry takes 5). */
const conflictRetriesMax = 5

export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> } & JsonObject
  spec?: { containers?: ContainerView[]; initContainers?: ContainerView[] } & JsonObject
}

export interface ContainerView extends JsonObject {
  name: string
  image?: string
}

export interface WorkloadObject extends JsonObject {
  metadata: { name: string; namespace?: string; uid?: string; generation?: number; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string>; creationTimestamp?: string; ownerReferences?: { uid?: string; controller?: boolean; kind?: string; name?: string }[] }
  spec?: { replicas?: number; paused?: boolean; selector?: unknown; template?: PodTemplate; minReadySeconds?: number } & JsonObject
  status?: JsonObject
}

export interface NamedWorkload {
  resource: ResourceInfo
  name: string
  namespace: string | undefined
  path: string
}

/** `TYPE/NAME` or `TYPE NAME` from the start of the positionals; the rest is returned. */
export async function namedWorkload(session: Session, positionals: string[], command: string): Promise<{ target: NamedWorkload; rest: string[] }> {
  const [first, ...others] = positionals
  if (first === undefined) throw new UsageError(`${command} needs a resource: TYPE/NAME or TYPE NAME`)
  let type: string
  let name: string
  let rest: string[]
  if (first.includes('/')) {
    ;[type, name, rest] = [first.slice(0, first.indexOf('/')), first.slice(first.indexOf('/') + 1), others]
  } else {
    if (others[0] === undefined) throw new UsageError(`${command} needs a name after "${first}"`)
    ;[type, name, rest] = [first, others[0], others.slice(1)]
  }
  if (type === '' || name === '') throw new UsageError(`"${first}" is not TYPE/NAME`)
  const resource = (await session.resources()).resolve(type)
  const namespace = resource.namespaced ? session.namespace : undefined
  return { target: { resource, name, namespace, path: resourcePath(resource, namespace, name) }, rest }
}

export function isConflict(err: unknown): boolean {
  return (err as Error).name === 'ServerError' && (err as ServerError).code === 409
}

export function isNotFound(err: unknown): boolean {
  return (err as Error).name === 'ServerError' && (err as ServerError).code === 404
}

/** GET, change, PUT with the read resourceVersion; a conflict reads again and reapplies `change`. */
export async function updateWithRetries<T extends WorkloadObject>(session: Session, path: string, change: (o: T) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const current = await session.json<T>(path)
    change(current)
    try {
      return await session.json<T>(path, { method: 'PUT', body: current })
    } catch (err) {
      if (!isConflict(err) || attempt >= conflictRetriesMax) throw err
    }
  }
}

export function templateOf(o: WorkloadObject): PodTemplate | undefined {
  return o.spec?.template
}

const durationUnitsMs: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** A Go duration (`0`, `500ms`, `30s`, `1m0s`, `1h30m`) in milliseconds. */
export function durationMs(text: string, flag: string): number {
  if (text === '0') return 0
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)]
  if (text === '' || parts.map((p) => p[0]).join('') !== text) throw new UsageError(`${flag} wants a duration such as 30s, 1m0s or 500ms, not "${text}"`)
  return parts.reduce((sum, p) => sum + Number(p[1]) * durationUnitsMs[p[2]!]!, 0)
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
