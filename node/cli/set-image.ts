// shoal set image (deployment|rc|rs|pod)/NAME CONTAINER=IMAGE ...: as kubectl
// set image, a strategic merge patch of the named containers (`*` names them
// all) in the pod template, or in the pod's own spec.
import { parse, UsageError } from './args.js'
import { printResult } from './each-manifest.js'
import { isPerObjectError } from './each-manifest.js'
import type { JsonObject } from './manifests.js'
import { resourcePath, type ResourceInfo } from './resources.js'
import { Session, targetOptions } from './session.js'
import type { ContainerView, WorkloadObject } from './workload.js'

export class ContainerNotFoundError extends Error {
  override readonly name = 'ContainerNotFoundError'
}

/** CONTAINER=IMAGE pairs, in order. */
export function imagePairs(args: string[]): Map<string, string> {
  const pairs = new Map<string, string>()
  for (const arg of args) {
    const eq = arg.indexOf('=')
    if (eq <= 0 || eq === arg.length - 1) throw new UsageError(`"${arg}" is not CONTAINER=IMAGE`)
    pairs.set(arg.slice(0, eq), arg.slice(eq + 1))
  }
  return pairs
}

/** The containers a patch changes: name and new image, for each pair that names a container (or `*`). */
export function imagePatchFor(containers: ContainerView[], pairs: Map<string, string>): { name: string; image: string }[] {
  const wildcard = pairs.get('*')
  return containers.flatMap((c) => {
    const image = pairs.get(c.name) ?? wildcard
    return image === undefined ? [] : [{ name: c.name, image }]
  })
}

function podSpecOf(resource: ResourceInfo, o: WorkloadObject): { containers?: ContainerView[]; initContainers?: ContainerView[] } {
  return (resource.kind === 'Pod' ? (o.spec as JsonObject | undefined) : o.spec?.template?.spec) ?? {}
}

async function setImageOf(session: Session, resource: ResourceInfo, name: string, pairs: Map<string, string>): Promise<void> {
  const path = resourcePath(resource, session.namespace, name)
  const o = await session.json<WorkloadObject>(path)
  const spec = podSpecOf(resource, o)
  const containers = imagePatchFor(spec.containers ?? [], pairs)
  const initContainers = imagePatchFor(spec.initContainers ?? [], pairs)
  const known = new Set([...containers, ...initContainers].map((c) => c.name))
  for (const container of pairs.keys()) {
    if (container !== '*' && !known.has(container)) throw new ContainerNotFoundError(`unable to find container named "${container}"`)
  }
  const podSpecPatch: JsonObject = {}
  if (containers.length > 0) podSpecPatch.containers = containers
  if (initContainers.length > 0) podSpecPatch.initContainers = initContainers
  const patch = resource.kind === 'Pod' ? { spec: podSpecPatch } : { spec: { template: { spec: podSpecPatch } } }
  await session.json(path, { method: 'PATCH', body: patch, contentType: 'application/strategic-merge-patch+json' })
  printResult(resource, { metadata: { name } }, 'image updated', 'default')
}

export async function setImage(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, targetOptions)
  const resourceArgs = positionals.filter((p) => !p.includes('='))
  const pairs = imagePairs(positionals.filter((p) => p.includes('=')))
  if (resourceArgs.length === 0 || pairs.size === 0) throw new UsageError('set image takes (TYPE NAME | TYPE/NAME ...) CONTAINER=IMAGE ...; e.g. shoal set image deployment/web web=web:v2')
  const session = await Session.open(values)
  const discovery = await session.resources()
  const targets: { resource: ResourceInfo; name: string }[] = resourceArgs.every((a) => a.includes('/'))
    ? resourceArgs.map((a) => ({ resource: discovery.resolve(a.slice(0, a.indexOf('/'))), name: a.slice(a.indexOf('/') + 1) }))
    : resourceArgs.slice(1).map((name) => ({ resource: discovery.resolve(resourceArgs[0]!), name }))
  if (targets.length === 0) throw new UsageError(`name the ${resourceArgs[0]} to change, e.g. shoal set image ${resourceArgs[0]} NAME CONTAINER=IMAGE`)
  let failed = 0
  for (const t of targets) {
    if (t.resource.kind !== 'Pod' && !['ReplicationController', 'ReplicaSet', 'Deployment', 'DaemonSet', 'StatefulSet', 'Job'].includes(t.resource.kind)) {
      throw new UsageError(`${t.resource.plural} have no containers to set an image on`)
    }
    try {
      await setImageOf(session, t.resource, t.name, pairs)
    } catch (err) {
      if (!isPerObjectError(err) && (err as Error).name !== 'ContainerNotFoundError') throw err
      failed++
      process.stderr.write(`shoal set image: ${(err as Error).message}\n`)
    }
  }
  return failed > 0 ? 1 : 0
}

/** shoal set SUBCOMMAND: only `image` so far. */
export async function set(args: string[]): Promise<number> {
  if (args[0] !== 'image') throw new UsageError('usage: shoal set image (TYPE NAME | TYPE/NAME ...) CONTAINER=IMAGE ...')
  return setImage(args.slice(1))
}
