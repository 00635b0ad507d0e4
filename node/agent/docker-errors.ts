// Errors of the Docker runtime beyond the start errors of `runtime-errors.ts`,
// and how an engine's failures are told apart.

import { RuntimeUnavailableError } from './runtime-errors.js'

export { ContainerNotFoundError, ContainerNotRunningError, ExecTimeoutError } from './runtime-errors.js'

/** The HTTP status the engine answered with, when the error is an engine answer. */
export function engineStatusCode(err: unknown): number | undefined {
  const statusCode = (err as { statusCode?: unknown } | null)?.statusCode
  return typeof statusCode === 'number' ? statusCode : undefined
}

/** The engine's own words (dockerode prefixes them with `(HTTP code N) ...`). */
export function engineMessage(err: unknown): string {
  const json = (err as { json?: unknown } | null)?.json
  if (json !== null && typeof json === 'object') {
    const message = (json as { message?: unknown }).message
    if (typeof message === 'string' && message !== '') return message
  }
  return err instanceof Error ? err.message : String(err)
}

const unreachableCodes = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH'])

export function isEngineUnreachable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && unreachableCodes.has(code)
}

/** Throws RuntimeUnavailableError when the engine could not be reached; returns for any answer of the engine. */
export function throwIfUnavailable(err: unknown): void {
  if (isEngineUnreachable(err)) {
    throw new RuntimeUnavailableError(`container engine does not answer: ${err instanceof Error ? err.message : String(err)}`)
  }
}

/** Rethrows: socket-level failures as RuntimeUnavailableError, everything else as it is. */
export function rethrowUnavailable(err: unknown): never {
  throwIfUnavailable(err)
  throw err
}

/** Engine answers meaning "nothing to do": gone (404) or already in that state (304). */
export function isGoneOrAlready(err: unknown): boolean {
  const statusCode = engineStatusCode(err)
  return statusCode === 404 || statusCode === 304
}
