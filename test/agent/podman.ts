// Finds the container engine the Docker runtime's tests run against: the one
// DOCKER_HOST names, else the Podman service scripts/setup-podman.sh starts.
// When there is none the tests are skipped, saying why (CI always has one).

import { existsSync } from 'node:fs'
import Docker from 'dockerode'
import { infraContainerName, labelContainerName, labelNode } from '../../node/agent/docker-labels.js'

export const setupPodmanSocket = '/run/shoal-podman/podman.sock'
/** Built by scripts/build-images.sh: busybox-static and its applets. */
export const busyboxImage = 'localhost/shoal/busybox:latest'
const engineAnswerTimeoutMs = 3_000

export interface Engine {
  docker: Docker
  /** Where it was found, for messages. */
  address: string
}

export type EngineLookup = { engine: Engine; skipReason?: undefined } | { engine?: undefined; skipReason: string }

export async function findEngine(): Promise<EngineLookup> {
  const fromEnv = process.env.DOCKER_HOST
  const address = fromEnv !== undefined && fromEnv !== '' ? fromEnv : `unix://${setupPodmanSocket}`
  if (fromEnv === undefined && !existsSync(setupPodmanSocket)) {
    return { skipReason: `no engine at ${address} and DOCKER_HOST is unset (run scripts/setup-podman.sh as root)` }
  }
  const docker = fromEnv !== undefined && fromEnv !== '' ? new Docker() : new Docker({ socketPath: setupPodmanSocket })
  try {
    await withTimeout(docker.ping(), engineAnswerTimeoutMs)
  } catch (err) {
    return { skipReason: `no engine answers at ${address}: ${err instanceof Error ? err.message : String(err)} (run scripts/setup-podman.sh as root)` }
  }
  try {
    await docker.getImage(busyboxImage).inspect()
  } catch {
    return { skipReason: `the engine at ${address} lacks ${busyboxImage} (run scripts/build-images.sh)` }
  }
  return { engine: { docker, address } }
}

/** Removes every container labelled with one of these node names (tests' cleanup): app containers, then sandboxes. */
export async function removeNodeContainers(docker: Docker, nodeNames: string[]): Promise<void> {
  for (const nodeName of nodeNames) {
    const containers = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${labelNode}=${nodeName}`] }) })
    const isInfra = (container: Docker.ContainerInfo): boolean => container.Labels[labelContainerName] === infraContainerName
    for (const batch of [containers.filter((c) => !isInfra(c)), containers.filter(isInfra)]) {
      await Promise.all(batch.map((container) => docker.getContainer(container.Id).remove({ force: true }).catch(() => undefined)))
    }
  }
}

export async function countNodeContainers(docker: Docker, nodeName: string): Promise<number> {
  const containers = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${labelNode}=${nodeName}`] }) })
  return containers.length
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    }),
  ])
}
