// Which list fields a strategic merge patch merges (and by which key) for the kinds
// we serve, from the patchStrategy/patchMergeKey tags of the Kubernetes types.

/** How a list field is patched: merged element by element (by `mergeKey` for lists of
 * objects, as a set for lists of primitives), or replaced whole (the default). */
export type ListPatchStrategy = { readonly strategy: 'merge'; readonly mergeKey?: string } | { readonly strategy: 'replace' }

/** List strategies by field path: field names joined by '.', with '[]' after a list whose
 * elements the path descends into, e.g. `spec.containers[].ports`. Unlisted lists are replaced. */
export type PatchSchema = Readonly<Record<string, ListPatchStrategy>>

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
