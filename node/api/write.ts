// Writes: create, replace, patch (merge, strategic merge, JSON patch), delete
// with propagationPolicy, and the status and scale subresources. Each becomes
// one store command through Raft; dryRun=All stops before proposing.
import { apiVersionOf, type KindDefinition } from '../kinds/kind.js'
import type { ApiObject } from '../kinds/meta.js'
import { readPath } from '../kinds/printing.js'
import { refOf, type PropagationPolicy, type StoreCommand } from '../store/commands.js'
import type { ObjectStore } from '../store/object-store.js'
import { applyPatch, patchSchemaByKind } from './patch.js'
import { prepareCreate, prepareUpdate, type FieldValidation, type Prepared } from './prepare.js'
import { jsonEqual } from './json-values.js'
import { selectorFromLabelSelector, selectorFromMap, type LabelSelector } from './label-selectors.js'
import { isPlainObject } from './schema.js'
import { StatusError, badRequest } from './status.js'
import { getObject } from './read.js'
import { singleOutcome, submit, type Submitter } from './submit.js'

export interface WriteRequest {
  def: KindDefinition
  namespace?: string
  name?: string
  body: unknown
  fieldValidation: FieldValidation
  dryRun: boolean
}

export interface WriteResult {
  object: ApiObject
  warnings: string[]
}

export interface WriteContext {
  store: ObjectStore
  submitter: Submitter
  nowIso: () => string
  /** Waits until this replica has applied everything committed when it was called (a ReadIndex round). */
  linearizableRead?: () => Promise<void>
}

/**
 * The object a write starts from. This replica may lag the leader (a peer just restarted, or a write
 * acknowledged through another peer): before answering 404 it catches up once and looks again.
 */
async function currentObject(ctx: WriteContext, def: KindDefinition, namespace: string | undefined, name: string): Promise<ApiObject> {
  try {
    return getObject(ctx.store, def, namespace, name)
  } catch (err) {
    if (ctx.linearizableRead === undefined || !(err instanceof StatusError && err.code === 404)) throw err
    await ctx.linearizableRead()
    return getObject(ctx.store, def, namespace, name)
  }
}

async function commit(ctx: WriteContext, command: StoreCommand, prepared: Prepared, dryRun: boolean, current?: ApiObject): Promise<WriteResult> {
  if (dryRun) return { object: prepared.object, warnings: prepared.warnings }
  // As Kubernetes does: an update that changes nothing writes nothing, so the resourceVersion stays and no watch fires.
  if (current !== undefined && command.op === 'obj.update' && (command.expectResourceVersion === undefined || command.expectResourceVersion === current.metadata.resourceVersion) && sameExceptVersion(prepared.object, current)) {
    return { object: current, warnings: prepared.warnings }
  }
  const outcome = singleOutcome(await submit(ctx.submitter, command))
  return { object: outcome.object!, warnings: prepared.warnings }
}

function sameExceptVersion(a: ApiObject, b: ApiObject): boolean {
  const strip = (o: ApiObject): ApiObject => ({ ...o, metadata: { ...o.metadata, resourceVersion: '' } })
  return jsonEqual(strip(a), strip(b))
}

export function createObject(ctx: WriteContext, req: WriteRequest): Promise<WriteResult> {
  const prepared = prepareCreate(req.def, req.body, req.namespace, req.fieldValidation, ctx.nowIso())
  return commit(ctx, { op: 'obj.create', object: prepared.object }, prepared, req.dryRun)
}

/** PUT: replace. A resourceVersion in the body is a precondition (409 Conflict if stale). */
export async function replaceObject(ctx: WriteContext, req: WriteRequest, subresource?: 'status'): Promise<WriteResult> {
  const current = await currentObject(ctx, req.def, req.namespace, req.name ?? '')
  const prepared = prepareUpdate(req.def, req.body, current, req.fieldValidation)
  const expect = prepared.object.metadata.resourceVersion
  return commit(ctx, { op: 'obj.update', object: prepared.object, ...(expect === undefined || expect === '' ? {} : { expectResourceVersion: expect }), ...(subresource === undefined ? {} : { subresource }) }, prepared, req.dryRun, current)
}

/** PATCH: apply the patch to the current object, then replace it only if nothing changed meanwhile. */
/** Writes that asked for no resourceVersion retry a conflict against the newest object, as Kubernetes does for patches. */
const conflictRetriesMax = 5

async function retryingConflicts<T>(ctx: WriteContext, asksForVersion: boolean, attempt: () => Promise<T>): Promise<T> {
  for (let k = 0; ; k++) {
    try {
      return await attempt()
    } catch (err) {
      const conflict = err instanceof StatusError && err.code === 409 && err.reason === 'Conflict'
      if (!conflict || asksForVersion || k + 1 >= conflictRetriesMax) throw err
      // The conflict may come from this replica lagging: the retry must start from the newest object.
      await ctx.linearizableRead?.()
    }
  }
}

function bodyVersion(body: unknown): string | undefined {
  return isPlainObject(body) && isPlainObject(body.metadata) && typeof body.metadata.resourceVersion === 'string' ? body.metadata.resourceVersion : undefined
}

export function patchObject(ctx: WriteContext, req: WriteRequest, contentType: string, subresource?: 'status'): Promise<WriteResult> {
  // A JSON patch may test or set the version itself; only merge patches without one are retried.
  const asksForVersion = bodyVersion(req.body) !== undefined || Array.isArray(req.body)
  return retryingConflicts(ctx, asksForVersion, () => patchOnce(ctx, req, contentType, subresource))
}

async function patchOnce(ctx: WriteContext, req: WriteRequest, contentType: string, subresource?: 'status'): Promise<WriteResult> {
  const current = await currentObject(ctx, req.def, req.namespace, req.name ?? '')
  const patched = applyPatch(current, req.body, contentType, patchSchemaByKind[req.def.kind])
  if (!isPlainObject(patched)) throw badRequest('the patch does not produce an object')
  const prepared = prepareUpdate(req.def, patched, current, req.fieldValidation)
  // A patch that set a resourceVersion asks for that precondition; otherwise the one we read.
  const expect = (patched.metadata as { resourceVersion?: string } | undefined)?.resourceVersion ?? current.metadata.resourceVersion
  return commit(ctx, { op: 'obj.update', object: prepared.object, ...(expect === undefined ? {} : { expectResourceVersion: expect }), ...(subresource === undefined ? {} : { subresource }) }, prepared, req.dryRun, current)
}

export interface DeleteOptions {
  propagationPolicy?: string
  preconditions?: { uid?: string; resourceVersion?: string }
  dryRun: boolean
}

/** Kinds whose DELETE answers with the object, as Kubernetes' registries with ReturnDeletedObject do; the others answer with a Status. */
const returnsDeletedObject = new Set(['Pod', 'Service', 'Namespace'])

/** The body of a DELETE reply: the object, or a Success Status naming it (client-node decodes `deleteNamespacedReplicationController` as a V1Status). */
export function deletedReply(def: KindDefinition, deleted: ApiObject): unknown {
  if (def.group === '' && returnsDeletedObject.has(def.kind)) return deleted
  const details = { name: deleted.metadata.name, ...(def.group === '' ? {} : { group: def.group }), kind: def.plural, uid: deleted.metadata.uid }
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details }
}

export async function deleteObject(ctx: WriteContext, def: KindDefinition, namespace: string | undefined, name: string, options: DeleteOptions): Promise<ApiObject> {
  const current = await currentObject(ctx, def, namespace, name)
  const policy = options.propagationPolicy ?? 'Background'
  if (!['Background', 'Foreground', 'Orphan'].includes(policy)) throw badRequest(`propagationPolicy must be Background, Foreground or Orphan, not ${policy}`)
  if (options.dryRun) return current
  const command: StoreCommand = {
    op: 'obj.delete',
    ref: refOf(current),
    propagation: policy as PropagationPolicy,
    ...(options.preconditions?.uid === undefined ? {} : { expectUid: options.preconditions.uid }),
    ...(options.preconditions?.resourceVersion === undefined ? {} : { expectResourceVersion: options.preconditions.resourceVersion }),
  }
  return singleOutcome(await submit(ctx.submitter, command)).object!
}

/**
 * The Scale's `status.selector`: the selector in canonical form (keys sorted), as Kubernetes renders it.
 * Core kinds (ReplicationController) hold a label map; every other group's kinds hold a metav1.LabelSelector.
 */
function scaleSelectorText(def: KindDefinition, selector: unknown): string {
  if (!isPlainObject(selector)) return ''
  try {
    return (def.group === '' ? selectorFromMap(selector as Record<string, string>) : selectorFromLabelSelector(selector as LabelSelector)).toString()
  } catch {
    return ''
  }
}

/** The autoscaling/v1 Scale view of an object with a scale subresource. */
export function scaleOf(def: KindDefinition, object: ApiObject): Record<string, unknown> {
  const scale = def.subresources.scale!
  const selector = readPath(object, scale.selectorPath)
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name: object.metadata.name, namespace: object.metadata.namespace, uid: object.metadata.uid, resourceVersion: object.metadata.resourceVersion, creationTimestamp: object.metadata.creationTimestamp },
    spec: { replicas: readPath(object, scale.specReplicasPath) ?? 0 },
    status: { replicas: readPath(object, scale.statusReplicasPath) ?? 0, selector: scaleSelectorText(def, selector) },
  }
}

/** PUT or PATCH on /scale: set spec.replicas from the Scale, with the Scale's resourceVersion as precondition. */
export function updateScale(ctx: WriteContext, req: WriteRequest, contentType: string | null): Promise<Record<string, unknown>> {
  return retryingConflicts(ctx, bodyVersion(req.body) !== undefined || Array.isArray(req.body), () => updateScaleOnce(ctx, req, contentType))
}

async function updateScaleOnce(ctx: WriteContext, req: WriteRequest, contentType: string | null): Promise<Record<string, unknown>> {
  const current = await currentObject(ctx, req.def, req.namespace, req.name ?? '')
  const currentScale = scaleOf(req.def, current)
  const scale = contentType === null ? req.body : applyPatch(currentScale, req.body, contentType)
  checkScaleBody(scale, req.name ?? '', req.fieldValidation)
  const replicas = (scale as { spec?: { replicas?: unknown } } | null)?.spec?.replicas
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    throw new StatusError(422, 'Invalid', `Scale.autoscaling "${req.name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`)
  }
  const expect = (scale as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion ?? current.metadata.resourceVersion
  const updated = structuredClone(current)
  setPath(updated, req.def.subresources.scale!.specReplicasPath, replicas)
  const result = await commit(ctx, { op: 'obj.update', object: updated, ...(expect === undefined ? {} : { expectResourceVersion: expect }) }, { object: updated, warnings: [] }, req.dryRun, current)
  return scaleOf(req.def, result.object)
}

const scaleFields = new Set(['kind', 'apiVersion', 'metadata', 'spec', 'status'])

/** A Scale body must be a Scale (the kind of the subresource, not of its object) for the object in the URL. */
function checkScaleBody(scale: unknown, name: string, fieldValidation: string): void {
  if (!isPlainObject(scale)) throw badRequest('the body of a scale request must be an autoscaling/v1 Scale object')
  const { kind, apiVersion, metadata } = scale as { kind?: unknown; apiVersion?: unknown; metadata?: { name?: unknown } }
  if ((kind !== undefined && kind !== 'Scale') || (apiVersion !== undefined && apiVersion !== 'autoscaling/v1')) {
    throw badRequest(`${String(kind)} in version "${String(apiVersion)}" cannot be handled as a Scale: the scale subresource takes kind Scale, apiVersion autoscaling/v1`)
  }
  if (metadata?.name !== undefined && metadata.name !== name) throw badRequest(`the name of the object (${String(metadata.name)}) does not match the name on the URL (${name})`)
  const unknown = Object.keys(scale).filter((k) => !scaleFields.has(k))
  if (unknown.length > 0 && fieldValidation === 'Strict') throw badRequest(`strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(', ')}`)
}

function setPath(object: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.')
  let node = object
  for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>
  node[parts[parts.length - 1]!] = value
}

export function expectedApiVersion(def: KindDefinition): string {
  return apiVersionOf(def)
}
