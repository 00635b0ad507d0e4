// The three-way JSON merge patch behind `shoal apply`, as kubectl computes it
// for kinds without a strategic-merge schema: fields the last applied
// configuration had and the new one drops become null (deleted); fields of the
// new configuration that differ from the live object are set. Lists are
// replaced whole, but only when the user changed them or the live list is no
// longer a superset of them: the server fills defaults into list items
// (protocol: TCP, imagePullPolicy), and those alone must not count as drift.
import { isJsonObject, type JsonObject } from './manifests.js'

export const lastAppliedAnnotation = 'kubectl.kubernetes.io/last-applied-configuration'

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, k) => deepEqual(v, b[k]))
  if (isJsonObject(a) && isJsonObject(b)) {
    const keys = Object.keys(a)
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && deepEqual(a[k], b[k]))
  }
  return false
}

/** Everything `part` says, `whole` says too (whole may say more: server defaults). */
export function contains(whole: unknown, part: unknown): boolean {
  if (Array.isArray(part)) return Array.isArray(whole) && whole.length === part.length && part.every((v, k) => contains(whole[k], v))
  if (isJsonObject(part)) return isJsonObject(whole) && Object.keys(part).every((k) => contains(whole[k], part[k]))
  return whole === part
}

/** Fields of `original` that `modified` no longer has, as nulls. */
function deletions(original: JsonObject, modified: JsonObject): JsonObject {
  const patch: JsonObject = {}
  for (const [k, o] of Object.entries(original)) {
    if (!(k in modified)) patch[k] = null
    else if (isJsonObject(o) && isJsonObject(modified[k])) {
      const nested = deletions(o, modified[k])
      if (Object.keys(nested).length > 0) patch[k] = nested
    }
  }
  return patch
}

/** Fields of `modified` that the live object does not already have. */
function additions(original: JsonObject | undefined, modified: JsonObject, current: JsonObject): JsonObject {
  const patch: JsonObject = {}
  for (const [k, m] of Object.entries(modified)) {
    const c = current[k]
    const o = original?.[k]
    if (isJsonObject(m) && isJsonObject(c)) {
      const nested = additions(isJsonObject(o) ? o : undefined, m, c)
      if (Object.keys(nested).length > 0) patch[k] = nested
    } else if (Array.isArray(m)) {
      if (!deepEqual(m, o) || !contains(c, m)) patch[k] = m
    } else if (!deepEqual(m, c)) {
      patch[k] = m
    }
  }
  return patch
}

function mergeInto(target: JsonObject, source: JsonObject): JsonObject {
  for (const [k, v] of Object.entries(source)) target[k] = isJsonObject(v) && isJsonObject(target[k]) ? mergeInto({ ...target[k] }, v) : v
  return target
}

/**
 * The merge patch that takes `current` to `modified`, deleting what `original`
 * (the last applied configuration, if any) had and `modified` dropped.
 * An empty object means nothing to do.
 */
export function threeWayMergePatch(original: JsonObject | undefined, modified: JsonObject, current: JsonObject): JsonObject {
  return mergeInto(original === undefined ? {} : deletions(original, modified), additions(original, modified, current))
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical)
  if (!isJsonObject(value)) return value
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, canonical(value[k])]),
  )
}

/** The object as it should be applied: carrying its own configuration (without that annotation) as the annotation. */
export function withLastApplied(object: JsonObject & { metadata: JsonObject }): JsonObject & { metadata: JsonObject } {
  const annotations = { ...((object.metadata.annotations as Record<string, string> | undefined) ?? {}) }
  delete annotations[lastAppliedAnnotation]
  // kubectl leaves "annotations":{} in the stored configuration; so do we, so that either tool sees its own text.
  const bare = { ...object, metadata: { ...object.metadata, annotations } }
  const text = JSON.stringify(canonical(bare)) + '\n'
  return { ...bare, metadata: { ...bare.metadata, annotations: { ...annotations, [lastAppliedAnnotation]: text } } }
}

/** The last applied configuration stored on a live object, if it has a readable one. */
export function lastAppliedOf(live: JsonObject): JsonObject | undefined {
  const text = ((live.metadata as { annotations?: Record<string, string> } | undefined)?.annotations ?? {})[lastAppliedAnnotation]
  if (text === undefined) return undefined
  try {
    const parsed = JSON.parse(text) as unknown
    return isJsonObject(parsed) ? parsed : undefined
  } catch {
    return undefined
  }
}
