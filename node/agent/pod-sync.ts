// One pass over one pod bound to this peer: make its sandbox, start every
// container that should run and does not (first runs, and restarts by
// `restartPolicy` once the crash back-off allows), and note why the others
// wait. It starts containers one after the other, as the kubelet does, and
// never restarts one on its own: exits come back through the runtime's change
// feed and the next pass decides.
import type { Backoff } from './backoff.js'
import { goDuration } from './backoff.js'
import { containerSpecOf, sandboxSpecOf, type SandboxContext } from './container-spec.js'
import { ContainerConfigError, type ServiceJson } from './pod-env.js'
import { runsByContainer, type ContainerTrack } from './pod-status.js'
import type { ContainerJson, PodJson } from './pod-types.js'
import { preparePodVolumes } from './pod-volumes.js'
import type { ContainerObservation, ContainerRuntime, PodObservation, SandboxSpec } from './runtime.js'
import { ContainerStartError, PodRemovedError } from './runtime-errors.js'

export interface PodSyncDeps {
  runtime: ContainerRuntime
  /** Crash back-off, per container. */
  restartBackoff: Backoff
  /** Back-off after a container failed to start (image pulls, missing programs, bad config). */
  startBackoff: Backoff
  sandbox: SandboxContext
  podsDir: string
  services(namespace: string): ServiceJson[]
  hostIp(): string
  nodeAllocatable(): Record<string, string>
  nowMs(): number
  /** Asks for another pass at this time (a back-off ends). */
  wakeAt(ms: number): void
  /** Records a kubelet-style Event about the pod (Created, Started, Failed, BackOff). */
  event(pod: PodJson, type: 'Normal' | 'Warning', reason: string, message: string): void
}

/** What the agent remembers of a pod between passes. */
export interface PodMemory {
  tracks: Map<string, ContainerTrack>
  volumes?: Map<string, string>
  /** Container name -> when its last start failed. */
  startFailedAtMs: Map<string, number>
}

export function newPodMemory(): PodMemory {
  return { tracks: new Map(), startFailedAtMs: new Map() }
}

function shouldRestart(pod: PodJson, run: ContainerObservation): boolean {
  const policy = pod.spec.restartPolicy ?? 'Always'
  return policy === 'Always' || (policy === 'OnFailure' && run.exitCode !== 0)
}

function trackOf(memory: PodMemory, name: string): ContainerTrack {
  let t = memory.tracks.get(name)
  if (t === undefined) memory.tracks.set(name, (t = { ready: false, started: false }))
  return t
}

/** Kubernetes' reason while a failed start waits for its back-off. */
function backoffReason(reason: string): string {
  return reason === 'ErrImagePull' || reason === 'ImagePullBackOff' ? 'ImagePullBackOff' : reason
}

/** Runs one pass; returns the pod's observation updated with what it started. */
export async function syncPod(pod: PodJson, observed: PodObservation | undefined, memory: PodMemory, deps: PodSyncDeps): Promise<PodObservation> {
  const uid = pod.metadata.uid ?? ''
  const observation: PodObservation = observed ?? { uid, namespace: pod.metadata.namespace ?? '', name: pod.metadata.name ?? '', containers: [] }
  const sandboxSpec = sandboxSpecOf(pod, deps.sandbox)
  const runs = runsByContainer(observation)
  const toStart: { container: ContainerJson; attempt: number }[] = []
  for (const c of pod.spec.containers) {
    const r = runs.get(c.name)
    const track = trackOf(memory, c.name)
    if (r?.latest.state === 'running') {
      track.waiting = undefined
      continue
    }
    if (r === undefined) {
      toStart.push({ container: c, attempt: 0 })
      continue
    }
    if (!shouldRestart(pod, r.latest)) {
      track.waiting = undefined
      continue
    }
    const key = `${uid}/${c.name}`
    const finishedMs = Date.parse(r.latest.finishedAt ?? '') || deps.nowMs()
    const remainingMs = deps.restartBackoff.remainingMs(key, finishedMs, deps.nowMs())
    if (remainingMs > 0) {
      const delay = goDuration(deps.restartBackoff.currentDelayMs(key))
      const message = `back-off ${delay} restarting failed container=${c.name} pod=${pod.metadata.name}_${pod.metadata.namespace}(${uid})`
      // Once per crash, not once per pass.
      if (track.waiting?.message !== message) deps.event(pod, 'Warning', 'BackOff', `Back-off restarting failed container ${c.name} in pod ${pod.metadata.name}_${pod.metadata.namespace}(${uid})`)
      track.waiting = { reason: 'CrashLoopBackOff', message }
      deps.wakeAt(deps.nowMs() + remainingMs)
      continue
    }
    toStart.push({ container: c, attempt: r.latest.attempt + 1 })
  }
  if (toStart.length === 0) return observation
  if (observation.sandbox === undefined) {
    try {
      observation.sandbox = await deps.runtime.ensureSandbox(sandboxSpec)
    } catch (err) {
      for (const { container } of toStart) trackOf(memory, container.name).waiting = { reason: 'ContainerCreating', message: `failed to create the pod sandbox: ${(err as Error).message}` }
      deps.wakeAt(deps.nowMs() + 1000)
      return observation
    }
  }
  for (const { container, attempt } of toStart) {
    const run = await startOne(pod, container, attempt, sandboxSpec, observation, memory, deps)
    if (run !== null) observation.containers.push(run)
  }
  return observation
}

async function startOne(pod: PodJson, container: ContainerJson, attempt: number, sandboxSpec: SandboxSpec, observation: PodObservation, memory: PodMemory, deps: PodSyncDeps): Promise<ContainerObservation | null> {
  const uid = pod.metadata.uid ?? ''
  const key = `${uid}/${container.name}`
  const track = trackOf(memory, container.name)
  const failedAtMs = memory.startFailedAtMs.get(container.name)
  if (failedAtMs !== undefined) {
    const remainingMs = deps.startBackoff.remainingMs(key, failedAtMs, deps.nowMs())
    if (remainingMs > 0) {
      const reason = backoffReason(track.waiting?.reason ?? 'RunContainerError')
      const detail = track.waiting?.message ?? ''
      const message = reason === 'ImagePullBackOff' ? `Back-off pulling image "${container.image}": ${detail.replace(/^Back-off pulling image "[^"]*": /, '')}` : detail
      if (track.waiting?.reason !== reason && reason === 'ImagePullBackOff') deps.event(pod, 'Normal', 'BackOff', `Back-off pulling image "${container.image}"`)
      track.waiting = { reason, message }
      deps.wakeAt(deps.nowMs() + remainingMs)
      return null
    }
  }
  try {
    memory.volumes ??= await preparePodVolumes(pod, deps.podsDir)
    const facts = { podIp: observation.sandbox?.podIp ?? '', hostIp: deps.hostIp() }
    const spec = containerSpecOf({ pod, container, services: deps.services(pod.metadata.namespace ?? 'default'), facts, nodeAllocatable: deps.nodeAllocatable(), volumes: memory.volumes, attempt })
    if (attempt > 0) deps.restartBackoff.next(key, deps.nowMs())
    const run = await deps.runtime.startContainer(sandboxSpec, spec)
    memory.startFailedAtMs.delete(container.name)
    track.waiting = undefined
    deps.event(pod, 'Normal', 'Started', `Started container ${container.name}`)
    return run
  } catch (err) {
    // The pod is gone (its removal undid this start): nothing to report or retry.
    if (err instanceof PodRemovedError) return null
    const reason = err instanceof ContainerStartError ? err.waitingReason : err instanceof ContainerConfigError ? 'CreateContainerConfigError' : 'RunContainerError'
    deps.startBackoff.next(key, deps.nowMs())
    memory.startFailedAtMs.set(container.name, deps.nowMs())
    track.waiting = { reason, message: (err as Error).message }
    deps.event(pod, 'Warning', 'Failed', reason === 'ErrImagePull' ? `Failed to pull image "${container.image}": ${(err as Error).message}` : `Error: ${reason}: ${(err as Error).message}`)
    deps.wakeAt(deps.nowMs() + deps.startBackoff.currentDelayMs(key))
    return null
  }
}
