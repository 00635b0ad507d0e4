// One resource request: decode it, do it, encode the answer. Verbs: list,
// watch, get, create, update, patch, delete, deletecollection, and the status,
// scale and log subresources.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ObjectStore } from '../store/object-store.js'
import type { ResourcePath } from './paths.js'
import { getObject, listBody, listObjects, parseLimit, tableOf, wantsTable } from './read.js'
import { decodeProtobufObject, isProtobufContentType } from './protobuf.js'
import { parseBody, readBody, readBodyBytes } from './request.js'
import { isPlainObject } from './schema.js'
import { StatusError, badRequest, methodNotAllowed } from './status.js'
import { serveWatch } from './watch-http.js'
import { createObject, deletedReply, deleteObject, patchObject, replaceObject, scaleOf, updateScale, type WriteContext, type WriteRequest } from './write.js'
import type { FieldValidation } from './prepare.js'
import { podLog, servePodLog, type PodLogSource } from './pod-log.js'

export interface ResourceContext extends WriteContext {
  store: ObjectStore
  /** A ReadIndex round: the local replica is then at least as new as the leader was. */
  linearizableRead: () => Promise<void>
  nowMs: () => number
  /** Container logs (the agent's log service); without it no container can have started. */
  podLogs?: PodLogSource
}

export interface Reply {
  code: number
  body: unknown
  warnings?: string[]
}

function fieldValidation(query: URLSearchParams): FieldValidation {
  const v = query.get('fieldValidation') ?? 'Warn'
  if (v !== 'Strict' && v !== 'Warn' && v !== 'Ignore') throw badRequest(`fieldValidation must be Strict, Warn or Ignore, not ${v}`)
  return v
}

async function body(req: IncomingMessage, query: URLSearchParams): Promise<unknown> {
  if (isProtobufContentType(req.headers['content-type'])) return decodeProtobufObject(await readBodyBytes(req))
  const parsed = parseBody(await readBody(req), req.headers['content-type'])
  if (parsed.duplicateFields.length > 0 && fieldValidation(query) === 'Strict') {
    throw badRequest(`strict decoding error: ${parsed.duplicateFields.map((f) => `duplicate field "${f}"`).join(', ')}`)
  }
  return parsed.value
}

function writeRequest(path: ResourcePath, value: unknown, query: URLSearchParams): WriteRequest {
  return {
    def: path.def,
    ...(path.namespace === undefined ? {} : { namespace: path.namespace }),
    ...(path.name === undefined ? {} : { name: path.name }),
    body: value,
    fieldValidation: fieldValidation(query),
    dryRun: query.getAll('dryRun').includes('All'),
  }
}

/** Handle a resource request; returns a reply, or null when it streamed a watch itself. */
export async function handleResource(ctx: ResourceContext, path: ResourcePath, req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<Reply | null> {
  const method = req.method ?? 'GET'
  if (path.def.namespaced && path.namespace === undefined && path.name !== undefined) throw new StatusError(404, 'NotFound', `the server could not find the requested resource`)
  if (path.subresource !== undefined) return handleSubresource(ctx, path, req, res, query)
  if (path.name === undefined) {
    if (method === 'GET') return handleCollectionRead(ctx, path, req, res, query)
    if (method === 'POST') {
      const created = await createObject(ctx, writeRequest(path, await body(req, query), query))
      return { code: 201, body: created.object, warnings: created.warnings }
    }
    if (method === 'DELETE') return deleteCollection(ctx, path, query)
    throw methodNotAllowed(method, req.url ?? '')
  }
  switch (method) {
    case 'GET':
      if (query.get('linearizable') === 'true') await ctx.linearizableRead()
      return objectReply(path, getObject(ctx.store, path.def, path.namespace, path.name), req, query, ctx.nowMs())
    case 'PUT': {
      const updated = await replaceObject(ctx, writeRequest(path, await body(req, query), query))
      return { code: 200, body: updated.object, warnings: updated.warnings }
    }
    case 'PATCH': {
      const patched = await patchObject(ctx, writeRequest(path, await body(req, query), query), req.headers['content-type'] ?? '')
      return { code: 200, body: patched.object, warnings: patched.warnings }
    }
    case 'DELETE':
      return { code: 200, body: deletedReply(path.def, await deleteObject(ctx, path.def, path.namespace, path.name, await deleteOptions(req, query))) }
  }
  throw methodNotAllowed(method, req.url ?? '')
}

function objectReply(path: ResourcePath, object: Parameters<typeof tableOf>[1][number], req: IncomingMessage, query: URLSearchParams, nowMs: number): Reply {
  if (wantsTable(req.headers.accept)) return { code: 200, body: tableOf(path.def, [object], object.metadata.resourceVersion ?? '', query.get('includeObject') ?? undefined, nowMs) }
  return { code: 200, body: object }
}

async function handleCollectionRead(ctx: ResourceContext, path: ResourcePath, req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<Reply | null> {
  const selectors = {
    ...(query.get('labelSelector') ? { labelSelector: query.get('labelSelector')! } : {}),
    ...(query.get('fieldSelector') ? { fieldSelector: query.get('fieldSelector')! } : {}),
  }
  if (query.get('watch') === 'true' || query.get('watch') === '1') {
    const timeout = query.get('timeoutSeconds')
    serveWatch(ctx.store, {
      def: path.def,
      ...(path.namespace === undefined ? {} : { namespace: path.namespace }),
      ...selectors,
      ...(query.get('resourceVersion') === null ? {} : { resourceVersion: query.get('resourceVersion')! }),
      ...(timeout === null ? {} : { timeoutSeconds: Number(timeout) }),
      allowBookmarks: query.get('allowWatchBookmarks') === 'true',
      asTable: wantsTable(req.headers.accept),
      ...(query.get('includeObject') === null ? {} : { includeObject: query.get('includeObject')! }),
    }, res, ctx.nowMs)
    return null
  }
  if (query.get('linearizable') === 'true') await ctx.linearizableRead()
  const limit = parseLimit(query.get('limit'))
  const result = listObjects(ctx.store, path.def, path.namespace, { ...selectors, ...(limit === undefined ? {} : { limit }), ...(query.get('continue') ? { continueToken: query.get('continue')! } : {}) })
  if (wantsTable(req.headers.accept)) return { code: 200, body: { ...tableOf(path.def, result.items, result.resourceVersion, query.get('includeObject') ?? undefined, ctx.nowMs()), ...(result.continueToken === undefined ? {} : { metadata: { resourceVersion: result.resourceVersion, continue: result.continueToken } }) } }
  return { code: 200, body: listBody(path.def, result) }
}

async function deleteOptions(req: IncomingMessage, query: URLSearchParams): Promise<Parameters<typeof deleteObject>[4]> {
  const text = await readBody(req)
  const options = text.trim() === '' ? {} : checkDeleteOptions(parseBody(text, req.headers['content-type']).value)
  const policy = query.get('propagationPolicy') ?? options.propagationPolicy
  return {
    ...(policy === undefined ? {} : { propagationPolicy: policy }),
    ...(options.preconditions === undefined ? {} : { preconditions: options.preconditions }),
    dryRun: query.getAll('dryRun').includes('All') || (options.dryRun ?? []).includes('All'),
  }
}

interface DeleteOptionsBody {
  propagationPolicy?: string
  preconditions?: { uid?: string; resourceVersion?: string }
  dryRun?: string[]
}

const deleteOptionFields = new Set(['kind', 'apiVersion', 'propagationPolicy', 'preconditions', 'dryRun', 'gracePeriodSeconds', 'orphanDependents'])

/** A DELETE body is a DeleteOptions object; anything else is refused before anything is deleted. */
function checkDeleteOptions(value: unknown): DeleteOptionsBody {
  if (!isPlainObject(value)) throw badRequest('the body of a DELETE must be a DeleteOptions object')
  const o = value as Record<string, unknown>
  const unknown = Object.keys(o).filter((k) => !deleteOptionFields.has(k))
  if (unknown.length > 0) throw badRequest(`strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(', ')}`)
  if (o.kind !== undefined && o.kind !== 'DeleteOptions') throw badRequest(`the body of a DELETE must be a DeleteOptions object, not ${String(o.kind)}`)
  if (o.propagationPolicy !== undefined && typeof o.propagationPolicy !== 'string') throw badRequest('propagationPolicy must be a string')
  if (o.dryRun !== undefined && !(Array.isArray(o.dryRun) && o.dryRun.every((d) => d === 'All'))) throw badRequest('dryRun must be a list whose only allowed value is "All"')
  const pre = o.preconditions
  if (pre !== undefined && pre !== null && !(isPlainObject(pre) && Object.values(pre).every((v) => typeof v === 'string' || v === null))) throw badRequest('preconditions must be an object with string uid and resourceVersion')
  return o as DeleteOptionsBody
}

async function deleteCollection(ctx: ResourceContext, path: ResourcePath, query: URLSearchParams): Promise<Reply> {
  const result = listObjects(ctx.store, path.def, path.namespace, { ...(query.get('labelSelector') ? { labelSelector: query.get('labelSelector')! } : {}), ...(query.get('fieldSelector') ? { fieldSelector: query.get('fieldSelector')! } : {}) })
  const dryRun = query.getAll('dryRun').includes('All')
  const policy = query.get('propagationPolicy')
  for (const o of result.items) await deleteObject(ctx, path.def, o.metadata.namespace, o.metadata.name ?? '', { dryRun, ...(policy === null ? {} : { propagationPolicy: policy }) })
  return { code: 200, body: listBody(path.def, result) }
}

async function handleSubresource(ctx: ResourceContext, path: ResourcePath, req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<Reply | null> {
  const method = req.method ?? 'GET'
  const name = path.name ?? ''
  if (path.subresource === 'status' && path.def.subresources.status) {
    if (method === 'GET') return { code: 200, body: getObject(ctx.store, path.def, path.namespace, name) }
    if (method === 'PUT') return { code: 200, body: (await replaceObject(ctx, writeRequest(path, await body(req, query), query), 'status')).object }
    if (method === 'PATCH') return { code: 200, body: (await patchObject(ctx, writeRequest(path, await body(req, query), query), req.headers['content-type'] ?? '', 'status')).object }
    throw methodNotAllowed(method, req.url ?? '')
  }
  if (path.subresource === 'scale' && path.def.subresources.scale !== undefined) {
    if (method === 'GET') return { code: 200, body: scaleOf(path.def, getObject(ctx.store, path.def, path.namespace, name)) }
    if (method === 'PUT') return { code: 200, body: await updateScale(ctx, writeRequest(path, await body(req, query), query), null) }
    if (method === 'PATCH') return { code: 200, body: await updateScale(ctx, writeRequest(path, await body(req, query), query), req.headers['content-type'] ?? '') }
    throw methodNotAllowed(method, req.url ?? '')
  }
  if (path.subresource === 'log' && path.def.subresources.log === true) {
    if (method !== 'GET') throw methodNotAllowed(method, req.url ?? '')
    const pod = getObject(ctx.store, path.def, path.namespace, name)
    if (ctx.podLogs !== undefined) return servePodLog(ctx.podLogs, pod, query, req, res)
    podLog(pod, query)
  }
  throw new StatusError(404, 'NotFound', `the server could not find the requested resource (${path.def.plural}/${path.subresource})`)
}
