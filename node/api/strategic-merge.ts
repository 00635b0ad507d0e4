// Strategic merge patch as the Kubernetes API server applies it: lists merged by key
// where the schema says so, and the $patch, $retainKeys, $setElementOrder and
// $deleteFromPrimitiveList directives. Pure: inputs are never mutated.
import { cloneJson, getOwn, isObject, jsonEqual, setOwn, type JsonObject } from './json-values.js'
import { InvalidPatchError } from './patch-errors.js'
import { defaultPatchSchema, type ListPatchStrategy, type PatchSchema } from './patch-schemas.js'

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
