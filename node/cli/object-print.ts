// -o json, -o yaml and -o name, as kubectl prints them: keys in sorted order
// (kubectl prints objects as sorted maps), JSON indented by four spaces, YAML
// 1.1 so that strings such as "yes" or "110" stay quoted, and several objects
// wrapped in a v1 List.
import { stringify } from 'yaml'
import { isJsonObject, type JsonObject } from './manifests.js'
import { kindName, type ResourceInfo } from './resources.js'

export type ObjectFormat = 'json' | 'yaml' | 'name'

export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (!isJsonObject(value)) return value
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, sortKeys(value[k])]),
  )
}

export function listOf(items: unknown[]): JsonObject {
  return { apiVersion: 'v1', items, kind: 'List', metadata: { resourceVersion: '' } }
}

export function renderObject(value: unknown, format: 'json' | 'yaml'): string {
  const sorted = sortKeys(value)
  return format === 'json' ? JSON.stringify(sorted, null, 4) + '\n' : stringify(sorted, { version: '1.1', indentSeq: false, lineWidth: 0 })
}

/** pod/web-1, deployment.apps/web. */
export function nameOf(resource: Pick<ResourceInfo, 'group' | 'kind'>, object: { metadata?: { name?: string } }): string {
  return `${kindName(resource)}/${object.metadata?.name ?? ''}`
}
