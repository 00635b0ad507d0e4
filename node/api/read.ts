// Reads: get and list from the local replica (fast, possibly a little behind
// the leader), or linearizable with ?linearizable=true (a ReadIndex round
// first). Lists filter by label and field selectors and page with
// limit/continue; kubectl's Table form is served when asked for.
import { apiVersionOf, type KindDefinition } from '../kinds/kind.js'
import type { ApiObject } from '../kinds/meta.js'
import { readPath } from '../kinds/printing.js'
import type { ObjectStore } from '../store/object-store.js'
import { matches, matchesFields, parseFieldSelector, parseLabelSelector } from './selectors.js'
import { StatusError, badRequest, notFound } from './status.js'

export interface ListOptions {
  labelSelector?: string
  fieldSelector?: string
  limit?: number
  continueToken?: string
}

export interface ListResult {
  items: ApiObject[]
  resourceVersion: string
  continueToken?: string
  remainingItemCount?: number
}

/** Fields every kind can be selected by, besides its own. */
const commonFields = ['metadata.name', 'metadata.namespace']

export function makeFilter(def: KindDefinition, options: Pick<ListOptions, 'labelSelector' | 'fieldSelector'>): (o: ApiObject) => boolean {
  const labels = options.labelSelector ? parseLabelSelector(options.labelSelector) : null
  const supported = new Set([...commonFields, ...def.fieldSelectors])
  const fields = options.fieldSelector ? parseFieldSelector(options.fieldSelector, (f) => supported.has(f)) : null
  return (o) => (labels === null || matches(labels, o.metadata.labels)) && (fields === null || matchesFields(fields, (path) => fieldValue(o, path)))
}

function fieldValue(o: ApiObject, path: string): string {
  const v = readPath(o, path)
  return v === undefined || v === null ? '' : String(v)
}

interface ContinueState {
  rv: string
  after: string
}

function keyOf(o: ApiObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name}`
}

/**
 * Pages are in key order; the continue token remembers the last key and the
 * resourceVersion of the first page. Later pages read the current state (not a
 * snapshot at that version): an object changed meanwhile may show its new version.
 */
export function listObjects(store: ObjectStore, def: KindDefinition, namespace: string | undefined, options: ListOptions): ListResult {
  const filter = makeFilter(def, options)
  let state: ContinueState | null = null
  if (options.continueToken !== undefined && options.continueToken !== '') {
    try {
      state = JSON.parse(Buffer.from(options.continueToken, 'base64url').toString('utf8')) as ContinueState
    } catch {
      throw badRequest('the continue token is not valid')
    }
  }
  const all = store.list(def, namespace).filter((o) => state === null || keyOf(o) > state.after).filter(filter)
  const resourceVersion = state?.rv ?? String(store.appliedIndex)
  const limit = options.limit ?? 0
  if (limit <= 0 || all.length <= limit) return { items: all, resourceVersion }
  const items = all.slice(0, limit)
  const next: ContinueState = { rv: resourceVersion, after: keyOf(items[items.length - 1]!) }
  return { items, resourceVersion, continueToken: Buffer.from(JSON.stringify(next)).toString('base64url'), remainingItemCount: all.length - limit }
}

export function getObject(store: ObjectStore, def: KindDefinition, namespace: string | undefined, name: string): ApiObject {
  const object = store.get({ apiVersion: apiVersionOf(def), kind: def.kind, ...(namespace === undefined ? {} : { namespace }), name })
  if (object === undefined) throw notFound(def.plural, name, def.group)
  return object
}

export function listBody(def: KindDefinition, result: ListResult): Record<string, unknown> {
  return {
    kind: `${def.kind}List`,
    apiVersion: apiVersionOf(def),
    metadata: {
      resourceVersion: result.resourceVersion,
      ...(result.continueToken === undefined ? {} : { continue: result.continueToken, remainingItemCount: result.remainingItemCount }),
    },
    items: result.items,
  }
}

/** Does the Accept header ask for a meta.k8s.io Table (kubectl get does)? */
export function wantsTable(accept: string | undefined): boolean {
  return accept !== undefined && /as=Table/.test(accept.split(',')[0] ?? '')
}

/** A Table of objects, with the kind's columns; objects as full objects or partial metadata. */
export function tableOf(def: KindDefinition, objects: readonly ApiObject[], resourceVersion: string, includeObject: string | undefined, nowMs: number): Record<string, unknown> {
  const context = { nowMs }
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: def.columns.map((c) => ({ name: c.name, type: c.type === 'date' ? 'string' : c.type, format: c.name === 'Name' ? 'name' : '', description: c.description, priority: c.priority })),
    rows: objects.map((o) => ({
      cells: def.columns.map((c) => c.value(o, context)),
      object: includeObject === 'None' ? null : includeObject === 'Object' ? o : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  }
}

/** Parse ?limit= as Kubernetes does: a non-negative integer. */
export function parseLimit(value: string | null): number | undefined {
  if (value === null || value === '') return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new StatusError(400, 'BadRequest', `invalid limit: ${value}`)
  return n
}
