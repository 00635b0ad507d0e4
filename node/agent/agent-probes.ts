// The agent's probes (ProbeManager): one ContainerProbers per running run of
// each container, made when the run is first seen running and stopped when
// it ends. Readiness and startup results land in the container's track; a
// liveness or startup failure stops the run (with the pod's grace period)
// and the agent's next pass restarts it as restartPolicy says.
import { portsOf } from './container-spec.js'
import type { ContainerTrack } from './pod-status.js'
import type { PodEventSink, ProbeManager } from './probe-manager.js'
import { ContainerProbers, containerProbeSpecs } from './probe-set.js'
import type { PodJson } from './pod-types.js'
import type { ContainerObservation, ContainerRuntime } from './runtime.js'

interface RunProbes {
  uid: string
  name: string
  /** Null when the container declares no probes. */
  probers: ContainerProbers | null
}

export class AgentProbes implements ProbeManager {
  /** containerId -> the probes of that run. */
  private readonly runs = new Map<string, RunProbes>()
  private listener: () => void = () => {}

  /** Where Unhealthy and Killing events go (the agent's recorder, set once it exists). */
  event: PodEventSink = () => {}

  constructor(private readonly o: { runtime: ContainerRuntime; log: (line: string) => void }) {}

  onChange(listener: () => void): void {
    this.listener = listener
  }

  sync(pod: PodJson, runs: Map<string, { latest: ContainerObservation }>, podIp: string, tracks: Map<string, ContainerTrack>): void {
    const uid = pod.metadata.uid ?? ''
    for (const c of pod.spec.containers) {
      let track = tracks.get(c.name)
      if (track === undefined) tracks.set(c.name, (track = { ready: false, started: false }))
      const run = runs.get(c.name)?.latest
      const current = run?.state === 'running' ? run.containerId : null
      this.stopOthers(uid, c.name, current)
      if (run === undefined || current === null) {
        track.ready = track.started = false
        continue
      }
      let entry = this.runs.get(current)
      if (entry === undefined) {
        entry = { uid, name: c.name, probers: this.startProbers(pod, c, run, podIp) }
        this.runs.set(current, entry)
      }
      track.started = entry.probers?.started ?? true
      track.ready = entry.probers?.ready ?? true
    }
  }

  private startProbers(pod: PodJson, container: PodJson['spec']['containers'][number], run: ContainerObservation, podIp: string): ContainerProbers | null {
    const specs = containerProbeSpecs(container, portsOf(container))
    if (Object.keys(specs).length === 0) return null
    const uid = pod.metadata.uid ?? ''
    const graceMs = (pod.spec.terminationGracePeriodSeconds ?? 30) * 1000
    const probers = new ContainerProbers({
      specs,
      target: { podIp, exec: (command, timeoutMs) => this.o.runtime.exec(uid, container.name, command, timeoutMs) },
      startedAtMs: Date.parse(run.startedAt ?? '') || Date.now(),
      onResult: (type, result, message) => {
        const probe = `${type[0]!.toUpperCase()}${type.slice(1)} probe`
        if (result === 'failure') this.event(pod, 'Warning', 'Unhealthy', `${probe} failed: ${message}`)
        if (result === 'failure' && (type === 'liveness' || type === 'startup')) {
          this.event(pod, 'Normal', 'Killing', `Container ${container.name} failed ${type} probe, will be restarted`)
          void this.o.runtime.stopContainer(uid, container.name, graceMs).catch((err: Error) => this.o.log(`agent: stopping ${container.name}: ${err.message}`))
        }
        this.listener()
      },
    })
    probers.start()
    return probers
  }

  /** Stops the probes of every run of (uid, name) but `keep`. */
  private stopOthers(uid: string, name: string, keep: string | null): void {
    for (const [id, entry] of this.runs) {
      if (entry.uid !== uid || entry.name !== name || id === keep) continue
      entry.probers?.stop()
      this.runs.delete(id)
    }
  }

  stopPod(uid: string): void {
    for (const [id, entry] of this.runs) {
      if (entry.uid !== uid) continue
      entry.probers?.stop()
      this.runs.delete(id)
    }
  }

  stopAll(): void {
    for (const entry of this.runs.values()) entry.probers?.stop()
    this.runs.clear()
  }
}
