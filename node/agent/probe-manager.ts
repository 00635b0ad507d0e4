// The agent's probes: one prober per probe of each running container run,
// started when the run starts and stopped when it ends. Results land in the
// container's track (ready, started); a liveness or startup failure stops the
// run, and restartPolicy decides what comes next.
import type { ContainerTrack } from './pod-status.js'
import type { PodJson } from './pod-types.js'
import type { ContainerObservation } from './runtime.js'

export type PodEventSink = (pod: PodJson, type: 'Normal' | 'Warning', reason: string, message: string) => void

export interface ProbeManager {
  /** Fired when a probe result changed a track, so the agent writes the status. */
  onChange(listener: () => void): void
  /** Make the probers of this pod match its running containers; sets `ready`/`started` on tracks. */
  sync(pod: PodJson, runs: Map<string, { latest: ContainerObservation }>, podIp: string, tracks: Map<string, ContainerTrack>): void
  stopPod(uid: string): void
  stopAll(): void
}
