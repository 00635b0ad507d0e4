// OpenAPI documents generated from the same schemas that validate objects.
// /openapi/v3 lists one document per group-version; each declares, on every
// kind's PATCH operation, the fieldValidation parameter, which is what makes
// kubectl send fieldValidation=Strict and leave validation to us.
// /openapi/v2 is an empty protobuf document: kubectl 1.27 insists on fetching
// it before create/apply, and an empty Document parses.
import { createHash } from 'node:crypto'
import type { KindDefinition, KindRegistry } from '../kinds/kind.js'
import { patchSchemaByKind } from './patch.js'
import { toOpenApi } from './schema.js'

export const openApiV2ContentType = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf'

function groupVersionPath(group: string, version: string): string {
  return group === '' ? `api/${version}` : `apis/${group}/${version}`
}

function schemaName(def: KindDefinition): string {
  return `io.shoal.${def.group === '' ? 'core' : def.group}.${def.version}.${def.kind}`
}

const queryParameters = ['fieldValidation', 'fieldManager', 'dryRun', 'pretty'].map((name) => ({ name, in: 'query', schema: { type: 'string', uniqueItems: true } }))

function operations(def: KindDefinition): Record<string, unknown> {
  const gvk = { group: def.group, version: def.version, kind: def.kind }
  const ref = { content: { 'application/json': { schema: { $ref: `#/components/schemas/${schemaName(def)}` } } } }
  const op = (verb: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    operationId: `${verb}${def.kind}`,
    'x-kubernetes-group-version-kind': gvk,
    'x-kubernetes-action': verb,
    parameters: queryParameters,
    responses: { '200': { description: 'OK', ...ref } },
    ...extra,
  })
  const base = `/${groupVersionPath(def.group, def.version)}${def.namespaced ? '/namespaces/{namespace}' : ''}/${def.plural}`
  const patchBody = { requestBody: { content: Object.fromEntries(['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json'].map((t) => [t, { schema: { type: 'object' } }])) } }
  return {
    [base]: { get: op('list'), post: op('create', { requestBody: ref }) },
    [`${base}/{name}`]: { get: op('get'), put: op('replace', { requestBody: ref }), patch: op('patch', patchBody), delete: op('delete') },
  }
}

/** One group-version's document. */
export function openApiV3Document(kinds: KindRegistry, group: string, version: string, shoalVersion: string): Record<string, unknown> | null {
  const defs = kinds.all().filter((d) => d.group === group && d.version === version)
  if (defs.length === 0) return null
  return {
    openapi: '3.0.0',
    info: { title: 'Shoal', version: shoalVersion },
    paths: Object.assign({}, ...defs.map(operations)) as Record<string, unknown>,
    components: {
      schemas: Object.fromEntries(
        defs.map((def) => [schemaName(def), { ...toOpenApi(def.schema, patchSchemaByKind[def.kind]), 'x-kubernetes-group-version-kind': [{ group: def.group, version: def.version, kind: def.kind }] }]),
      ),
    },
  }
}

/** The index: every group-version we serve must be in it, or kubectl 1.32 looks elsewhere and fails. */
export function openApiV3Index(kinds: KindRegistry, shoalVersion: string): Record<string, unknown> {
  const paths: Record<string, { serverRelativeURL: string }> = {}
  for (const { group, version } of kinds.groupVersions()) {
    const doc = openApiV3Document(kinds, group, version, shoalVersion)
    const hash = createHash('sha256').update(JSON.stringify(doc)).digest('hex').slice(0, 16).toUpperCase()
    paths[groupVersionPath(group, version)] = { serverRelativeURL: `/openapi/v3/${groupVersionPath(group, version)}?hash=${hash}` }
  }
  return { paths }
}

/** Parse /openapi/v3/api/v1 or /openapi/v3/apis/GROUP/VERSION. */
export function openApiV3Target(pathname: string): { group: string; version: string } | null {
  const m = /^\/openapi\/v3\/(?:api\/([^/]+)|apis\/([^/]+)\/([^/]+))$/.exec(pathname)
  if (m === null) return null
  return m[1] !== undefined ? { group: '', version: m[1] } : { group: m[2]!, version: m[3]! }
}
