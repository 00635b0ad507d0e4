// The zero-setup runtime: each container is a child process.
//
// What `image` means here:
// - an absolute path (`/usr/local/bin/redis-server`) is the program itself;
// - anything else is an image reference whose last path component, without
//   tag or digest, is a program looked up on the peer's PATH:
//   `redis-server`, `redis-server:7` and `docker.io/library/redis-server:7`
//   all run `redis-server`. So a manifest written for Docker runs unchanged
//   once a program of that name is installed.
// - `command` replaces the image's program, as in Kubernetes: command[0] is
//   looked up the same way (relative paths against the working directory)
//   and the image must still exist; `args` follow. A missing program is
//   `ErrImagePull` (whatever the pull policy) with a message naming what was
//   looked for and where; a program that is not executable is `RunContainerError`.
//
// What a pod gets: its own loopback address (127.88.x.y by default, leased
// host-wide, see loopback-ips.ts) in POD_IP, the container's first port in
// PORT (else the pod's), every named port in PORT_<NAME>, HOSTNAME = pod name,
// and a working directory under the state directory unless `workingDir` says
// otherwise. Volumes cannot be remapped for a plain process: each mount is
// exported as SHOAL_VOLUME_<NAME>=<host directory>; `mountPath` and
// `readOnly` are not applied, nor are CPU and memory limits.
//
// Each run is its own process group (so deleting a pod kills everything the
// container started, unless a process left the group with setsid), with
// stdout/stderr captured into CRI log files (process-log-writer.ts). Runs
// outlive the agent: a restarted runtime on the same state directory adopts
// them from their pid files (pid + /proc start time). Exit codes: a child of
// this process reports its real exit code (128 + signal number when killed);
// a run adopted from an earlier agent that then ends cannot be waited for, so
// its exit code is unknown and it is reported as Kubernetes does for that
// case: exit code 137, reason `ContainerStatusUnknown`.
import { constants as osConstants } from 'node:os'
import { mkdir, stat } from 'node:fs/promises'
import { closeSync } from 'node:fs'
import { join } from 'node:path'
import { LoopbackIps } from './loopback-ips.js'
import { containerEnv, resolveLaunch, spawnDetached, type Spawned } from './process-launch.js'
import { readRunLogs } from './process-log-reader.js'
import { defaultLogFileBounds, openFifoForChild, RunLogWriter, type LogFileBounds } from './process-log-writer.js'
import { FifoPool } from './process-fifo-pool.js'
import { killUnrecordedRuns, runMarker, runMarkerEnv, runtimeIdOf } from './process-orphans.js'
import { observationOf, podWorkDir, readStoredPods, removePodFiles, removeRunFiles, runBase, runFiles, writePodRecord, writeRunRecord, type PodRecord, type RunRecord } from './process-records.js'
import { execInRun } from './process-exec.js'
import { isSameProcess, processStartTime, signalProcessGroup, stopProcessGroup } from './process-tree.js'
import { CreateContainerError, PodRemovedError, RunContainerError } from './runtime-errors.js'
import type { ContainerObservation, ContainerRuntime, ContainerSpec, ExecResult, LogLine, LogOptions, PodObservation, RuntimeChangeListener, Sandbox, SandboxSpec } from './runtime.js'

/** How often runs adopted from an earlier agent (not our children: no exit event) are checked. */
export const adoptedRunPollMs = 500
/** Exit code and reason of a run whose end could not be observed (Kubernetes' choice for the same case). */
export const unknownExitCode = 137
export const unknownExitReason = 'ContainerStatusUnknown'

export interface ProcessRuntimeOptions {
  nodeName: string
  /** Under the peer's data directory. */
  stateDir: string
  loopbackCidr?: string
  /** Host-wide directory of IP leases, shared by every peer on the host. */
  leaseDir?: string
  /** Where programs are looked up; the runs' PATH. Defaults to this process's PATH. */
  searchPath?: string
  logFileBounds?: LogFileBounds
  /** Told what adoption had to kill (runs a killed agent started but never recorded). */
  log?: (line: string) => void
}

interface LiveRun {
  record: RunRecord
  writer?: RunLogWriter
  /** Set for runs this process spawned: their 'exit' event gives the real exit code. */
  child?: Spawned
  /** Resolves once the run's exit is recorded. */
  exited: Promise<void>
  markExited: () => void
  /** Record writes, in order. */
  persisted: Promise<void>
}

interface LivePod {
  record: PodRecord
  runs: LiveRun[]
  /** Set when removePod begins: a start still in progress then stops what it spawned. */
  removed: boolean
}

const runKey = (run: RunRecord): string => `${run.containerName}.${run.attempt}`

export class ProcessRuntime implements ContainerRuntime {
  readonly kind = 'process' as const
  readonly nodeName: string
  private readonly stateDir: string
  private readonly runtimeId: string
  private readonly log: (line: string) => void
  /** Named pipes made ahead: a `mkfifo` child per container start cost more than the start itself. */
  private readonly fifos: FifoPool
  private readonly searchPath: string
  private readonly bounds: LogFileBounds
  private readonly ips: LoopbackIps
  private readonly pods = new Map<string, LivePod>()
  private readonly sandboxesInFlight = new Map<string, Promise<Sandbox>>()
  private readonly listeners: RuntimeChangeListener[] = []
  private readonly ready: Promise<void>
  private readonly pollTimer: NodeJS.Timeout
  private closed = false
  private polling = false

  constructor(options: ProcessRuntimeOptions) {
    this.nodeName = options.nodeName
    this.stateDir = options.stateDir
    this.runtimeId = runtimeIdOf(options.stateDir)
    this.log = options.log ?? ((line) => console.error(`shoal: ${line}`))
    this.fifos = new FifoPool(join(options.stateDir, 'fifo-pool'))
    this.searchPath = options.searchPath ?? process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'
    this.bounds = options.logFileBounds ?? defaultLogFileBounds
    this.ips = new LoopbackIps({ cidr: options.loopbackCidr, leaseDir: options.leaseDir, stateDir: options.stateDir })
    this.ready = this.adopt()
    this.ready.catch(() => undefined)
    this.pollTimer = setInterval(() => void this.pollAdopted(), adoptedRunPollMs)
    this.pollTimer.unref()
  }

  async version(): Promise<string> {
    return `process://${process.versions.node}`
  }

  onChange(listener: RuntimeChangeListener): void {
    this.listeners.push(listener)
  }

  async ensureSandbox(pod: SandboxSpec): Promise<Sandbox> {
    await this.ready
    const known = this.pods.get(pod.uid)
    if (known !== undefined) return { uid: pod.uid, podIp: known.record.podIp }
    const inFlight = this.sandboxesInFlight.get(pod.uid)
    if (inFlight !== undefined) return inFlight
    const creating = this.createSandbox(pod).finally(() => this.sandboxesInFlight.delete(pod.uid))
    this.sandboxesInFlight.set(pod.uid, creating)
    return creating
  }

  private async createSandbox(pod: SandboxSpec): Promise<Sandbox> {
    const podIp = await this.ips.acquire(pod.uid)
    const record: PodRecord = { uid: pod.uid, namespace: pod.namespace, name: pod.name, podIp, ...(pod.terminationGracePeriodMs === undefined ? {} : { terminationGracePeriodMs: pod.terminationGracePeriodMs }) }
    await writePodRecord(this.stateDir, record)
    await mkdir(podWorkDir(this.stateDir, pod.uid), { recursive: true })
    this.pods.set(pod.uid, { record, runs: [], removed: false })
    return { uid: pod.uid, podIp }
  }

  async startContainer(pod: SandboxSpec, container: ContainerSpec): Promise<ContainerObservation> {
    const { podIp } = await this.ensureSandbox(pod)
    const live = this.pods.get(pod.uid)
    if (live === undefined || live.removed) throw new PodRemovedError(`pod ${pod.namespace}/${pod.name} was removed while its container "${container.name}" was starting`)
    const same = live.runs.find((r) => r.record.containerName === container.name && r.record.attempt === container.attempt)
    if (same !== undefined) return observationOf(same.record)
    const workingDir = container.workingDir ?? podWorkDir(this.stateDir, pod.uid)
    const dir = await stat(workingDir).catch(() => undefined)
    if (dir === undefined || !dir.isDirectory()) throw new CreateContainerError(`working directory "${workingDir}" does not exist on node ${this.nodeName}`)
    const env = containerEnv(pod, container, podIp, this.searchPath)
    env[runMarkerEnv] = runMarker(this.runtimeId, pod.uid, container.name, container.attempt)
    const launch = await resolveLaunch(container, env.PATH ?? this.searchPath, workingDir)
    await this.pruneRuns(live, container)
    const files = runFiles(runBase(this.stateDir, pod.uid, container.name, container.attempt))
    await this.fifos.take([files.stdoutFifo, files.stderrFifo])
    const writer = new RunLogWriter(files.log, this.bounds)
    const childFds = [openFifoForChild(files.stdoutFifo), openFifoForChild(files.stderrFifo)] as const
    writer.attach('stdout', files.stdoutFifo)
    writer.attach('stderr', files.stderrFifo)
    let spawned: Spawned
    try {
      spawned = await spawnDetached(launch.program, launch.args, { cwd: workingDir, env, stdio: ['ignore', childFds[0], childFds[1]] })
    } catch (error) {
      await removeRunFiles(this.stateDir, pod.uid, container.name, container.attempt)
      throw new RunContainerError(`cannot start "${launch.program}": ${(error as Error).message}`)
    } finally {
      // The child holds its own copies; ours would keep the FIFOs open after it exits.
      for (const fd of childFds) closeSync(fd)
    }
    const pid = spawned.child.pid!
    const record: RunRecord = {
      containerName: container.name,
      attempt: container.attempt,
      image: container.image,
      program: launch.imageProgram,
      pid,
      // Empty when the run ended before we could look: it is then never taken for alive.
      pidStartTime: (await processStartTime(pid)) ?? '',
      startedAt: new Date().toISOString(),
      env,
      workingDir,
    }
    const run = this.track(live, record, writer, spawned)
    if (live.removed) {
      // removePod began while this start was on its way and did not see this run: stop it here, no one else will.
      await this.stopRun(pod.uid, run, 0)
      writer.detach()
      throw new PodRemovedError(`pod ${pod.namespace}/${pod.name} was removed while its container "${container.name}" was starting`)
    }
    run.persisted = run.persisted.then(() => writeRunRecord(this.stateDir, pod.uid, record))
    await run.persisted
    return observationOf(run.record)
  }

  async stopContainer(uid: string, containerName: string, gracePeriodMs: number): Promise<void> {
    await this.ready
    const runs = this.pods.get(uid)?.runs.filter((r) => r.record.containerName === containerName) ?? []
    await Promise.all(runs.map((run) => this.stopRun(uid, run, gracePeriodMs)))
  }

  async removePod(uid: string, gracePeriodMs: number): Promise<void> {
    await this.ready
    const live = this.pods.get(uid)
    if (live === undefined) return
    // From here a start in progress stops its own run (see startContainer); the runs already tracked are stopped here.
    live.removed = true
    await Promise.all(live.runs.map((run) => this.stopRun(uid, run, gracePeriodMs)))
    for (const run of live.runs) run.writer?.detach()
    if (this.pods.get(uid) === live) this.pods.delete(uid)
    await removePodFiles(this.stateDir, uid)
    await this.ips.release(live.record.podIp, uid)
  }

  async listPods(): Promise<PodObservation[]> {
    await this.ready
    return [...this.pods.values()].map(({ record, runs }) => ({
      uid: record.uid,
      namespace: record.namespace,
      name: record.name,
      sandbox: { uid: record.uid, podIp: record.podIp },
      containers: runs.map((run) => observationOf(run.record)),
      ...(record.terminationGracePeriodMs === undefined ? {} : { terminationGracePeriodMs: record.terminationGracePeriodMs }),
    }))
  }

  async exec(uid: string, containerName: string, command: string[], timeoutMs: number): Promise<ExecResult> {
    await this.ready
    const run = this.newestRun(uid, containerName)
    if (run === undefined || run.record.exitCode !== undefined) throw new Error(`container "${containerName}" of pod ${uid} is not running`)
    return execInRun(command, run.record.env, run.record.workingDir, timeoutMs)
  }

  async *logs(uid: string, containerName: string, options: LogOptions, signal: AbortSignal): AsyncIterable<LogLine> {
    await this.ready
    const runs = this.pods.get(uid)?.runs.filter((r) => r.record.containerName === containerName) ?? []
    const newest = runs.at(-1)
    const run = options.previous ? runs.filter((r) => newest !== undefined && r.record.attempt < newest.record.attempt).at(-1) : newest
    if (run === undefined) {
      throw new Error(options.previous ? `previous terminated container "${containerName}" in pod ${uid} not found` : `container "${containerName}" in pod ${uid} has not started`)
    }
    const writer = run.writer
    const source = {
      logPath: runFiles(runBase(this.stateDir, uid, containerName, run.record.attempt)).log,
      filesMax: this.bounds.filesMax,
      // Ended once the run has exited and its output is all in the file (the FIFOs' end and the exit event come in either order).
      finished: () => run.record.exitCode !== undefined && (writer === undefined || writer.finished),
      onWritten: (listener: () => void) => {
        let listening = true
        void run.exited.then(() => listening && listener())
        const unsubscribe = writer?.onWritten(listener)
        return () => {
          listening = false
          unsubscribe?.()
        }
      },
    }
    yield* readRunLogs(source, options, signal)
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.pollTimer)
    await this.ready.catch(() => undefined)
    for (const live of this.pods.values()) {
      for (const run of live.runs) {
        run.writer?.detach()
      }
    }
  }

  /** Rebuilds the view from disk: runs still alive (same pid and start time) are adopted, the rest ended unseen. */
  private async adopt(): Promise<void> {
    const alivePids = new Set<number>()
    for (const { pod, runs } of await readStoredPods(this.stateDir)) {
      const live: LivePod = { record: pod, runs: [], removed: false }
      this.pods.set(pod.uid, live)
      await this.ips.reassert(pod.podIp, pod.uid)
      for (const record of runs) {
        const alive = record.exitCode === undefined && record.pidStartTime !== '' && (await isSameProcess(record.pid, record.pidStartTime))
        let writer: RunLogWriter | undefined
        if (alive) {
          writer = this.reattachLogs(pod.uid, record)
          alivePids.add(record.pid)
        }
        const run = this.track(live, record, writer, undefined)
        if (record.exitCode === undefined && !alive) this.recordExit(pod.uid, run, unknownExitCode, unknownExitReason)
      }
    }
    for (const p of await killUnrecordedRuns(this.runtimeId, alivePids)) {
      this.log(`process runtime: killed pid ${p.pid}, container "${p.containerName}" attempt ${p.attempt} of pod ${p.uid}: started by an agent that died before recording it`)
    }
  }

  /** Reads an adopted run's FIFOs again; without them (deleted by hand) its output is not captured. */
  private reattachLogs(uid: string, record: RunRecord): RunLogWriter | undefined {
    const files = runFiles(runBase(this.stateDir, uid, record.containerName, record.attempt))
    try {
      const writer = new RunLogWriter(files.log, this.bounds)
      writer.attach('stdout', files.stdoutFifo)
      writer.attach('stderr', files.stderrFifo)
      return writer
    } catch {
      return undefined
    }
  }

  private track(live: LivePod, record: RunRecord, writer: RunLogWriter | undefined, child: Spawned | undefined): LiveRun {
    let markExited = (): void => undefined
    const exited = new Promise<void>((resolve) => (markExited = resolve))
    const run: LiveRun = { record, writer, child, exited, markExited, persisted: Promise.resolve() }
    if (record.exitCode !== undefined) markExited()
    live.runs = [...live.runs.filter((r) => runKey(r.record) !== runKey(record)), run].sort((a, b) => a.record.attempt - b.record.attempt)
    void child?.exit.then(({ code, signal }) => {
      if (this.closed) return
      const exitCode = code ?? 128 + (signal === null ? 0 : (osConstants.signals[signal] ?? 0))
      this.recordExit(live.record.uid, run, exitCode, exitCode === 0 ? 'Completed' : 'Error')
    })
    return run
  }

  /** Records the end of a run, kills what it left in its group (as a container's end does) and tells the listeners. */
  private recordExit(uid: string, run: LiveRun, exitCode: number, reason: string): void {
    if (run.record.exitCode !== undefined) return
    signalProcessGroup(run.record.pid, 'SIGKILL')
    Object.assign(run.record, { exitCode, reason, finishedAt: new Date().toISOString() })
    run.persisted = run.persisted.then(() => writeRunRecord(this.stateDir, uid, run.record)).catch(() => undefined)
    run.markExited()
    for (const listener of this.listeners) listener(uid, run.record.containerName)
  }

  private async stopRun(uid: string, run: LiveRun, gracePeriodMs: number): Promise<void> {
    if (run.record.exitCode !== undefined) return
    await stopProcessGroup(run.record.pid, gracePeriodMs)
    if (run.child === undefined) this.recordExit(uid, run, unknownExitCode, unknownExitReason)
    await run.exited
    await run.persisted
  }

  /** Adopted runs have no exit event: look at their pids. */
  private async pollAdopted(): Promise<void> {
    if (this.polling) return
    this.polling = true
    try {
      await this.checkAdopted()
    } finally {
      this.polling = false
    }
  }

  private async checkAdopted(): Promise<void> {
    for (const [uid, live] of this.pods) {
      for (const run of live.runs) {
        if (this.closed || run.child !== undefined || run.record.exitCode !== undefined) continue
        if (!(await isSameProcess(run.record.pid, run.record.pidStartTime))) this.recordExit(uid, run, unknownExitCode, unknownExitReason)
      }
    }
  }

  /** Keeps the run before the new attempt (for `previous` logs) and removes older ones. */
  private async pruneRuns(live: LivePod, container: ContainerSpec): Promise<void> {
    const old = live.runs.filter((r) => r.record.containerName === container.name && r.record.attempt < container.attempt - 1)
    for (const run of old) {
      await this.stopRun(live.record.uid, run, 0)
      run.writer?.detach()
      await removeRunFiles(this.stateDir, live.record.uid, container.name, run.record.attempt)
    }
    live.runs = live.runs.filter((r) => !old.includes(r))
  }

  private newestRun(uid: string, containerName: string): LiveRun | undefined {
    return this.pods.get(uid)?.runs.filter((r) => r.record.containerName === containerName).at(-1)
  }

}
