// The agent: runs the pods bound to this peer's Node and reports them. It
// reconciles what the local replica asks for with what the runtime runs, in
// passes: at start (adopting whatever an earlier agent process left running),
// on every change to a pod bound here, on every container exit, when a
// back-off ends, and every resyncEveryMs. Pods no longer bound here (deleted,
// evicted, rebound while this peer was cut off) are stopped; the rest go
// through syncPod, at most podSyncsInflightMax at once, and their status
// through the batched PodStatusWriter.
import type { Submitter } from '../api/submit.js'
import type { ObjectStore } from '../store/object-store.js'
import { Backoff, type BackoffOptions } from './backoff.js'
import { BoundPods } from './bound-pods.js'
import { podGracePeriodMs, type SandboxContext } from './container-spec.js'
import type { ServiceJson } from './pod-env.js'
import { podStatus, runsByContainer } from './pod-status.js'
import { newPodMemory, syncPod, type PodMemory } from './pod-sync.js'
import type { PodJson } from './pod-types.js'
import { removePodFiles } from './pod-volumes.js'
import type { ContainerRuntime, PodObservation } from './runtime.js'
import { PodStatusWriter } from './status-writer.js'
import type { ProbeManager } from './probe-manager.js'
import { EventRecorder } from '../control/events.js'

export interface AgentOptions {
  nodeName: string
  store: ObjectStore
  submitter: Submitter
  runtime: ContainerRuntime
  /** Pods' own files (emptyDir volumes) live under here. */
  podsDir: string
  hostIp: () => string
  nodeAllocatable: () => Record<string, string>
  restartBackoff: BackoffOptions
  sandbox: SandboxContext
  probes?: ProbeManager
  log: (line: string) => void
  resyncEveryMs?: number
}

/** Pods synced at the same time. */
export const podSyncsInflightMax = 16
/** Grace period for a pod whose spec this agent never saw and whose runtime did not keep it: Kubernetes' default. */
export const unknownPodGracePeriodMs = 30_000

export class Agent {
  private readonly bound: BoundPods
  private readonly memory = new Map<string, PodMemory>()
  /** uid -> the grace period last seen in its spec, for stopping it once it is gone from the store. */
  private readonly gracePeriodMs = new Map<string, number>()
  private readonly removing = new Set<string>()
  private readonly restartBackoff: Backoff
  private readonly startBackoff: Backoff
  readonly statusWriter: PodStatusWriter
  /** Kubelet-style Events about the pods (Started, Failed, BackOff, Unhealthy, Killing). */
  readonly events: EventRecorder
  private passing: Promise<void> | null = null
  private again = false
  private stopped = true
  private resyncTimer: ReturnType<typeof setInterval> | null = null
  private wakeTimer: ReturnType<typeof setTimeout> | null = null
  private wakeAtMs = Infinity
  /** What the last pass saw, for logs and probes. */
  observed = new Map<string, PodObservation>()

  constructor(private readonly o: AgentOptions) {
    this.bound = new BoundPods(o.store, o.nodeName, () => this.poke())
    this.restartBackoff = new Backoff(o.restartBackoff)
    this.startBackoff = new Backoff(o.restartBackoff)
    this.statusWriter = new PodStatusWriter({ submitter: o.submitter, onError: o.log })
    this.events = new EventRecorder({ store: o.store, submitter: o.submitter, source: { component: 'kubelet', host: o.nodeName }, nowIso: () => new Date().toISOString() })
  }

  start(): void {
    this.stopped = false
    this.bound.start()
    this.o.runtime.onChange(() => this.poke())
    this.o.probes?.onChange(() => this.poke())
    this.resyncTimer = setInterval(() => {
      this.bound.rescan()
      this.poke()
    }, this.o.resyncEveryMs ?? 10_000)
    this.poke()
  }

  /** Stops reconciling; containers keep running (a restarted agent adopts them). */
  async stop(): Promise<void> {
    this.stopped = true
    this.bound.stop()
    if (this.resyncTimer !== null) clearInterval(this.resyncTimer)
    if (this.wakeTimer !== null) clearTimeout(this.wakeTimer)
    this.o.probes?.stopAll()
    this.statusWriter.stop()
    while (this.passing !== null) await this.passing
  }

  /** The pod bound here with this uid, as the local replica has it. */
  pod(uid: string): PodJson | undefined {
    return this.bound.get(uid)
  }

  /** Something changed: run a pass soon (once, however many changes arrive meanwhile). */
  poke(): void {
    if (this.stopped) return
    if (this.passing !== null) {
      this.again = true
      return
    }
    this.passing = this.pass()
      .catch((err: Error) => this.o.log(`agent: ${err.message}`))
      .finally(() => {
        this.passing = null
        if (this.again) {
          this.again = false
          this.poke()
        }
      })
  }

  private wakeAt(ms: number): void {
    if (ms >= this.wakeAtMs) return
    if (this.wakeTimer !== null) clearTimeout(this.wakeTimer)
    this.wakeAtMs = ms
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null
      this.wakeAtMs = Infinity
      this.poke()
    }, Math.max(0, ms - Date.now()))
  }

  private async pass(): Promise<void> {
    await Promise.resolve()
    const observedList = await this.o.runtime.listPods()
    this.observed = new Map(observedList.map((p) => [p.uid, p]))
    for (const p of observedList) if (this.bound.get(p.uid) === undefined) this.remove(p.uid)
    const pods = this.bound.all()
    let next = 0
    // One pod's failure is logged and the others go on: a pass that ended early, with syncs still running,
    // would let the next pass remove a pod while its container is still starting.
    const worker = async (): Promise<void> => {
      while (next < pods.length && !this.stopped) {
        const pod = pods[next++]!
        await this.syncOne(pod).catch((err: Error) => this.o.log(`agent: pod ${pod.metadata.namespace}/${pod.metadata.name}: ${err.message}`))
      }
    }
    await Promise.all(Array.from({ length: Math.min(podSyncsInflightMax, pods.length) }, worker))
    for (const uid of [...this.memory.keys()]) {
      if (this.bound.get(uid) !== undefined || this.observed.has(uid)) continue
      this.memory.delete(uid)
      this.gracePeriodMs.delete(uid)
      this.statusWriter.forget(uid)
    }
  }

  private async syncOne(pod: PodJson): Promise<void> {
    const uid = pod.metadata.uid ?? ''
    if (this.removing.has(uid)) return
    this.gracePeriodMs.set(uid, podGracePeriodMs(pod))
    let memory = this.memory.get(uid)
    if (memory === undefined) this.memory.set(uid, (memory = newPodMemory()))
    const observation = await syncPod(pod, this.observed.get(uid), memory, {
      runtime: this.o.runtime,
      restartBackoff: this.restartBackoff,
      startBackoff: this.startBackoff,
      sandbox: this.o.sandbox,
      podsDir: this.o.podsDir,
      services: (ns) => this.services(ns),
      hostIp: this.o.hostIp,
      nodeAllocatable: this.o.nodeAllocatable,
      nowMs: () => Date.now(),
      wakeAt: (ms) => this.wakeAt(ms),
      event: (p, type, reason, message) => void this.events.record(p, type, reason, message),
    })
    this.observed.set(uid, observation)
    const runs = runsByContainer(observation)
    if (this.o.probes !== undefined) this.o.probes.sync(pod, runs, observation.sandbox?.podIp ?? '', memory.tracks)
    else for (const [name, track] of memory.tracks) track.ready = track.started = runs.get(name)?.latest.state === 'running'
    // The pod may have been deleted or moved while its containers started: then the next pass stops them.
    const current = this.bound.get(uid)
    if (current === undefined) return
    this.statusWriter.set(current, podStatus({ pod: current, observation, tracks: memory.tracks, hostIp: this.o.hostIp(), nowIso: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }))
  }

  private services(namespace: string): ServiceJson[] {
    const def = this.o.store.kinds.byKind('v1', 'Service')
    return def === undefined ? [] : (this.o.store.list(def, namespace) as ServiceJson[])
  }

  /** Stops a pod no longer bound here, in the background, once. */
  private remove(uid: string): void {
    if (this.removing.has(uid)) return
    this.removing.add(uid)
    this.o.probes?.stopPod(uid)
    // A pod deleted while this peer was down was never seen by this agent: its runtime kept its grace period.
    const graceMs = this.gracePeriodMs.get(uid) ?? this.observed.get(uid)?.terminationGracePeriodMs ?? unknownPodGracePeriodMs
    void this.o.runtime
      .removePod(uid, graceMs)
      .then(() => removePodFiles(this.o.podsDir, uid))
      .catch((err: Error) => this.o.log(`agent: stopping pod ${uid}: ${err.message}`))
      .finally(() => {
        this.removing.delete(uid)
        this.restartBackoff.forgetPrefix(`${uid}/`)
        this.startBackoff.forgetPrefix(`${uid}/`)
        this.poke()
      })
  }
}
