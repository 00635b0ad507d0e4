// The object store's Raft commands. The proposer fills in everything that is
// not deterministic (uid, timestamps, generated names), so every peer that
// applies a command reaches the same state; preconditions (resourceVersion,
// existence) are checked when applied, in log order.
import { Packr } from 'msgpackr'
import type { ApiObject } from '../kinds/meta.js'

const packr = new Packr({ useRecords: false, moreTypes: false })

export interface ObjectRef {
  apiVersion: string
  kind: string
  namespace?: string
  name: string
}

export type PropagationPolicy = 'Background' | 'Foreground' | 'Orphan'

export type StoreCommand =
  | { op: 'obj.create'; object: ApiObject }
  /** Replace an object; `subresource: 'status'` changes only its status, anything else keeps the stored status. */
  | { op: 'obj.update'; object: ApiObject; expectResourceVersion?: string; subresource?: 'status' }
  | { op: 'obj.delete'; ref: ObjectRef; expectUid?: string; expectResourceVersion?: string; propagation: PropagationPolicy }
  /** Several commands in one entry (bindings, status batches): each has its own outcome. */
  | { op: 'obj.batch'; commands: StoreCommand[] }

export const storeOps = new Set(['obj.create', 'obj.update', 'obj.delete', 'obj.batch'])

export function encodeStoreCommand(command: StoreCommand): Uint8Array {
  return packr.pack(command)
}

export function decodeCommand(data: Uint8Array): { op: string } & Record<string, unknown> {
  return packr.unpack(data) as { op: string } & Record<string, unknown>
}

/** Why a command was refused, in Kubernetes' terms (the API turns it into a Status). */
export interface StoreFailure {
  code: 404 | 409 | 422
  reason: 'NotFound' | 'AlreadyExists' | 'Conflict' | 'Invalid'
  message: string
  details: { name?: string; kind?: string; group?: string }
}

export type CommandOutcome = { ok: true; object: ApiObject | null } | { ok: false; failure: StoreFailure }

export function refOf(object: ApiObject): ObjectRef {
  const ref: ObjectRef = { apiVersion: object.apiVersion, kind: object.kind, name: object.metadata.name ?? '' }
  if (object.metadata.namespace !== undefined) ref.namespace = object.metadata.namespace
  return ref
}
