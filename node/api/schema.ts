// A small schema language for API objects. One definition per kind serves
// three purposes: validation with field-level causes (as Kubernetes reports
// them), strict detection of unknown fields, and the OpenAPI documents that
// let kubectl leave validation to us. Nothing is described twice.

export type FieldCauseReason =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueNotSupported'
  | 'FieldValueTypeMismatch'
  | 'FieldValueDuplicate'
  | 'FieldValueTooLong'
  | 'FieldValueForbidden'

export interface FieldCause {
  reason: FieldCauseReason
  field: string
  message: string
}

export type Schema =
  | { type: 'string'; enum?: readonly string[]; pattern?: RegExp; patternHint?: string; maxLength?: number; description?: string }
  | { type: 'integer'; minimum?: number; maximum?: number; description?: string }
  | { type: 'number'; description?: string }
  | { type: 'boolean'; description?: string }
  | { type: 'int-or-string'; description?: string }
  | { type: 'quantity'; description?: string }
  | { type: 'array'; items: Schema; description?: string }
  | { type: 'map'; values: Schema; description?: string }
  | { type: 'object'; properties: Record<string, Schema>; required?: readonly string[]; description?: string }
  | { type: 'any'; description?: string }

/** Constructors, so definitions read like the objects they describe. */
export const s = {
  string: (opts: Omit<Extract<Schema, { type: 'string' }>, 'type'> = {}): Schema => ({ type: 'string', ...opts }),
  integer: (opts: Omit<Extract<Schema, { type: 'integer' }>, 'type'> = {}): Schema => ({ type: 'integer', ...opts }),
  number: (): Schema => ({ type: 'number' }),
  boolean: (): Schema => ({ type: 'boolean' }),
  intOrString: (): Schema => ({ type: 'int-or-string' }),
  quantity: (): Schema => ({ type: 'quantity' }),
  array: (items: Schema): Schema => ({ type: 'array', items }),
  map: (values: Schema): Schema => ({ type: 'map', values }),
  object: (properties: Record<string, Schema>, required: readonly string[] = []): Schema => ({ type: 'object', properties, required }),
  any: (): Schema => ({ type: 'any' }),
}

/** A Kubernetes quantity: 100m, 1.5, 128Mi, 1e3, 2G ... */
const quantityPattern = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/

export interface ValidationResult {
  causes: FieldCause[]
  /** Fields present in the object but not in the schema, as paths. */
  unknownFields: string[]
}

function typeName(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}

function mismatch(path: string, expected: string, value: unknown): FieldCause {
  return { reason: 'FieldValueTypeMismatch', field: path, message: `Invalid value: ${JSON.stringify(value)?.slice(0, 80)}: ${path} in body must be of type ${expected}: "${typeName(value)}"` }
}

export function validate(schema: Schema, value: unknown, path: string, out: ValidationResult): void {
  switch (schema.type) {
    case 'any':
      return
    case 'string':
      return validateString(schema, value, path, out)
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) return void out.causes.push(mismatch(path, 'integer', value))
      if (schema.minimum !== undefined && value < schema.minimum) out.causes.push({ reason: 'FieldValueInvalid', field: path, message: `Invalid value: ${value}: must be greater than or equal to ${schema.minimum}` })
      if (schema.maximum !== undefined && value > schema.maximum) out.causes.push({ reason: 'FieldValueInvalid', field: path, message: `Invalid value: ${value}: must be less than or equal to ${schema.maximum}` })
      return
    case 'number':
      if (typeof value !== 'number') out.causes.push(mismatch(path, 'number', value))
      return
    case 'boolean':
      if (typeof value !== 'boolean') out.causes.push(mismatch(path, 'boolean', value))
      return
    case 'int-or-string':
      if (!(typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value)))) out.causes.push(mismatch(path, 'integer or string', value))
      return
    case 'quantity':
      if (!((typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && quantityPattern.test(value)))) {
        out.causes.push({ reason: 'FieldValueInvalid', field: path, message: `Invalid value: ${JSON.stringify(value)}: must be a quantity such as 100m, 0.5, 128Mi or 1G` })
      }
      return
    case 'array':
      if (!Array.isArray(value)) return void out.causes.push(mismatch(path, 'array', value))
      value.forEach((item, k) => validate(schema.items, item, `${path}[${k}]`, out))
      return
    case 'map':
      if (!isPlainObject(value)) return void out.causes.push(mismatch(path, 'object', value))
      for (const [k, v] of Object.entries(value)) validate(schema.values, v, `${path}[${k}]`, out)
      return
    case 'object':
      return validateObject(schema, value, path, out)
  }
}

function validateString(schema: Extract<Schema, { type: 'string' }>, value: unknown, path: string, out: ValidationResult): void {
  if (typeof value !== 'string') return void out.causes.push(mismatch(path, 'string', value))
  if (schema.enum !== undefined && !schema.enum.includes(value)) {
    out.causes.push({ reason: 'FieldValueNotSupported', field: path, message: `Unsupported value: "${value}": supported values: ${schema.enum.map((e) => `"${e}"`).join(', ')}` })
  }
  if (schema.maxLength !== undefined && value.length > schema.maxLength) {
    out.causes.push({ reason: 'FieldValueTooLong', field: path, message: `Too long: may not be longer than ${schema.maxLength}` })
  }
  if (schema.pattern !== undefined && !schema.pattern.test(value)) {
    out.causes.push({ reason: 'FieldValueInvalid', field: path, message: `Invalid value: "${value}": ${schema.patternHint ?? `must match ${schema.pattern.source}`}` })
  }
}

function validateObject(schema: Extract<Schema, { type: 'object' }>, value: unknown, path: string, out: ValidationResult): void {
  if (!isPlainObject(value)) return void out.causes.push(mismatch(path, 'object', value))
  for (const field of schema.required ?? []) {
    if (value[field] === undefined || value[field] === null) out.causes.push({ reason: 'FieldValueRequired', field: join(path, field), message: 'Required value' })
  }
  for (const [k, v] of Object.entries(value)) {
    const child = schema.properties[k]
    if (child === undefined) {
      out.unknownFields.push(join(path, k))
      continue
    }
    if (v === null) continue // null means "not set", as in Kubernetes' JSON decoding
    validate(child, v, join(path, k), out)
  }
}

function join(path: string, field: string): string {
  return path === '' ? field : `${path}.${field}`
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Drop fields the schema does not know (fieldValidation Ignore/Warn), returning a copy. */
export function pruneUnknown(schema: Schema, value: unknown): unknown {
  if (schema.type === 'object' && isPlainObject(value)) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      const child = schema.properties[k]
      if (child !== undefined) out[k] = pruneUnknown(child, v)
    }
    return out
  }
  if (schema.type === 'array' && Array.isArray(value)) return value.map((v) => pruneUnknown(schema.items, v))
  if (schema.type === 'map' && isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, pruneUnknown(schema.values, v)]))
  return value
}

/** How a list merges in a strategic merge patch (from the patch module's per-kind table, by path). */
export type ListMergeStrategies = Readonly<Record<string, { readonly strategy: 'merge'; readonly mergeKey?: string } | { readonly strategy: 'replace' }>>

/**
 * The OpenAPI v3 form of a schema (for /openapi/v3). Lists merged by a key
 * carry x-kubernetes-patch-merge-key: without it kubectl apply treats them as
 * atomic, resends them whole and reports "configured" for an unchanged object.
 */
export function toOpenApi(schema: Schema, lists: ListMergeStrategies = {}, path = ''): Record<string, unknown> {
  const described = (o: Record<string, unknown>): Record<string, unknown> => (schema.description === undefined ? o : { ...o, description: schema.description })
  switch (schema.type) {
    case 'any':
      return described({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true })
    case 'string':
      return described({ type: 'string', ...(schema.enum === undefined ? {} : { enum: [...schema.enum] }), ...(schema.maxLength === undefined ? {} : { maxLength: schema.maxLength }) })
    case 'integer':
      return described({ type: 'integer', format: 'int64', ...(schema.minimum === undefined ? {} : { minimum: schema.minimum }) })
    case 'number':
      return described({ type: 'number', format: 'double' })
    case 'boolean':
      return described({ type: 'boolean' })
    case 'int-or-string':
      return described({ 'x-kubernetes-int-or-string': true })
    case 'quantity':
      return described({ 'x-kubernetes-int-or-string': true, description: 'A quantity such as 100m, 0.5, 128Mi or 1G' })
    case 'array':
      return described({ type: 'array', items: toOpenApi(schema.items, lists, `${path}[]`), ...listExtensions(lists[path]) })
    case 'map':
      return described({ type: 'object', additionalProperties: toOpenApi(schema.values, lists, `${path}[]`) })
    case 'object': {
      const properties = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, toOpenApi(v, lists, path === '' ? k : `${path}.${k}`)]))
      return described({ type: 'object', properties, ...(schema.required?.length ? { required: [...schema.required] } : {}) })
    }
  }
}

function listExtensions(strategy: ListMergeStrategies[string] | undefined): Record<string, unknown> {
  if (strategy === undefined || strategy.strategy !== 'merge') return {}
  if (strategy.mergeKey === undefined) return { 'x-kubernetes-patch-strategy': 'merge', 'x-kubernetes-list-type': 'set' }
  return { 'x-kubernetes-patch-strategy': 'merge', 'x-kubernetes-patch-merge-key': strategy.mergeKey, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': [strategy.mergeKey] }
}
