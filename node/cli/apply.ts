// shoal apply -f: kubectl's client-side apply. The object carries its applied
// configuration in the last-applied-configuration annotation; a missing
// object is created, an existing one gets the three-way merge patch between
// that annotation, the new configuration and the live object.
import { parse, UsageError } from './args.js'
import { lastAppliedAnnotation, lastAppliedOf, threeWayMergePatch, withLastApplied } from './apply-patch.js'
import { forEachManifest, printResult, resultFormat, type ResultFormat } from './each-manifest.js'
import type { JsonObject, Manifest } from './manifests.js'
import { kindName, resourcePath, type ResourceInfo } from './resources.js'
import { ServerError, targetOptions, Session } from './session.js'

/** A patch that loses a race with another writer (409) is recomputed this many times. */
const applyConflictRetriesMax = 5

async function liveObject(session: Session, path: string): Promise<JsonObject | null> {
  try {
    return await session.json<JsonObject>(path)
  } catch (err) {
    if ((err as Error).name === 'ServerError' && (err as ServerError).code === 404) return null
    throw err
  }
}

async function applyOne(session: Session, resource: ResourceInfo, namespace: string | undefined, m: Manifest, format: ResultFormat): Promise<void> {
  const configured = withLastApplied(resource.namespaced && namespace !== undefined ? { ...m.object, metadata: { ...m.object.metadata, namespace } } : m.object)
  const name = m.object.metadata.name!
  const path = resourcePath(resource, namespace, name)
  for (let attempt = 0; ; attempt++) {
    const live = await liveObject(session, path)
    if (live === null) {
      const created = await session.json<JsonObject>(resourcePath(resource, namespace), { method: 'POST', body: configured, query: { fieldValidation: 'Strict' } })
      return printResult(resource, created, 'created', format)
    }
    const original = lastAppliedOf(live)
    if (original === undefined && attempt === 0) {
      process.stderr.write(`Warning: ${kindName(resource)}/${name} has no ${lastAppliedAnnotation} annotation (it was not made by apply); apply adds it now\n`)
    }
    const patch = threeWayMergePatch(original, configured, live)
    if (Object.keys(patch).length === 0) return printResult(resource, live, 'unchanged', format)
    try {
      const patched = await session.json<JsonObject>(path, { method: 'PATCH', body: patch, contentType: 'application/merge-patch+json', query: { fieldValidation: 'Strict' } })
      return printResult(resource, patched, 'configured', format)
    } catch (err) {
      if (!((err as Error).name === 'ServerError' && (err as ServerError).code === 409 && attempt < applyConflictRetriesMax)) throw err
    }
  }
}

export async function apply(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...targetOptions, filename: { type: 'string', short: 'f', multiple: true }, output: { type: 'string', short: 'o' } })
  const format = resultFormat(values.output)
  if (positionals.length > 0) throw new UsageError(`apply takes -f FILE, not "${positionals.join(' ')}"`)
  const session = await Session.open(values)
  return forEachManifest(session, values.filename, 'apply', 'applying', (resource, namespace, m) => applyOne(session, resource, namespace, m, format))
}
