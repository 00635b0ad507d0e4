// What the store and the API need to know about a kind. Adding a kind (apps/v1
// Deployment, say) is one registration: names, schema, defaults, extra
// validation, the fields it can be selected by, and the columns kubectl shows.
import type { FieldCause, Schema } from '../api/schema.js'
import type { ApiObject } from './meta.js'

export interface PrinterColumn {
  name: string
  type: 'string' | 'integer' | 'number' | 'date'
  /** 0: always shown; 1: only with -o wide. */
  priority: 0 | 1
  description: string
  value: (object: ApiObject, context: PrintContext) => string | number
}

/** What some columns need beyond the object (the events of a pod, the time now). */
export interface PrintContext {
  nowMs: number
}

export interface ScaleSubresource {
  /** Dotted paths into the object. */
  specReplicasPath: string
  statusReplicasPath: string
  /** Where the selector lives, rendered as a label selector string in the Scale object. */
  selectorPath: string
}

export interface KindDefinition {
  group: string
  version: string
  kind: string
  plural: string
  singular: string
  shortNames: readonly string[]
  categories: readonly string[]
  namespaced: boolean
  /** DNS-1123 'label' (63 characters) or 'subdomain' (253). */
  nameRule: 'label' | 'subdomain'
  schema: Schema
  subresources: { status: boolean; scale?: ScaleSubresource; log?: boolean }
  /** Fields besides metadata.name and metadata.namespace that field selectors may use. */
  fieldSelectors: readonly string[]
  columns: readonly PrinterColumn[]
  /** Fill in what Kubernetes fills in (restartPolicy: Always, protocol: TCP, ...). Mutates. */
  defaults?: (object: ApiObject) => void
  /** Rules the schema cannot express; `old` is the stored object on updates. */
  validate?: (object: ApiObject, old: ApiObject | null) => FieldCause[]
  /** Initial status of a new object (Pods start Pending). */
  initialStatus?: (object: ApiObject) => Record<string, unknown>
  /**
   * Fill in what must be unique cluster-wide (a Service's cluster IP and node
   * ports), when the create or update is applied: from replicated state only,
   * so every peer reaches the same answer. `old` is the stored object on updates.
   */
  allocate?: (object: ApiObject, old: ApiObject | null, ctx: AllocationContext) => AllocationResult
}

/** What an allocation may read: replicated state only. */
export interface AllocationContext {
  /** The Raft index of the entry being applied. */
  index: number
  /** The stored objects of the same kind. */
  existing(): Iterable<ApiObject>
  /** A cluster setting (replicated through the registry). */
  setting(key: string): string | undefined
}

/** The object with what was allocated, or why the write is refused (a 422). */
export type AllocationResult = { object: ApiObject } | { invalid: string; field: string }

export function apiVersionOf(def: Pick<KindDefinition, 'group' | 'version'>): string {
  return def.group === '' ? def.version : `${def.group}/${def.version}`
}

export class UnknownKindError extends Error {
  override readonly name = 'UnknownKindError'
}

export class KindRegistry {
  private readonly byKindKey = new Map<string, KindDefinition>()
  private readonly byResourceKey = new Map<string, KindDefinition>()

  register(def: KindDefinition): void {
    this.byKindKey.set(`${apiVersionOf(def)}/${def.kind}`, def)
    this.byResourceKey.set(`${def.group}/${def.version}/${def.plural}`, def)
  }

  all(): KindDefinition[] {
    return [...this.byKindKey.values()]
  }

  /** The kind served at /api/v1/pods, /apis/apps/v1/deployments, ... */
  byResource(group: string, version: string, plural: string): KindDefinition | undefined {
    return this.byResourceKey.get(`${group}/${version}/${plural}`)
  }

  byKind(apiVersion: string, kind: string): KindDefinition | undefined {
    return this.byKindKey.get(`${apiVersion}/${kind}`)
  }

  /** Everything the kind is called by (plural, singular, short names, Kind), for the CLI. */
  resolve(name: string): KindDefinition | undefined {
    const lower = name.toLowerCase()
    return this.all().find((d) => d.plural === lower || d.singular === lower || d.shortNames.includes(lower) || d.kind.toLowerCase() === lower)
  }

  groupVersions(): { group: string; version: string }[] {
    const seen = new Map<string, { group: string; version: string }>()
    for (const d of this.all()) seen.set(`${d.group}/${d.version}`, { group: d.group, version: d.version })
    return [...seen.values()]
  }
}
