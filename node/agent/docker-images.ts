// Images for the Docker runtime: the pull policy, pulls (whose failures
// Podman reports inside an HTTP 200 progress stream), reference validation,
// and the image ids a container status reports.

import type Docker from 'dockerode'
import type { ImagePullPolicy } from './runtime.js'
import { ImageNeverPullError, ImagePullError, InvalidImageNameError } from './runtime-errors.js'
import { engineMessage, engineStatusCode, rethrowUnavailable, throwIfUnavailable } from './docker-errors.js'

/** A pull that makes no progress for this long is abandoned (an unreachable registry can stall for minutes). */
export const pullTimeoutMs = 10 * 60_000

/** Image ids resolved to `docker-pullable://` form, kept per engine image id. */
const imageIdCacheEntriesMax = 512

const referenceNameLengthMax = 255

// distribution/reference's grammar: [domain/]path[:tag][@digest].
const pathComponent = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const domain = `(?:${domainComponent}(?:\\.${domainComponent})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`
const tag = '[\\w][\\w.-]{0,127}'
const digest = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}'
const referencePattern = new RegExp(`^((?:${domain}/)?${pathComponent}(?:/${pathComponent})*)(?::${tag})?(?:@${digest})?$`)

export function isValidImageReference(image: string): boolean {
  const match = referencePattern.exec(image)
  return match !== null && (match[1]?.length ?? 0) <= referenceNameLengthMax
}

/**
 * Images under `localhost/` are Podman's local-only namespace (what `podman
 * import` and `podman build` name them): no registry serves them, so `Always`
 * takes the local copy when there is one instead of a pull that can only fail
 * (after seconds). Kubernetes' default policy for `:latest` is `Always`, and
 * Shoal's images are built locally (scripts/build-images.sh).
 */
function isLocalOnly(image: string): boolean {
  return image.startsWith('localhost/')
}

/** Makes the image present as its policy says; throws the start errors the agent reports. */
export async function ensureImage(docker: Docker, image: string, policy: ImagePullPolicy): Promise<void> {
  if (!isValidImageReference(image)) throw new InvalidImageNameError(`invalid image reference "${image}"`)
  const pullsAnyway = policy === 'Always' && !isLocalOnly(image)
  if (!pullsAnyway && (await isImagePresent(docker, image))) return
  if (policy === 'Never') {
    throw new ImageNeverPullError(`container image "${image}" is not present with pull policy of Never`)
  }
  await pullImage(docker, image)
}

export async function isImagePresent(docker: Docker, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect()
    return true
  } catch (err) {
    if (engineStatusCode(err) === 404) return false
    return rethrowUnavailable(err)
  }
}

/** Pulls and reads the progress stream to its end: an `error` in it is the pull's failure. */
export async function pullImage(docker: Docker, image: string): Promise<void> {
  let progress: NodeJS.ReadableStream
  try {
    progress = await docker.pull(image)
  } catch (err) {
    throwIfUnavailable(err)
    throw pullFailure(image, engineMessage(err))
  }
  const failure = await new Promise<string | undefined>((resolve) => {
    let firstError: string | undefined
    let stallTimer = setTimeout(stalled, pullTimeoutMs)
    function stalled(): void {
      ;(progress as NodeJS.ReadableStream & { destroy(): void }).destroy()
      resolve(`pull made no progress for ${pullTimeoutMs / 1000} s`)
    }
    docker.modem.followProgress(
      progress,
      (err: Error | null) => {
        clearTimeout(stallTimer)
        resolve(firstError ?? (err === null ? undefined : err.message))
      },
      (event: { error?: unknown; errorDetail?: { message?: unknown } }) => {
        clearTimeout(stallTimer)
        stallTimer = setTimeout(stalled, pullTimeoutMs)
        const message = event.errorDetail?.message ?? event.error
        if (firstError === undefined && typeof message === 'string') firstError = message
      },
    )
  })
  if (failure !== undefined) throw pullFailure(image, failure)
}

function pullFailure(image: string, message: string): Error {
  if (/invalid reference format/i.test(message)) return new InvalidImageNameError(`invalid image reference "${image}": ${message}`)
  return new ImagePullError(`failed to pull image "${image}": ${message}`)
}

/** `docker-pullable://repo@sha256:...` when the image has a repository digest, else `docker://sha256:...`. */
export class ImageIdResolver {
  private readonly byEngineId = new Map<string, string>()

  constructor(private readonly docker: Docker) {}

  async resolve(engineImageId: string): Promise<string> {
    const known = this.byEngineId.get(engineImageId)
    if (known !== undefined) return known
    let resolved = `docker://${engineImageId}`
    try {
      const info = await this.docker.getImage(engineImageId).inspect()
      const repoDigest = info.RepoDigests?.[0]
      if (repoDigest !== undefined) resolved = `docker-pullable://${repoDigest}`
    } catch {
      return resolved // removed since: report the bare id, and do not remember it
    }
    if (this.byEngineId.size >= imageIdCacheEntriesMax) this.byEngineId.clear()
    this.byEngineId.set(engineImageId, resolved)
    return resolved
  }
}
