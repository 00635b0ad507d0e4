// A pod's status from what the runtime shows and what the agent knows
// (waiting reasons, probe results), the way the kubelet computes it
// (generateAPIPodStatus, getPhase): pure, so it is table-tested.
import { qosClassOf } from '../kinds/pod-spec.js'
import type { ContainerObservation, PodObservation } from './runtime.js'
import type { ContainerStateJson, ContainerStatusJson, PodConditionJson, PodJson, PodStatusJson } from './pod-types.js'

/** What the agent knows of one container beyond the runtime's view. */
export interface ContainerTrack {
  /** Why it is not running (ErrImagePull, CrashLoopBackOff, ...); undefined when nothing holds it back. */
  waiting?: { reason: string; message: string }
  /** The readiness probe passes (true when there is none and the container runs). */
  ready: boolean
  /** The startup probe passed (true when there is none and the container runs). */
  started: boolean
}

export interface PodStatusInput {
  pod: PodJson
  observation: PodObservation | undefined
  tracks: ReadonlyMap<string, ContainerTrack>
  hostIp: string
  nowIso: string
}

/** Kubernetes writes times to the second. */
export function apiTime(iso: string | undefined): string | undefined {
  return iso === undefined ? undefined : iso.replace(/\.\d+Z$/, 'Z')
}

/** The newest run of each container, and the one before it. */
export function runsByContainer(observation: PodObservation | undefined): Map<string, { latest: ContainerObservation; previous?: ContainerObservation }> {
  const out = new Map<string, { latest: ContainerObservation; previous?: ContainerObservation }>()
  const sorted = [...(observation?.containers ?? [])].sort((a, b) => a.attempt - b.attempt)
  for (const run of sorted) {
    const had = out.get(run.name)
    out.set(run.name, had === undefined ? { latest: run } : { latest: run, previous: had.latest })
  }
  return out
}

function terminated(run: ContainerObservation): ContainerStateJson {
  const t: NonNullable<ContainerStateJson['terminated']> = { exitCode: run.exitCode ?? 0, reason: run.reason ?? (run.exitCode === 0 ? 'Completed' : 'Error'), containerID: run.containerId }
  const startedAt = apiTime(run.startedAt)
  const finishedAt = apiTime(run.finishedAt)
  if (startedAt !== undefined) t.startedAt = startedAt
  if (finishedAt !== undefined) t.finishedAt = finishedAt
  return { terminated: t }
}

function containerStatus(name: string, image: string, input: PodStatusInput, runs: ReturnType<typeof runsByContainer>): ContainerStatusJson {
  const track = input.tracks.get(name)
  const r = runs.get(name)
  const base = { name, image, imageID: r?.latest.imageId ?? '', restartCount: r?.latest.attempt ?? 0, ready: false, started: false }
  if (r === undefined) {
    return { ...base, state: { waiting: track?.waiting ?? { reason: 'ContainerCreating' } }, lastState: {} }
  }
  const { latest, previous } = r
  if (latest.state === 'running') {
    const running = { startedAt: apiTime(latest.startedAt) ?? input.nowIso }
    return { ...base, containerID: latest.containerId, state: { running }, lastState: previous === undefined ? {} : terminated(previous), ready: track?.ready ?? false, started: track?.started ?? false }
  }
  if (latest.state === 'created') return { ...base, containerID: latest.containerId, state: { waiting: { reason: 'ContainerCreating' } }, lastState: previous === undefined ? {} : terminated(previous) }
  if (track?.waiting !== undefined) return { ...base, containerID: latest.containerId, state: { waiting: track.waiting }, lastState: terminated(latest) }
  return { ...base, containerID: latest.containerId, state: terminated(latest), lastState: previous === undefined ? {} : terminated(previous) }
}

/** kubelet's getPhase for a pod without init containers. */
export function podPhase(pod: PodJson, statuses: readonly ContainerStatusJson[]): NonNullable<PodStatusJson['phase']> {
  let waiting = 0
  let running = 0
  let stopped = 0
  let succeeded = 0
  for (const s of statuses) {
    if (s.state.running !== undefined) running++
    else if (s.state.terminated !== undefined) {
      stopped++
      if (s.state.terminated.exitCode === 0) succeeded++
    } else if (s.lastState.terminated !== undefined) stopped++
    else waiting++
  }
  const policy = pod.spec.restartPolicy ?? 'Always'
  if (waiting > 0) return 'Pending'
  if (running > 0) return 'Running'
  if (stopped > 0) {
    if (policy === 'Always') return 'Running'
    if (stopped === succeeded) return 'Succeeded'
    if (policy === 'Never') return 'Failed'
    return 'Running'
  }
  return 'Pending'
}

function condition(type: string, ok: boolean, previous: readonly PodConditionJson[], nowIso: string, reason?: string, message?: string): PodConditionJson {
  const status = ok ? 'True' : 'False'
  const before = previous.find((c) => c.type === type)
  const c: PodConditionJson = { type, status, lastProbeTime: null, lastTransitionTime: before?.status === status && before.lastTransitionTime !== undefined ? before.lastTransitionTime : nowIso }
  if (!ok && reason !== undefined) c.reason = reason
  if (!ok && message !== undefined) c.message = message
  return c
}

/** The status the agent would write for this pod now. */
export function podStatus(input: PodStatusInput): PodStatusJson {
  const { pod, nowIso } = input
  const runs = runsByContainer(input.observation)
  const statuses = pod.spec.containers.map((c) => containerStatus(c.name, c.image, input, runs))
  const phase = podPhase(pod, statuses)
  const previous = pod.status?.conditions ?? []
  const unready = statuses.filter((s) => !s.ready).map((s) => s.name)
  const done = phase === 'Succeeded' || phase === 'Failed'
  const readyReason = done ? 'PodCompleted' : 'ContainersNotReady'
  const readyMessage = done ? undefined : `containers with unready status: [${unready.join(' ')}]`
  const ready = unready.length === 0 && !done
  const conditions = [
    condition('Initialized', true, previous, nowIso),
    condition('Ready', ready, previous, nowIso, readyReason, readyMessage),
    condition('ContainersReady', ready, previous, nowIso, readyReason, readyMessage),
    condition('PodScheduled', true, previous, nowIso),
  ]
  const status: PodStatusJson = { phase, conditions, hostIP: input.hostIp, hostIPs: [{ ip: input.hostIp }] }
  const podIp = input.observation?.sandbox?.podIp
  if (podIp !== undefined && podIp !== '') {
    status.podIP = podIp
    status.podIPs = [{ ip: podIp }]
  }
  status.startTime = pod.status?.startTime ?? nowIso
  status.containerStatuses = statuses
  status.qosClass = qosClassOf(pod.spec as unknown as Record<string, unknown>)
  return status
}
