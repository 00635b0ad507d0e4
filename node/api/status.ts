// Kubernetes-style failures: every error the API returns is a Status object
// with an HTTP code, a machine-readable reason and, for invalid objects, the
// field-level causes.
import type { FieldCause } from './schema.js'

export interface StatusDetails {
  name?: string
  group?: string
  kind?: string
  causes?: FieldCause[]
  retryAfterSeconds?: number
}

export interface StatusBody {
  kind: 'Status'
  apiVersion: 'v1'
  metadata: Record<string, never>
  status: 'Failure'
  message: string
  reason: string
  details?: StatusDetails
  code: number
}

export class StatusError extends Error {
  override readonly name = 'StatusError'

  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message)
  }

  toStatus(): StatusBody {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, ...(this.details === undefined ? {} : { details: this.details }), code: this.code }
  }
}

export function badRequest(message: string): StatusError {
  return new StatusError(400, 'BadRequest', message)
}

export function notFound(resource: string, name: string, group = ''): StatusError {
  return new StatusError(404, 'NotFound', `${resource}${group === '' ? '' : `.${group}`} "${name}" not found`, { name, kind: resource, ...(group === '' ? {} : { group }) })
}

export function methodNotAllowed(method: string, path: string): StatusError {
  return new StatusError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method} ${path})`)
}

/** 422 Invalid, worded as Kubernetes words it: Kind "name" is invalid: [field: message, ...]. */
export function invalid(kind: string, name: string, causes: FieldCause[], group = ''): StatusError {
  const list = causes.map((c) => `${c.field}: ${c.message}`)
  const message = `${kind}${group === '' ? '' : `.${group}`} "${name}" is invalid: ${list.length === 1 ? list[0] : `[${list.join(', ')}]`}`
  return new StatusError(422, 'Invalid', message, { name, kind, ...(group === '' ? {} : { group }), causes })
}

const statusByErrorName: Record<string, [number, string]> = {
  NotLeaderError: [503, 'ServiceUnavailable'],
  PeerUnreachableError: [503, 'ServiceUnavailable'],
  RpcTimeoutError: [504, 'Timeout'],
  CommitTimeoutError: [504, 'Timeout'],
  TooManyPendingError: [429, 'TooManyRequests'],
  TooManyCallsError: [429, 'TooManyRequests'],
  UncommittedLogFullError: [429, 'TooManyRequests'],
  LeadershipTransferInProgressError: [503, 'ServiceUnavailable'],
  ProposalDroppedError: [503, 'ServiceUnavailable'],
  InvalidSelectorError: [400, 'BadRequest'],
  InvalidPatchError: [422, 'Invalid'],
  UnsupportedPatchTypeError: [415, 'UnsupportedMediaType'],
  ResourceVersionTooOldError: [410, 'Expired'],
  TooManyWatchesError: [429, 'TooManyRequests'],
}

/** Any error as a Status: ours as they are, known conditions by name, the rest as 500 InternalError. */
export function toStatusError(err: unknown): StatusError {
  if (err instanceof StatusError) return err
  const e = err as { name?: string; message?: string; code?: unknown; reason?: unknown; details?: StatusDetails }
  // A StatusError that crossed the wire arrives as a RemoteError with the same fields.
  if (e.name === 'StatusError' && typeof e.code === 'number' && typeof e.reason === 'string') {
    return new StatusError(e.code, e.reason, e.message ?? '', e.details)
  }
  const mapped = statusByErrorName[e.name ?? '']
  if (mapped !== undefined) return new StatusError(mapped[0], mapped[1], e.message ?? mapped[1])
  return new StatusError(500, 'InternalError', `Internal error occurred: ${e.message ?? String(err)}`)
}
