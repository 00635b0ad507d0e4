// The Docker runtime: pods on any Docker-compatible engine (Docker, or
// Podman's compatible API on our machines), through dockerode. A pod is an
// infrastructure container holding the network namespace (its address on the
// engine's default bridge is the pod IP) plus one container per run of each
// app container, joined to it with `container:<id>` network mode. Labels on
// every container (docker-labels.ts) are the whole state: a restarted agent,
// or a second instance with the same node name, sees the same pods.

import Docker from 'dockerode'
import type {
  ContainerObservation, ContainerRuntime, ContainerSpec, ExecResult, LogLine, LogOptions, PodObservation,
  RuntimeChangeListener, Sandbox, SandboxSpec,
} from './runtime.js'
import { execOutputBytesMax } from './runtime.js'
import { CreateContainerError, RunContainerError } from './runtime-errors.js'
import { identityFromLabels, infraContainerName, labelContainerName, labelFilters, labelPodUid, type ContainerIdentity } from './docker-labels.js'
import { appCreateOptions, infraCreateOptions } from './docker-create.js'
import { ImageIdResolver, ensureImage } from './docker-images.js'
import { observationFromInspect, podIpOf, runStateOf } from './docker-observe.js'
import { EngineEventWatcher } from './docker-events.js'
import {
  ContainerNotFoundError, ContainerNotRunningError, engineMessage, engineStatusCode, isGoneOrAlready, rethrowUnavailable,
  throwIfUnavailable,
} from './docker-errors.js'
import { execInContainer, followLogs } from './docker-exec-logs.js'
import { ContainerDns, engineUsableResolver } from './docker-dns.js'

export const defaultInfraImage = 'localhost/shoal/busybox:latest'
/** Containers inspected at once while listing pods. */
const inspectConcurrencyMax = 16

export interface DockerRuntimeOptions {
  /** This peer's node name: only containers labelled with it are seen or touched. */
  nodeName: string
  /** The peer's directory for runtime state; the Docker runtime keeps everything in labels and writes nothing here. */
  stateDir: string
  /** Defaults to the engine DOCKER_HOST names, else the default socket. */
  docker?: Docker
  /** The image of every pod's infrastructure container (must have `sleep`). */
  infraImage?: string
  /** Where the runtime says what it cannot do (pods without cluster DNS). Default: stderr. */
  log?: (line: string) => void
}

/** A container as the engine's list shows it, with the identity its labels give. */
interface Run {
  info: Docker.ContainerInfo
  identity: ContainerIdentity
}

/** An observation and the list state it was made in: valid while the engine lists the same state. */
interface CachedObservation {
  listedState: string
  observation: ContainerObservation
}

export class DockerRuntime implements ContainerRuntime {
  readonly kind = 'docker' as const
  readonly stateDir: string
  private readonly docker: Docker
  private readonly nodeName: string
  private readonly infraImage: string
  private readonly imageIds: ImageIdResolver
  private readonly listeners = new Set<RuntimeChangeListener>()
  private events: EngineEventWatcher | undefined
  /** One sandbox creation at a time per pod: concurrent callers share it. */
  private readonly sandboxesInFlight = new Map<string, Promise<{ infraId: string; sandbox: Sandbox }>>()
  private readonly observations = new Map<string, CachedObservation>()
  private engineIsPodman: Promise<boolean> | undefined
  /** Made when a pod first needs a resolver the engine cannot take as it is (the peer's cluster DNS). */
  private containerDns: ContainerDns | undefined
  private readonly log: (line: string) => void

  constructor(options: DockerRuntimeOptions) {
    this.nodeName = options.nodeName
    this.stateDir = options.stateDir
    this.docker = options.docker ?? new Docker()
    this.infraImage = options.infraImage ?? defaultInfraImage
    this.imageIds = new ImageIdResolver(this.docker)
    this.log = options.log ?? ((line) => console.error(`shoal: ${line}`))
  }

  async version(): Promise<string> {
    try {
      return `docker://${(await this.docker.version()).Version}`
    } catch (err) {
      return rethrowUnavailable(err)
    }
  }

  async ensureSandbox(pod: SandboxSpec): Promise<Sandbox> {
    return (await this.ensureInfra(pod)).sandbox
  }

  async startContainer(pod: SandboxSpec, spec: ContainerSpec): Promise<ContainerObservation> {
    const { infraId } = await this.ensureInfra(pod)
    await ensureImage(this.docker, spec.image, spec.imagePullPolicy)
    const runs = await this.listRuns({ [labelPodUid]: pod.uid, [labelContainerName]: spec.name })
    const sameRun = runs.find((run) => run.identity.attempt === spec.attempt)
    if (sameRun !== undefined) {
      // Started before (an agent that died before recording it): keep it if it runs, else start it afresh.
      const observed = isRunning(sameRun) ? await this.observe(sameRun) : undefined
      if (observed !== undefined) return observed
      await this.removeRun(sameRun.info.Id)
    }

    const container = await this.createContainer(appCreateOptions(this.nodeName, pod, spec, infraId, await this.isPodman()))
    try {
      await container.start()
    } catch (err) {
      throwIfUnavailable(err)
      await this.removeRun(container.id)
      throw new RunContainerError(engineMessage(err))
    }
    const older = runs.filter((run) => run.identity.attempt < spec.attempt - 1)
    await Promise.all(older.map((run) => this.removeRun(run.info.Id)))
    const info = await this.docker.getContainer(container.id).inspect()
    const identity = identityFromLabels(info.Config.Labels)
    if (identity === undefined) throw new RunContainerError(`container ${container.id} lost its labels`)
    return observationFromInspect(identity, info, await this.imageIds.resolve(info.Image))
  }

  async stopContainer(uid: string, containerName: string, gracePeriodMs: number): Promise<void> {
    const runs = await this.listRuns({ [labelPodUid]: uid, [labelContainerName]: containerName })
    await Promise.all(runs.filter(isRunning).map((run) => this.stopRun(run.info.Id, gracePeriodMs)))
  }

  async removePod(uid: string, gracePeriodMs: number): Promise<void> {
    const runs = await this.listRuns({ [labelPodUid]: uid })
    await Promise.all(runs.filter((run) => !isInfra(run) && isRunning(run)).map((run) => this.stopRun(run.info.Id, gracePeriodMs)))
    await Promise.all(runs.filter((run) => isInfra(run) && isRunning(run)).map((run) => this.stopRun(run.info.Id, 0)))
    // Podman refuses to remove the sandbox while containers joined to it exist.
    await Promise.all(runs.filter((run) => !isInfra(run)).map((run) => this.removeRun(run.info.Id)))
    await Promise.all(runs.filter(isInfra).map((run) => this.removeRun(run.info.Id)))
  }

  async listPods(): Promise<PodObservation[]> {
    const runs = await this.listRuns({})
    const pods = new Map<string, PodObservation>()
    const appRuns: Run[] = []
    for (const run of runs) {
      const { uid, namespace, podName, containerName, terminationGracePeriodMs } = run.identity
      let pod = pods.get(uid)
      if (pod === undefined) {
        pod = { uid, namespace, name: podName, containers: [] }
        pods.set(uid, pod)
      }
      if (terminationGracePeriodMs !== undefined) pod.terminationGracePeriodMs = terminationGracePeriodMs
      if (containerName !== infraContainerName) appRuns.push(run)
      else if (isRunning(run)) pod.sandbox = { uid, podIp: podIpOf(run.info.NetworkSettings as Parameters<typeof podIpOf>[0]) }
    }
    const observed = await mapBounded(appRuns, inspectConcurrencyMax, (run) => this.observe(run))
    appRuns.forEach((run, index) => {
      const observation = observed[index]
      if (observation !== undefined) pods.get(run.identity.uid)?.containers.push(observation)
    })
    this.forgetObservationsExcept(new Set(runs.map((run) => run.info.Id)))
    for (const pod of pods.values()) {
      pod.containers.sort((a, b) => (a.name === b.name ? a.attempt - b.attempt : a.name < b.name ? -1 : 1))
    }
    return [...pods.values()]
  }

  async exec(uid: string, containerName: string, command: string[], timeoutMs: number): Promise<ExecResult> {
    const run = await this.currentRun(uid, containerName)
    if (!isRunning(run)) throw new ContainerNotRunningError(`container "${containerName}" of pod ${uid} is not running`)
    return execInContainer(this.docker.getContainer(run.info.Id), command, timeoutMs, execOutputBytesMax)
  }

  async *logs(uid: string, containerName: string, options: LogOptions, signal: AbortSignal): AsyncIterable<LogLine> {
    const current = await this.currentRun(uid, containerName)
    let run = current
    if (options.previous) {
      const runs = await this.listRuns({ [labelPodUid]: uid, [labelContainerName]: containerName })
      const previous = runs.find((candidate) => candidate.identity.attempt === current.identity.attempt - 1)
      if (previous === undefined) {
        throw new ContainerNotFoundError(`previous terminated container "${containerName}" in pod ${uid} not found`)
      }
      run = previous
    }
    yield* followLogs(this.docker.getContainer(run.info.Id), options, signal)
  }

  onChange(listener: RuntimeChangeListener): void {
    this.listeners.add(listener)
    if (this.events !== undefined) return
    this.events = new EngineEventWatcher(this.docker, this.nodeName, (uid, containerName) => {
      for (const each of this.listeners) each(uid, containerName)
    })
    this.events.start()
  }

  async close(): Promise<void> {
    await this.containerDns?.close()
    this.events?.close()
    this.events = undefined
    this.listeners.clear()
  }

  /** Finds the pod's running infrastructure container, starting or creating it when needed. */
  private ensureInfra(pod: SandboxSpec): Promise<{ infraId: string; sandbox: Sandbox }> {
    const inFlight = this.sandboxesInFlight.get(pod.uid)
    if (inFlight !== undefined) return inFlight
    const ensured = this.ensureInfraOnce(pod).finally(() => this.sandboxesInFlight.delete(pod.uid))
    this.sandboxesInFlight.set(pod.uid, ensured)
    return ensured
  }

  private async ensureInfraOnce(pod: SandboxSpec): Promise<{ infraId: string; sandbox: Sandbox }> {
    const runs = await this.listRuns({ [labelPodUid]: pod.uid })
    const infras = runs.filter(isInfra)
    const running = infras.find(isRunning)
    if (running !== undefined) return this.sandboxOf(pod.uid, running.info.Id)
    if (infras.length > 0) {
      // The sandbox died: its app containers are left in a namespace with nothing but loopback. Stop them (the
      // agent starts new runs in the restarted sandbox), as kubelet does when a pod's sandbox changes.
      const apps = runs.filter((run) => !isInfra(run))
      await Promise.all(apps.filter(isRunning).map((run) => this.stopRun(run.info.Id, 0)))
      for (const stopped of infras) {
        try {
          await this.docker.getContainer(stopped.info.Id).start()
          return await this.sandboxOf(pod.uid, stopped.info.Id)
        } catch (err) {
          throwIfUnavailable(err)
        }
      }
      // None starts again: replace it, first removing the runs joined to it (the engine refuses otherwise).
      await Promise.all(apps.map((run) => this.removeRun(run.info.Id)))
      await Promise.all(infras.map((run) => this.removeRun(run.info.Id)))
    }
    await ensureImage(this.docker, this.infraImage, 'IfNotPresent')
    const created = await this.createContainer(infraCreateOptions(this.nodeName, pod, this.infraImage, await this.resolversFor(pod)))
    try {
      await created.start()
    } catch (err) {
      throwIfUnavailable(err)
      await this.removeRun(created.id)
      throw new RunContainerError(`pod sandbox would not start: ${engineMessage(err)}`)
    }
    return this.sandboxOf(pod.uid, created.id)
  }

  /** The pod's nameservers as the engine takes them: IPs on port 53 as they are, the peer's cluster DNS through ContainerDns. */
  private async resolversFor(pod: SandboxSpec): Promise<string[]> {
    const resolvers: string[] = []
    for (const server of pod.dnsServers) {
      const usable = engineUsableResolver(server)
      if (usable !== null) {
        resolvers.push(usable)
        continue
      }
      this.containerDns ??= new ContainerDns({ docker: this.docker, clusterDns: server, log: this.log })
      // One relay, to the first such server (a peer has one cluster DNS).
      const relayed = await this.containerDns.resolverIp()
      if (relayed !== null) resolvers.push(relayed)
    }
    return [...new Set(resolvers)]
  }

  private async sandboxOf(uid: string, infraId: string): Promise<{ infraId: string; sandbox: Sandbox }> {
    const info = await this.docker.getContainer(infraId).inspect()
    return { infraId, sandbox: { uid, podIp: podIpOf(info.NetworkSettings as Parameters<typeof podIpOf>[0]) } }
  }

  private async createContainer(options: Docker.ContainerCreateOptions): Promise<Docker.Container> {
    try {
      return await this.docker.createContainer(options)
    } catch (err) {
      throwIfUnavailable(err)
      throw new CreateContainerError(engineMessage(err))
    }
  }

  /** The engine's containers of this node narrowed by labels, newest attempt first. */
  private async listRuns(narrowedBy: Record<string, string>): Promise<Run[]> {
    let infos: Docker.ContainerInfo[]
    try {
      infos = await this.docker.listContainers({ all: true, filters: labelFilters(this.nodeName, narrowedBy) })
    } catch (err) {
      return rethrowUnavailable(err)
    }
    const runs: Run[] = []
    for (const info of infos) {
      const identity = identityFromLabels(info.Labels)
      if (identity !== undefined) runs.push({ info, identity })
    }
    return runs.sort((a, b) => b.identity.attempt - a.identity.attempt)
  }

  private async currentRun(uid: string, containerName: string): Promise<Run> {
    const [newest] = await this.listRuns({ [labelPodUid]: uid, [labelContainerName]: containerName })
    if (newest === undefined) throw new ContainerNotFoundError(`container "${containerName}" of pod ${uid} not found`)
    return newest
  }

  /** Inspects a run unless the engine still lists it in the state it was last inspected in. Undefined: gone meanwhile. */
  private async observe(run: Run): Promise<ContainerObservation | undefined> {
    const cached = this.observations.get(run.info.Id)
    if (cached !== undefined && cached.listedState === run.info.State) return cached.observation
    let info: Docker.ContainerInspectInfo
    try {
      info = await this.docker.getContainer(run.info.Id).inspect()
    } catch (err) {
      if (engineStatusCode(err) === 404) return undefined
      return rethrowUnavailable(err)
    }
    const observation = observationFromInspect(run.identity, info, await this.imageIds.resolve(info.Image))
    this.observations.set(run.info.Id, { listedState: run.info.State, observation })
    return observation
  }

  private forgetObservationsExcept(listedIds: Set<string>): void {
    for (const id of this.observations.keys()) if (!listedIds.has(id)) this.observations.delete(id)
  }

  private async stopRun(id: string, gracePeriodMs: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: Math.ceil(Math.max(0, gracePeriodMs) / 1000) })
    } catch (err) {
      if (!isGoneOrAlready(err)) rethrowUnavailable(err)
    }
  }

  private async removeRun(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true })
    } catch (err) {
      // 404: gone already; 409: another removal of it is under way.
      if (!isGoneOrAlready(err) && engineStatusCode(err) !== 409) rethrowUnavailable(err)
    }
    this.observations.delete(id)
  }

  private isPodman(): Promise<boolean> {
    this.engineIsPodman ??= this.docker.version().then(
      (version) => (version.Components ?? []).some((component) => /podman/i.test(component.Name)),
      () => false,
    )
    return this.engineIsPodman
  }
}

function isInfra(run: Run): boolean {
  return run.identity.containerName === infraContainerName
}

function isRunning(run: Run): boolean {
  return runStateOf(run.info.State) === 'running'
}

/** `map` with at most `concurrency` calls in flight, results in input order. */
async function mapBounded<T, R>(items: T[], concurrency: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await map(items[index] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return results
}
