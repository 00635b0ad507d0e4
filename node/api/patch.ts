// PATCH bodies applied as the Kubernetes API server applies them: JSON Patch (RFC 6902),
// JSON Merge Patch (RFC 7386) and strategic merge patch. Pure: the inputs are never mutated,
// and the result shares no objects with them (callers may freely edit it).

export class InvalidPatchError extends Error {
  override readonly name = 'InvalidPatchError'
}

export class UnsupportedPatchTypeError extends Error {
  override readonly name = 'UnsupportedPatchTypeError'
  constructor(readonly contentType: string) {
    super(`unsupported patch type "${contentType}": accepted media types are ${Object.values(PatchContentType).join(', ')}`)
  }
}

export const PatchContentType = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategicMerge: 'application/strategic-merge-patch+json',
} as const

/** How a list field is patched: merged element by element (by `mergeKey` for lists of
 * objects, as a set for lists of primitives), or replaced whole (the default). */
export type ListPatchStrategy = { readonly strategy: 'merge'; readonly mergeKey?: string } | { readonly strategy: 'replace' }

/** List strategies by field path: field names joined by '.', with '[]' after a list whose
 * elements the path descends into, e.g. `spec.containers[].ports`. Unlisted lists are replaced. */
export type PatchSchema = Readonly<Record<string, ListPatchStrategy>>

type JsonObject = { [key: string]: unknown }

export function applyPatch(original: unknown, patch: unknown, contentType: string, schema: PatchSchema = defaultPatchSchema): unknown {
  const mediaType = (contentType.split(';')[0] ?? '').trim().toLowerCase()
  switch (mediaType) {
    case PatchContentType.json:
      return applyJsonPatch(original, patch)
    case PatchContentType.merge:
      return applyMergePatch(original, patch)
    case PatchContentType.strategicMerge:
      return strategicMergePatch(original, patch, schema)
    default:
      throw new UnsupportedPatchTypeError(contentType)
  }
}

// ---------------------------------------------------------------- JSON values

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

// Own-property access only: a key such as "__proto__" in a JSON body is data, never a prototype.
function getOwn(object: JsonObject, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined
}

function setOwn(object: JsonObject, key: string, value: unknown): void {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true })
}

function cloneJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(cloneJson)
  if (!isObject(value)) return value
  const copy: JsonObject = {}
  for (const [key, item] of Object.entries(value)) setOwn(copy, key, cloneJson(item))
  return copy
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]))
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a)
    return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && jsonEqual(a[key], b[key]))
  }
  return a === b
}

// ---------------------------------------------------------------- RFC 6902 JSON Patch

type JsonPatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string[]; pointer: string; value: unknown }
  | { op: 'remove'; path: string[]; pointer: string }
  | { op: 'move' | 'copy'; path: string[]; pointer: string; from: string[]; fromPointer: string }

export function applyJsonPatch(original: unknown, operations: unknown): unknown {
  if (!Array.isArray(operations)) throw new InvalidPatchError('a JSON patch must be a JSON array of operations')
  let document = cloneJson(original)
  operations.forEach((raw, index) => {
    document = applyOperation(document, parseOperation(raw, index))
  })
  return document
}

function parseOperation(raw: unknown, index: number): JsonPatchOperation {
  const fail = (why: string): never => {
    throw new InvalidPatchError(`JSON patch operation ${index}: ${why}`)
  }
  if (!isObject(raw)) return fail('must be an object')
  const { op, path } = raw
  if (typeof path !== 'string') return fail('"path" must be a string')
  const target = { path: parsePointer(path), pointer: path }
  switch (op) {
    case 'add':
    case 'replace':
    case 'test':
      if (!Object.hasOwn(raw, 'value')) return fail(`"${op}" needs a "value"`)
      return { op, ...target, value: raw['value'] }
    case 'remove':
      return { op, ...target }
    case 'move':
    case 'copy': {
      const from = raw['from']
      if (typeof from !== 'string') return fail(`"${op}" needs a string "from"`)
      return { op, ...target, from: parsePointer(from), fromPointer: from }
    }
    default:
      return fail(`unknown op ${JSON.stringify(op)}`)
  }
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return []
  if (!pointer.startsWith('/')) throw new InvalidPatchError(`invalid JSON pointer "${pointer}": must be empty or start with "/"`)
  return pointer.slice(1).split('/').map((token) => {
    if (/~(?![01])/.test(token)) throw new InvalidPatchError(`invalid JSON pointer "${pointer}": "~" must be followed by 0 or 1`)
    // RFC 6901 order: "~1" first, so "~01" decodes to "~1" and not "/".
    return token.replaceAll('~1', '/').replaceAll('~0', '~')
  })
}

function applyOperation(document: unknown, operation: JsonPatchOperation): unknown {
  switch (operation.op) {
    case 'add':
      return addAt(document, operation.path, operation.pointer, cloneJson(operation.value))
    case 'remove':
      removeAt(document, operation.path, operation.pointer)
      return document
    case 'replace':
      valueAt(document, operation.path, operation.pointer)
      if (operation.path.length > 0) removeAt(document, operation.path, operation.pointer)
      return addAt(document, operation.path, operation.pointer, cloneJson(operation.value))
    case 'test':
      if (!jsonEqual(valueAt(document, operation.path, operation.pointer), operation.value)) {
        throw new InvalidPatchError(`test operation failed: the value at "${operation.pointer}" is not ${JSON.stringify(operation.value)}`)
      }
      return document
    case 'move': {
      if (operation.pointer.startsWith(`${operation.fromPointer}/`)) {
        throw new InvalidPatchError(`cannot move "${operation.fromPointer}" into its own child "${operation.pointer}"`)
      }
      const value = valueAt(document, operation.from, operation.fromPointer)
      if (operation.from.length > 0) removeAt(document, operation.from, operation.fromPointer)
      return addAt(document, operation.path, operation.pointer, value)
    }
    case 'copy':
      return addAt(document, operation.path, operation.pointer, cloneJson(valueAt(document, operation.from, operation.fromPointer)))
  }
}

function arrayIndex(token: string, length: number, pointer: string): number {
  const index = /^(0|[1-9][0-9]*)$/.test(token) ? Number(token) : Number.NaN
  if (!(index < length)) throw new InvalidPatchError(`path "${pointer}" does not exist: no array index "${token}"`)
  return index
}

function valueAt(document: unknown, path: string[], pointer: string): unknown {
  let current = document
  for (const token of path) {
    if (Array.isArray(current)) current = current[arrayIndex(token, current.length, pointer)]
    else if (isObject(current) && Object.hasOwn(current, token)) current = current[token]
    else throw new InvalidPatchError(`path "${pointer}" does not exist`)
  }
  return current
}

function parentOf(document: unknown, path: string[], pointer: string): { parent: unknown; last: string } {
  const last = path[path.length - 1]
  if (last === undefined) throw new InvalidPatchError('the document root has no parent')
  return { parent: valueAt(document, path.slice(0, -1), pointer), last }
}

function addAt(document: unknown, path: string[], pointer: string, value: unknown): unknown {
  if (path.length === 0) return value
  const { parent, last } = parentOf(document, path, pointer)
  if (Array.isArray(parent)) {
    parent.splice(last === '-' ? parent.length : arrayIndex(last, parent.length + 1, pointer), 0, value)
  } else if (isObject(parent)) {
    setOwn(parent, last, value)
  } else {
    throw new InvalidPatchError(`path "${pointer}": cannot add a member to a ${parent === null ? 'null' : typeof parent}`)
  }
  return document
}

function removeAt(document: unknown, path: string[], pointer: string): void {
  if (path.length === 0) throw new InvalidPatchError('cannot remove the document root')
  const { parent, last } = parentOf(document, path, pointer)
  if (Array.isArray(parent)) parent.splice(arrayIndex(last, parent.length, pointer), 1)
  else if (isObject(parent) && Object.hasOwn(parent, last)) delete parent[last]
  else throw new InvalidPatchError(`path "${pointer}" does not exist`)
}

// ---------------------------------------------------------------- RFC 7386 JSON Merge Patch

export function applyMergePatch(original: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return cloneJson(patch)
  const result: JsonObject = isObject(original) ? (cloneJson(original) as JsonObject) : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key]
    else setOwn(result, key, applyMergePatch(getOwn(result, key), value))
  }
  return result
}

// ---------------------------------------------------------------- strategic merge patch

const DIRECTIVE = '$patch'
const RETAIN_KEYS = '$retainKeys'
const SET_ELEMENT_ORDER = '$setElementOrder/'
const DELETE_FROM_PRIMITIVE_LIST = '$deleteFromPrimitiveList/'
const DROP = Symbol('drop the field')

interface MergeContext {
  readonly path: string
  readonly schema: PatchSchema
}

export function strategicMergePatch(original: unknown, patch: unknown, schema: PatchSchema = defaultPatchSchema): unknown {
  if (!isObject(patch)) throw new InvalidPatchError('a strategic merge patch must be a JSON object')
  if (!isObject(original)) throw new InvalidPatchError('a strategic merge patch applies to a JSON object')
  return mergeMap(cloneJson(original) as JsonObject, patch, { path: '', schema })
}

const childContext = (context: MergeContext, key: string): MergeContext => ({ ...context, path: context.path === '' ? key : `${context.path}.${key}` })
const elementContext = (context: MergeContext): MergeContext => ({ ...context, path: `${context.path}[]` })
const where = (context: MergeContext): string => (context.path === '' ? 'the object' : `"${context.path}"`)

function listStrategy(context: MergeContext): ListPatchStrategy {
  return Object.hasOwn(context.schema, context.path) ? (context.schema[context.path] as ListPatchStrategy) : { strategy: 'replace' }
}

/** Merges `patch` into `original` (a private copy, edited in place); `patch` is only read. */
function mergeMap(original: JsonObject, patch: JsonObject, context: MergeContext): JsonObject {
  const directive = getOwn(patch, DIRECTIVE)
  if (directive !== undefined) return mapDirective(directive, patch, context)
  applyRetainKeys(original, patch)
  const ordered = applyElementOrders(original, patch, context)
  for (const [key, value] of Object.entries(patch)) {
    if (key === RETAIN_KEYS || key.startsWith(SET_ELEMENT_ORDER) || ordered.has(key)) continue
    if (key.startsWith(DELETE_FROM_PRIMITIVE_LIST)) {
      deleteFromPrimitiveList(original, directiveField(key, DELETE_FROM_PRIMITIVE_LIST), value)
      continue
    }
    const merged = value === null ? DROP : mergeValue(getOwn(original, key), value, childContext(context, key))
    if (merged === DROP) delete original[key]
    else setOwn(original, key, merged)
  }
  return original
}

function mergeValue(current: unknown, patch: unknown, context: MergeContext): unknown {
  if (isObject(patch)) {
    if (isObject(current)) return mergeMap(current, patch, context)
    // Nothing (or something of another type) to merge into: the patch stands alone, minus its directives.
    return getOwn(patch, DIRECTIVE) === 'delete' ? DROP : mergeMap({}, patch, context)
  }
  if (Array.isArray(patch)) return mergeList(Array.isArray(current) ? current : [], patch, context)
  return patch
}

function mapDirective(directive: unknown, patch: JsonObject, context: MergeContext): JsonObject {
  if (directive === 'delete') return {}
  if (directive !== 'replace') throw new InvalidPatchError(`unknown patch type ${JSON.stringify(directive)} in ${where(context)}`)
  const rest: JsonObject = {}
  for (const [key, value] of Object.entries(patch)) if (key !== DIRECTIVE) setOwn(rest, key, value)
  return mergeMap({}, rest, context)
}

function directiveField(key: string, prefix: string): string {
  const field = key.slice(prefix.length)
  if (field === '') throw new InvalidPatchError(`directive "${key}" names no field`)
  return field
}

// $retainKeys: fields of the original missing from the list are cleared (kubectl sends it for
// union types such as a Deployment's spec.strategy, so switching type drops the old fields).
function applyRetainKeys(original: JsonObject, patch: JsonObject): void {
  const retained = getOwn(patch, RETAIN_KEYS)
  if (retained === undefined) return
  if (!Array.isArray(retained) || !retained.every((key) => typeof key === 'string')) {
    throw new InvalidPatchError(`invalid patch format of ${RETAIN_KEYS}: must be a list of field names`)
  }
  for (const [key, value] of Object.entries(patch)) {
    if (value === null || key.startsWith('$') || retained.includes(key)) continue
    throw new InvalidPatchError(`invalid patch format of ${RETAIN_KEYS}: patched field "${key}" is not retained`)
  }
  for (const key of Object.keys(original)) if (!retained.includes(key)) delete original[key]
}

function deleteFromPrimitiveList(original: JsonObject, field: string, values: unknown): void {
  if (!Array.isArray(values)) throw new InvalidPatchError(`invalid patch format of ${DELETE_FROM_PRIMITIVE_LIST}${field}: must be a list`)
  const current = getOwn(original, field)
  if (Array.isArray(current)) setOwn(original, field, current.filter((item) => !values.includes(item)))
}

/** Applies every `$setElementOrder/<field>` of `patch`, merging that field's patch list on the
 * way; returns the fields it handled so the main loop skips them. */
function applyElementOrders(original: JsonObject, patch: JsonObject, context: MergeContext): Set<string> {
  const handled = new Set<string>()
  for (const [key, order] of Object.entries(patch)) {
    if (!key.startsWith(SET_ELEMENT_ORDER)) continue
    const field = directiveField(key, SET_ELEMENT_ORDER)
    if (!Array.isArray(order)) throw new InvalidPatchError(`invalid patch format of ${key}: must be a list`)
    const fieldContext = childContext(context, field)
    const current = getOwn(original, field)
    const patchList = getOwn(patch, field)
    if (patchList !== undefined && !Array.isArray(patchList)) throw new InvalidPatchError(`${key} needs "${field}" to be a list`)
    const live = Array.isArray(current) ? current : undefined
    if (live === undefined && patchList === undefined) continue
    const strategy = listStrategy(fieldContext)
    const mergeKey = strategy.strategy === 'merge' ? (strategy.mergeKey ?? '') : ''
    if (patchList !== undefined) checkOrderCoversPatch(patchList, order, mergeKey, key)
    const merged = patchList === undefined ? (live ?? []) : mergeList(live ?? [], patchList, fieldContext)
    setOwn(original, field, normalizeOrder(merged, order, live ?? [], mergeKey))
    handled.add(field)
  }
  return handled
}

const keyOf = (item: unknown, mergeKey: string): unknown => (mergeKey === '' ? item : isObject(item) ? getOwn(item, mergeKey) : undefined)

function indexOfKey(list: readonly unknown[], item: unknown, mergeKey: string): number {
  const key = keyOf(item, mergeKey)
  return key === undefined ? -1 : list.findIndex((other) => keyOf(other, mergeKey) === key)
}

// As Kubernetes checks: the patch's elements must appear in the order list, in the same order.
function checkOrderCoversPatch(patchList: readonly unknown[], order: readonly unknown[], mergeKey: string, directive: string): void {
  let position = 0
  for (const item of patchList) {
    if (isObject(item) && Object.hasOwn(item, DIRECTIVE)) continue
    while (position < order.length && keyOf(order[position], mergeKey) !== keyOf(item, mergeKey)) position++
    if (position === order.length) throw new InvalidPatchError(`the order of the patch list does not match ${directive}`)
    position++
  }
}

/** Kubernetes' ordering rule: elements named in `order` come in that order; the others keep
 * their relative order and are interleaved where the live list (`serverOrder`) had them. */
function normalizeOrder(merged: readonly unknown[], order: readonly unknown[], serverOrder: readonly unknown[], mergeKey: string): unknown[] {
  const rank = (list: readonly unknown[]) => (a: unknown, b: unknown) => indexOfKey(list, a, mergeKey) - indexOfKey(list, b, mergeKey)
  const named = merged.filter((item) => indexOfKey(order, item, mergeKey) >= 0).sort(rank(order))
  const serverOnly = merged.filter((item) => indexOfKey(order, item, mergeKey) < 0).sort(rank(serverOrder))
  const result: unknown[] = []
  let s = 0
  let n = 0
  while (s < serverOnly.length || n < named.length) {
    if (n === named.length) result.push(serverOnly[s++])
    else if (s === serverOnly.length) result.push(named[n++])
    else {
      const left = indexOfKey(serverOrder, serverOnly[s], mergeKey)
      const right = indexOfKey(serverOrder, named[n], mergeKey)
      result.push(left >= 0 && right >= 0 && left < right ? serverOnly[s++] : named[n++])
    }
  }
  return result
}

function mergeList(current: readonly unknown[], patch: readonly unknown[], context: MergeContext): unknown[] {
  const strategy = listStrategy(context)
  if (strategy.strategy === 'replace') return standaloneElements(patch, context)
  if (current.length === 0 && patch.length === 0) return []
  if (listElementKind(current, patch, context) === 'primitive') {
    // A merged list of primitives is a set union; an empty patch list leaves it as it was.
    const union = [...current, ...patch].filter((item, i, all) => all.indexOf(item) === i)
    return normalizeOrder(union, patch, current, '')
  }
  const mergeKey = strategy.mergeKey
  if (mergeKey === undefined || mergeKey === '') throw new InvalidPatchError(`cannot merge lists without a merge key at ${where(context)}`)
  const { live, regular, replace } = applyListDirectives(current, patch, mergeKey, context)
  if (replace) return standaloneElements(regular, context)
  const merged = [...live]
  for (const element of regular) {
    if (!isObject(element) || getOwn(element, mergeKey) === undefined) {
      throw new InvalidPatchError(`map: ${JSON.stringify(element)} does not contain declared merge key: ${mergeKey}`)
    }
    const index = indexOfKey(merged, element, mergeKey)
    const existing = merged[index]
    merged[index < 0 ? merged.length : index] = mergeMap(isObject(existing) ? existing : {}, element, elementContext(context))
  }
  return normalizeOrder(merged, regular, live, mergeKey)
}

function listElementKind(current: readonly unknown[], patch: readonly unknown[], context: MergeContext): 'object' | 'primitive' {
  const all = [...current, ...patch]
  if (all.some(Array.isArray)) throw new InvalidPatchError(`lists of lists are not supported at ${where(context)}`)
  const objects = all.filter(isObject).length
  if (objects !== 0 && objects !== all.length) throw new InvalidPatchError(`list element types are not identical at ${where(context)}`)
  return objects === 0 ? 'primitive' : 'object'
}

/** `$patch: delete` elements remove their key from the live list; `$patch: replace` makes the
 * rest of the patch list the whole list. */
function applyListDirectives(current: readonly unknown[], patch: readonly unknown[], mergeKey: string, context: MergeContext) {
  let live = current
  let replace = false
  const regular: unknown[] = []
  for (const element of patch) {
    const directive = isObject(element) ? getOwn(element, DIRECTIVE) : undefined
    if (directive === undefined) regular.push(element)
    else if (directive === 'replace') replace = true
    else if (directive === 'delete') {
      const key = keyOf(element, mergeKey)
      if (key === undefined) throw new InvalidPatchError(`map: ${JSON.stringify(element)} does not contain declared merge key: ${mergeKey}`)
      live = live.filter((item) => keyOf(item, mergeKey) !== key)
    } else if (directive === 'merge') throw new InvalidPatchError('merging lists cannot yet be specified in the patch')
    else throw new InvalidPatchError(`unknown patch type ${JSON.stringify(directive)} in list ${where(context)}`)
  }
  return { live, regular, replace }
}

// Elements that become the list as they are: directive-only elements go, nested directives and nulls are resolved.
function standaloneElements(patch: readonly unknown[], context: MergeContext): unknown[] {
  return patch
    .filter((element) => !(isObject(element) && Object.hasOwn(element, DIRECTIVE)))
    .map((element) => (isObject(element) ? mergeMap({}, element, elementContext(context)) : cloneJson(element)))
}

// ---------------------------------------------------------------- schemas of the kinds we serve

const mergeBy = (mergeKey: string): ListPatchStrategy => ({ strategy: 'merge', mergeKey })
const mergeAsSet: ListPatchStrategy = { strategy: 'merge' }
const replaceWhole: ListPatchStrategy = { strategy: 'replace' }

/** Re-roots a schema under `prefix`, e.g. a PodSpec's keys under `spec.template.spec`. */
export function schemaAt(prefix: string, schema: PatchSchema): PatchSchema {
  return Object.fromEntries(Object.entries(schema).map(([path, strategy]) => [`${prefix}.${path}`, strategy]))
}

/** Combines schemas; a later schema wins on a path both name. */
export function combineSchemas(...schemas: PatchSchema[]): PatchSchema {
  return Object.assign({}, ...schemas) as PatchSchema
}

/** From the patchStrategy/patchMergeKey tags of core/v1 Container. */
export const containerMergeKeys: PatchSchema = {
  ports: mergeBy('containerPort'),
  env: mergeBy('name'),
  volumeMounts: mergeBy('mountPath'),
  volumeDevices: mergeBy('devicePath'),
}

/** From the tags of core/v1 PodSpec, relative to the spec. */
export const podSpecMergeKeys: PatchSchema = combineSchemas(
  {
    containers: mergeBy('name'),
    initContainers: mergeBy('name'),
    ephemeralContainers: mergeBy('name'),
    volumes: mergeBy('name'),
    imagePullSecrets: mergeBy('name'),
    hostAliases: mergeBy('ip'),
    topologySpreadConstraints: mergeBy('topologyKey'),
    tolerations: replaceWhole,
  },
  schemaAt('containers[]', containerMergeKeys),
  schemaAt('initContainers[]', containerMergeKeys),
  schemaAt('ephemeralContainers[]', containerMergeKeys),
)

export const objectMetaMergeKeys: PatchSchema = { ownerReferences: mergeBy('uid'), finalizers: mergeAsSet }
export const serviceSpecMergeKeys: PatchSchema = { ports: mergeBy('port') }
export const conditionsMergeKeys: PatchSchema = { conditions: mergeBy('type') }

const podTemplateMergeKeys = combineSchemas(schemaAt('template.metadata', objectMetaMergeKeys), schemaAt('template.spec', podSpecMergeKeys))
const metadata = schemaAt('metadata', objectMetaMergeKeys)
const controller = combineSchemas(metadata, schemaAt('spec', podTemplateMergeKeys), schemaAt('status', conditionsMergeKeys))

/** Per kind; a kind added later registers its schema here. */
export const patchSchemaByKind: Readonly<Record<string, PatchSchema>> = {
  Pod: combineSchemas(metadata, schemaAt('spec', podSpecMergeKeys), schemaAt('status', conditionsMergeKeys)),
  ReplicationController: controller,
  ReplicaSet: controller,
  Deployment: controller,
  DaemonSet: controller,
  StatefulSet: controller,
  Job: controller,
  CronJob: combineSchemas(metadata, schemaAt('spec.jobTemplate', combineSchemas(metadata, schemaAt('spec', podTemplateMergeKeys)))),
  Service: combineSchemas(metadata, schemaAt('spec', serviceSpecMergeKeys), schemaAt('status', conditionsMergeKeys)),
  Endpoints: combineSchemas(metadata, { subsets: replaceWhole }),
  Node: combineSchemas(metadata, schemaAt('status', { ...conditionsMergeKeys, addresses: mergeBy('type') })),
  Namespace: metadata,
  Event: metadata,
  ConfigMap: metadata,
  Secret: metadata,
}

/** Every kind's paths at once; they never disagree, as the tests check. */
export const defaultPatchSchema: PatchSchema = combineSchemas(...Object.values(patchSchemaByKind))
