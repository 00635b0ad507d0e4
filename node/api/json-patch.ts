// RFC 6902 JSON Patch and RFC 7386 JSON Merge Patch. Pure: inputs are never mutated.
import { cloneJson, getOwn, isObject, jsonEqual, setOwn, type JsonObject } from './json-values.js'
import { InvalidPatchError } from './patch-errors.js'

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

export function applyMergePatch(original: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return cloneJson(patch)
  const result: JsonObject = isObject(original) ? (cloneJson(original) as JsonObject) : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key]
    else setOwn(result, key, applyMergePatch(getOwn(result, key), value))
  }
  return result
}
