// create, apply and delete -f act on each object in turn: one that fails is
// reported on its own line and the rest still go ahead; the exit code is 1 if
// any failed.
import { UsageError } from './args.js'
import { ManifestError, readManifests, type Manifest } from './manifests.js'
import { nameOf, renderObject } from './object-print.js'
import type { ResourceInfo } from './resources.js'
import { manifestNamespace } from './selection.js'
import type { Session } from './session.js'

export type ResultFormat = 'default' | 'name' | 'json' | 'yaml'

export function resultFormat(value: string | undefined): ResultFormat {
  if (value === undefined || value === '') return 'default'
  if (value === 'name' || value === 'json' || value === 'yaml') return value
  throw new UsageError(`unknown output format "${value}"; use name, json or yaml`)
}

/** `pod/web created`, or the object in the asked-for format. */
export function printResult(resource: ResourceInfo, object: { metadata?: { name?: string } }, verb: string, format: ResultFormat): void {
  if (format === 'default') process.stdout.write(`${nameOf(resource, object)} ${verb}\n`)
  else if (format === 'name') process.stdout.write(`${nameOf(resource, object)}\n`)
  else process.stdout.write(renderObject(object, format))
}

/** Errors that belong to one object (the server said no, the kind is unknown) rather than to the whole command. */
export function isPerObjectError(err: unknown): boolean {
  return ['ServerError', 'UnknownResourceError', 'ManifestError'].includes((err as Error).name)
}

export type ManifestAction = (resource: ResourceInfo, namespace: string | undefined, m: Manifest) => Promise<void>

/** Reads the -f manifests and runs `action` on each object; returns the exit code. */
export async function forEachManifest(session: Session, filenames: string[] | undefined, command: string, verbing: string, action: ManifestAction): Promise<number> {
  if (filenames === undefined || filenames.length === 0) throw new UsageError(`${command} needs -f FILE (a manifest, a directory of them, or - for standard input)`)
  const manifests = await readManifests(filenames)
  if (manifests.length === 0) throw new ManifestError(`no objects passed to ${command}`)
  const discovery = await session.resources()
  let failed = 0
  for (const m of manifests) {
    try {
      const resource = await discovery.forKind(m.object.apiVersion, m.object.kind)
      if (typeof m.object.metadata.name !== 'string' || m.object.metadata.name === '') {
        if (command !== 'create' || typeof m.object.metadata.generateName !== 'string') throw new ManifestError(`error validating ${m.source}: a ${m.object.kind} needs metadata.name`)
      }
      await action(resource, manifestNamespace(session, resource, m), m)
    } catch (err) {
      if (!isPerObjectError(err)) throw err
      failed++
      process.stderr.write(`shoal ${command}: error when ${verbing} "${m.source}": ${(err as Error).message}\n`)
    }
  }
  return failed > 0 ? 1 : 0
}
