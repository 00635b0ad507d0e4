// What the agent asks of a container runtime, and what a runtime reports back.
// The agent decides (what should run, when to restart, back-off, probes);
// a runtime only carries out one step at a time and says what it sees. Two
// runtimes implement it: `docker-runtime.ts` (any Docker-compatible engine,
// through dockerode) and `process-runtime.ts` (child processes, the default
// when no engine answers).

/** A port a container declares. */
export interface PortSpec {
  name?: string
  containerPort: number
  protocol: 'TCP' | 'UDP' | 'SCTP'
}

/** A volume mounted into a container, already resolved to a host directory. */
export interface MountSpec {
  /** The volume's name in the pod spec. */
  name: string
  /** Where the container sees it. */
  mountPath: string
  /** The host directory (emptyDir: one the agent made under the data dir; hostPath: the user's path). */
  hostPath: string
  readOnly: boolean
}

/** The pod as a runtime needs it: identity and what its sandbox offers. */
export interface SandboxSpec {
  uid: string
  namespace: string
  name: string
  /** Every container's ports, in spec order: the process runtime exports them as PORT and PORT_<name>. */
  ports: PortSpec[]
  /** DNS servers the pod's containers resolve through (cluster DNS); empty for the host's. */
  dnsServers: string[]
  /** DNS search domains (for example `default.svc.cluster.local svc.cluster.local cluster.local`). */
  dnsSearches: string[]
  /**
   * The pod's terminationGracePeriodSeconds in ms, kept with the pod: a restarted
   * agent that never saw the spec (the pod was deleted while the peer was down)
   * stops it with this rather than a default.
   */
  terminationGracePeriodMs?: number
}

export type ImagePullPolicy = 'Always' | 'IfNotPresent' | 'Never'

/** One run of one container: the agent resolved env and volumes. */
export interface ContainerSpec {
  name: string
  image: string
  imagePullPolicy: ImagePullPolicy
  /** Replaces the image's entrypoint (Kubernetes `command`). */
  command?: string[]
  /** Replaces the image's default arguments (Kubernetes `args`). */
  args?: string[]
  /** Fully resolved, in order; later names win. */
  env: { name: string; value: string }[]
  workingDir?: string
  ports: PortSpec[]
  mounts: MountSpec[]
  /** CPU limit in millicores; undefined for none. */
  cpuLimitMillis?: number
  /** Memory limit in bytes; undefined for none. */
  memoryLimitBytes?: number
  /** 0 for the first run, then one more per restart: it names the run (logs of `previous` are attempt - 1). */
  attempt: number
}

/** A pod's sandbox as it runs: what holds its network. */
export interface Sandbox {
  uid: string
  podIp: string
}

export type ContainerRunState = 'created' | 'running' | 'exited'

/** What the runtime sees of one run of a container. */
export interface ContainerObservation {
  name: string
  /** The runtime's id for this run: `docker://<id>` or `process://<pid>`. */
  containerId: string
  attempt: number
  image: string
  /** The resolved image id (`docker-pullable://...` style or the program's path). */
  imageId: string
  state: ContainerRunState
  /** ISO 8601 times. */
  startedAt?: string
  finishedAt?: string
  exitCode?: number
  /**
   * Set for exits: `Completed` (0), `Error`, `OOMKilled`, or `ContainerStatusUnknown`
   * (exit code 137) for a run that ended while no agent watched it, so its real
   * exit code is lost.
   */
  reason?: string
}

/** What the runtime sees of one pod: its sandbox and every run it still keeps. */
export interface PodObservation {
  uid: string
  namespace: string
  name: string
  /** Undefined when the sandbox is gone or never started. */
  sandbox?: Sandbox
  /** Every run still known, newest attempt last for each container name. */
  containers: ContainerObservation[]
  /** The grace period the pod's sandbox was made with, when the runtime keeps it. */
  terminationGracePeriodMs?: number
}

export interface ExecResult {
  exitCode: number
  /** stdout and stderr together, capped at `execOutputBytesMax`. */
  output: string
}

/** Output kept from an exec (probe messages quote it). */
export const execOutputBytesMax = 10 * 1024

export interface LogOptions {
  /** Keep the iterable open and yield lines as they are written. */
  follow: boolean
  /** Only the last N lines (before following). */
  tailLines?: number
  /** Only lines written at or after this time (ms since the epoch). */
  sinceMs?: number
  /** The run before the current one (attempt - 1). */
  previous: boolean
}

export interface LogLine {
  /** When the line was written, RFC 3339 with nanoseconds as Kubernetes prints it (Podman only knows the second). */
  time: string
  stream: 'stdout' | 'stderr'
  /** Without the trailing newline. */
  text: string
}

/** Told when a container's run changes state (exits, mostly), so the agent reconciles at once; `sandboxContainerName` when the sandbox itself changed. */
export const sandboxContainerName = 'POD'

export type RuntimeChangeListener = (uid: string, containerName: string) => void

export interface ContainerRuntime {
  /** `docker` or `process`. */
  readonly kind: 'docker' | 'process'
  /** For `Node.status.nodeInfo.containerRuntimeVersion`: `docker://4.3.1`, `process://`. */
  version(): Promise<string>
  /** Creates the pod's sandbox if missing (idempotent) and returns it. */
  ensureSandbox(pod: SandboxSpec): Promise<Sandbox>
  /**
   * Starts one run of a container in the pod's sandbox (pulling the image as
   * its policy says). Throws the errors of `runtime-errors.ts`, whose
   * `waitingReason` the agent reports. Earlier runs of the same container,
   * except the one just before, are removed.
   */
  startContainer(pod: SandboxSpec, container: ContainerSpec): Promise<ContainerObservation>
  /** SIGTERM, then SIGKILL after `gracePeriodMs`; resolves once it has exited. Unknown: no-op. */
  stopContainer(uid: string, containerName: string, gracePeriodMs: number): Promise<void>
  /** Stops every container (as `stopContainer`), removes the sandbox and every run and log of the pod. */
  removePod(uid: string, gracePeriodMs: number): Promise<void>
  /** Everything this runtime runs for Shoal on this peer, including what an earlier agent process started. */
  listPods(): Promise<PodObservation[]>
  /**
   * Runs a command inside a running container (exec probes). Throws
   * ExecTimeoutError past `timeoutMs`, ContainerNotFoundError or
   * ContainerNotRunningError when there is nothing to run it in.
   */
  exec(uid: string, containerName: string, command: string[], timeoutMs: number): Promise<ExecResult>
  /** A container's log lines; ends when the run ends (follow) or at the end of what is written. */
  logs(uid: string, containerName: string, options: LogOptions, signal: AbortSignal): AsyncIterable<LogLine>
  onChange(listener: RuntimeChangeListener): void
  /** Stops watching; leaves containers running (a restarted agent adopts them). */
  close(): Promise<void>
}
