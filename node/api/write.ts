// Writes: create, replace, patch (merge, strategic merge, JSON patch), delete
// with propagationPolicy, and the status and scale subresources. Each becomes
// one store command through Raft; dryRun=All stops before proposing.
import { apiVersionOf, type KindDefinition } from '../kinds/kind.js'
import type { ApiObject } from '../kinds/meta.js'
import { readPath, renderLabelMap } from '../kinds/printing.js'
import { refOf, type PropagationPolicy, type StoreCommand } from '../store/commands.js'
import type { ObjectStore } from '../store/object-store.js'
import { applyPatch, patchSchemaByKind } from './patch.js'
import { prepareCreate, prepareUpdate, type FieldValidation, type Prepared } from './prepare.js'
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
}

async function commit(ctx: WriteContext, command: StoreCommand, prepared: Prepared, dryRun: boolean): Promise<WriteResult> {
  if (dryRun) return { object: prepared.object, warnings: prepared.warnings }
  const outcome = singleOutcome(await submit(ctx.submitter, command))
  return { object: outcome.object!, warnings: prepared.warnings }
}

export function createObject(ctx: WriteContext, req: WriteRequest): Promise<WriteResult> {
  const prepared = prepareCreate(req.def, req.body, req.namespace, req.fieldValidation, ctx.nowIso())
  return commit(ctx, { op: 'obj.create', object: prepared.object }, prepared, req.dryRun)
}

/** PUT: replace. A resourceVersion in the body is a precondition (409 Conflict if stale). */
export function replaceObject(ctx: WriteContext, req: WriteRequest, subresource?: 'status'): Promise<WriteResult> {
  const current = getObject(ctx.store, req.def, req.namespace, req.name ?? '')
  const prepared = prepareUpdate(req.def, req.body, current, req.fieldValidation)
  const expect = prepared.object.metadata.resourceVersion
  return commit(ctx, { op: 'obj.update', object: prepared.object, ...(expect === undefined || expect === '' ? {} : { expectResourceVersion: expect }), ...(subresource === undefined ? {} : { subresource }) }, prepared, req.dryRun)
}

/** PATCH: apply the patch to the current object, then replace it only if nothing changed meanwhile. */
export function patchObject(ctx: WriteContext, req: WriteRequest, contentType: string, subresource?: 'status'): Promise<WriteResult> {
  const current = getObject(ctx.store, req.def, req.namespace, req.name ?? '')
  const patched = applyPatch(current, req.body, contentType, patchSchemaByKind[req.def.kind])
  if (!isPlainObject(patched)) throw badRequest('the patch does not produce an object')
  const prepared = prepareUpdate(req.def, patched, current, req.fieldValidation)
  // A patch that set a resourceVersion asks for that precondition; otherwise the one we read.
  const expect = (patched.metadata as { resourceVersion?: string } | undefined)?.resourceVersion ?? current.metadata.resourceVersion
  return commit(ctx, { op: 'obj.update', object: prepared.object, ...(expect === undefined ? {} : { expectResourceVersion: expect }), ...(subresource === undefined ? {} : { subresource }) }, prepared, req.dryRun)
}

export interface DeleteOptions {
  propagationPolicy?: string
  preconditions?: { uid?: string; resourceVersion?: string }
  dryRun: boolean
}

export async function deleteObject(ctx: WriteContext, def: KindDefinition, namespace: string | undefined, name: string, options: DeleteOptions): Promise<ApiObject> {
  const current = getObject(ctx.store, def, namespace, name)
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

/** The autoscaling/v1 Scale view of an object with a scale subresource. */
export function scaleOf(def: KindDefinition, object: ApiObject): Record<string, unknown> {
  const scale = def.subresources.scale!
  const selector = readPath(object, scale.selectorPath)
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name: object.metadata.name, namespace: object.metadata.namespace, uid: object.metadata.uid, resourceVersion: object.metadata.resourceVersion, creationTimestamp: object.metadata.creationTimestamp },
    spec: { replicas: readPath(object, scale.specReplicasPath) ?? 0 },
    status: { replicas: readPath(object, scale.statusReplicasPath) ?? 0, selector: isPlainObject(selector) ? renderLabelMap(selector as Record<string, string>) : '' },
  }
}

/** PUT or PATCH on /scale: set spec.replicas from the Scale, with the Scale's resourceVersion as precondition. */
export async function updateScale(ctx: WriteContext, req: WriteRequest, contentType: string | null): Promise<Record<string, unknown>> {
  const current = getObject(ctx.store, req.def, req.namespace, req.name ?? '')
  const currentScale = scaleOf(req.def, current)
  const scale = contentType === null ? req.body : applyPatch(currentScale, req.body, contentType)
  const replicas = (scale as { spec?: { replicas?: unknown } } | null)?.spec?.replicas
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    throw new StatusError(422, 'Invalid', `Scale.autoscaling "${req.name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`)
  }
  const expect = (scale as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion ?? current.metadata.resourceVersion
  const updated = structuredClone(current)
  setPath(updated, req.def.subresources.scale!.specReplicasPath, replicas)
  const result = await commit(ctx, { op: 'obj.update', object: updated, ...(expect === undefined ? {} : { expectResourceVersion: expect }) }, { object: updated, warnings: [] }, req.dryRun)
  return scaleOf(req.def, result.object)
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
