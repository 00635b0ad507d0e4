// What the Docker runtime reports of a container run and of a sandbox, read
// from the engine's inspect and list answers (Docker's and Podman's differ in
// details: Podman leaves NetworkSettings.IPAddress empty for some modes and
// gives whole-second log times; both give nanosecond state times).

import type Docker from 'dockerode'
import type { ContainerObservation, ContainerRunState } from './runtime.js'
import type { ContainerIdentity } from './docker-labels.js'

/** The engine's "never" (Go's zero time). */
const engineZeroTimePrefix = '0001-01-01'

export function runStateOf(engineStatus: string): ContainerRunState {
  switch (engineStatus) {
    case 'running':
    case 'paused':
    case 'restarting':
    case 'stopping':
      return 'running'
    case 'created':
    case 'configured':
    case 'initialized':
      return 'created'
    default:
      return 'exited' // exited, stopped, dead, removing
  }
}

interface NetworkSettingsLike {
  IPAddress?: string
  Networks?: Record<string, { IPAddress?: string } | undefined>
}

/** The sandbox's address: the top-level IPAddress, else the first network's. Empty when it has none. */
export function podIpOf(settings: NetworkSettingsLike | undefined): string {
  if (settings === undefined) return ''
  if (settings.IPAddress !== undefined && settings.IPAddress !== '') return settings.IPAddress
  for (const network of Object.values(settings.Networks ?? {})) {
    if (network?.IPAddress !== undefined && network.IPAddress !== '') return network.IPAddress
  }
  return ''
}

export function observationFromInspect(identity: ContainerIdentity, info: Docker.ContainerInspectInfo, imageId: string): ContainerObservation {
  const state = runStateOf(info.State.Status)
  const observation: ContainerObservation = {
    name: identity.containerName,
    containerId: `docker://${info.Id}`,
    attempt: identity.attempt,
    image: identity.image !== '' ? identity.image : info.Config.Image,
    imageId,
    state,
  }
  const startedAt = isoTime(info.State.StartedAt)
  if (startedAt !== undefined && state !== 'created') observation.startedAt = startedAt
  if (state === 'exited') {
    const finishedAt = isoTime(info.State.FinishedAt)
    if (finishedAt !== undefined) observation.finishedAt = finishedAt
    observation.exitCode = info.State.ExitCode
    observation.reason = exitReason(info.State.OOMKilled, info.State.ExitCode)
  }
  return observation
}

/**
 * `OOMKilled` only when the engine says so: Podman 4.3 with runc on cgroup v1
 * (our test machines) reports a container the kernel killed for memory as
 * exit code 137 with OOMKilled false, so it shows `Error` there.
 */
export function exitReason(oomKilled: boolean, exitCode: number): string {
  if (oomKilled) return 'OOMKilled'
  return exitCode === 0 ? 'Completed' : 'Error'
}

/** ISO 8601 with milliseconds, or undefined for the engine's zero time. */
function isoTime(engineTime: string | undefined): string | undefined {
  if (engineTime === undefined || engineTime === '' || engineTime.startsWith(engineZeroTimePrefix)) return undefined
  const parsedMs = Date.parse(engineTime.replace(/(\.\d{3})\d+/, '$1'))
  return Number.isNaN(parsedMs) ? undefined : new Date(parsedMs).toISOString()
}
