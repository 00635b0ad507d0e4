// Turning a request body into an object fit to store: the right kind, a valid
// name, no unknown fields (when asked), Kubernetes' defaults, field-level
// validation, and what the server sets (uid, creation time, generation).
// Done where the request arrives, so bad input is refused without a Raft round.
import { randomUUID } from 'node:crypto'
import { apiVersionOf, type KindDefinition } from '../kinds/kind.js'
import { dns1123Label, dns1123LabelHint, dns1123Subdomain, dns1123SubdomainHint, type ApiObject } from '../kinds/meta.js'
import { isPlainObject, pruneUnknown, validate, type FieldCause, type ValidationResult } from './schema.js'
import { StatusError, badRequest, invalid } from './status.js'

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore'

export interface Prepared {
  object: ApiObject
  /** Warnings for the `Warning` response header (unknown fields under Warn). */
  warnings: string[]
}

/** The v1beta1-era form users still have: say what its v1 equivalent is. */
function refuseLegacy(body: Record<string, unknown>): void {
  const legacy = ['id', 'desiredState', 'currentState', 'replicaSelector', 'podTemplate'].filter((k) => k in body)
  if (legacy.length === 0 && !/^v1beta[123]$/.test(String(body.apiVersion ?? ''))) return
  throw badRequest(
    `this looks like a v1beta1 manifest (${legacy.length > 0 ? `fields ${legacy.join(', ')}` : `apiVersion ${String(body.apiVersion)}`}), which Shoal does not accept; ` +
      'write it as apiVersion: v1: "id" becomes metadata.name, "desiredState" becomes spec (pods: spec.containers; controllers: spec.replicas, spec.selector, spec.template), ' +
      '"replicaSelector" becomes spec.selector, "podTemplate" becomes spec.template, and "containerPort"/"hostPort" go under spec.containers[].ports',
  )
}

function checkName(def: KindDefinition, name: string, field: string): FieldCause[] {
  const label = def.nameRule === 'label'
  const max = label ? 63 : 253
  const causes: FieldCause[] = []
  if (!(label ? dns1123Label : dns1123Subdomain).test(name)) causes.push({ reason: 'FieldValueInvalid', field, message: `Invalid value: "${name}": ${label ? dns1123LabelHint : dns1123SubdomainHint}` })
  if (name.length > max) causes.push({ reason: 'FieldValueTooLong', field, message: `Invalid value: "${name}": must be no more than ${max} characters` })
  return causes
}

/** The body as an API object of `def`'s kind in `namespace`, or a 400/422 saying why not. */
function parseBody(def: KindDefinition, body: unknown, namespace: string | undefined): ApiObject {
  if (!isPlainObject(body)) throw badRequest('the request body must be a JSON object')
  refuseLegacy(body)
  const expected = apiVersionOf(def)
  if (body.apiVersion !== undefined && body.apiVersion !== expected) throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${expected})`)
  if (body.kind !== undefined && body.kind !== def.kind) throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${def.kind})`)
  const metadata = isPlainObject(body.metadata) ? body.metadata : {}
  if (namespace !== undefined && metadata.namespace !== undefined && metadata.namespace !== namespace) {
    throw badRequest(`the namespace of the provided object (${String(metadata.namespace)}) does not match the namespace sent on the request (${namespace})`)
  }
  return { ...body, apiVersion: expected, kind: def.kind, metadata: { ...metadata, ...(def.namespaced ? { namespace } : {}) } } as ApiObject
}

function checkSchema(def: KindDefinition, object: ApiObject, fieldValidation: FieldValidation): { object: ApiObject; warnings: string[] } {
  const result: ValidationResult = { causes: [], unknownFields: [] }
  validate(def.schema, object, '', result)
  if (result.unknownFields.length > 0 && fieldValidation === 'Strict') {
    // Worded as Kubernetes' decoder words it, so what users search for matches.
    throw badRequest(`${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: strict decoding error: ${result.unknownFields.map((f) => `unknown field "${f}"`).join(', ')}`)
  }
  if (result.causes.length > 0) {
    // Report every problem at once, as Kubernetes does: the rule checks too, as far as they can run on a malformed object.
    let more: FieldCause[] = []
    try {
      more = [...checkName(def, object.metadata.name ?? '', 'metadata.name'), ...(def.validate?.(object, null) ?? [])]
    } catch {
      // the object is too malformed for them; the schema's causes say enough
    }
    const seen = new Set(result.causes.map((c) => c.field))
    throw invalid(def.kind, object.metadata.name ?? object.metadata.generateName ?? '', [...result.causes, ...more.filter((c) => !seen.has(c.field))], def.group)
  }
  const warnings = fieldValidation === 'Warn' ? result.unknownFields.map((f) => `unknown field "${f}"`) : []
  return { object: pruneUnknown(def.schema, object) as ApiObject, warnings }
}

function semanticCheck(def: KindDefinition, object: ApiObject, old: ApiObject | null): void {
  const causes = [...checkName(def, object.metadata.name ?? '', 'metadata.name'), ...(def.validate?.(object, old) ?? [])]
  for (const [k, v] of Object.entries(object.metadata.labels ?? {})) {
    if (v.length > 63 || !/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(v)) causes.push({ reason: 'FieldValueInvalid', field: `metadata.labels`, message: `Invalid value: "${v}": a valid label value (for ${k}) must be 63 characters or less, and consist of alphanumerics, '-', '_' or '.'` })
  }
  if (causes.length > 0) throw invalid(def.kind, object.metadata.name ?? '', causes, def.group)
}

/** A new object from a POST body. `nowIso` and the random parts come from here, not from the state machine. */
export function prepareCreate(def: KindDefinition, body: unknown, namespace: string | undefined, fieldValidation: FieldValidation, nowIso: string): Prepared {
  const parsed = parseBody(def, body, namespace)
  const { object, warnings } = checkSchema(def, parsed, fieldValidation)
  const meta = object.metadata
  if ((meta.name === undefined || meta.name === '') && meta.generateName !== undefined) meta.name = `${meta.generateName}${randomSuffix()}`
  if (meta.name === undefined || meta.name === '') throw invalid(def.kind, '', [{ reason: 'FieldValueRequired', field: 'metadata.name', message: 'name or generateName is required' }], def.group)
  def.defaults?.(object)
  semanticCheck(def, object, null)
  delete meta.resourceVersion
  delete meta.deletionTimestamp
  meta.uid = randomUUID()
  // Kubernetes' timestamps are RFC 3339 in whole seconds (metav1.Time); clients print them as they are.
  meta.creationTimestamp = nowIso.replace(/\.\d+Z$/, 'Z')
  meta.generation = 1
  if (def.initialStatus !== undefined) object.status = { ...def.initialStatus(object), ...(isPlainObject(object.status) ? object.status : {}) }
  return { object, warnings }
}

/** A replacement for `current` from a PUT body (or a patched copy). */
export function prepareUpdate(def: KindDefinition, body: unknown, current: ApiObject, fieldValidation: FieldValidation): Prepared {
  const parsed = parseBody(def, body, current.metadata.namespace)
  const { object, warnings } = checkSchema(def, parsed, fieldValidation)
  if (object.metadata.name !== current.metadata.name) {
    throw badRequest(`the name of the object (${String(object.metadata.name)}) does not match the name on the URL (${String(current.metadata.name)})`)
  }
  if (object.metadata.uid !== undefined && object.metadata.uid !== current.metadata.uid) {
    throw new StatusError(409, 'Conflict', `Precondition failed: UID in precondition: ${object.metadata.uid}, UID in object meta: ${String(current.metadata.uid)}`)
  }
  def.defaults?.(object)
  semanticCheck(def, object, current)
  return { object, warnings }
}

const alphabet = 'bcdfghjklmnpqrstvwxz2456789'

/** Kubernetes' generateName suffix: five characters from a vowel-free alphabet. */
function randomSuffix(): string {
  let out = ''
  for (let i = 0; i < 5; i++) out += alphabet[Math.floor(Math.random() * alphabet.length)]
  return out
}
