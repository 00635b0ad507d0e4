// Container logs for GET pods/NAME/log, on any peer. The peer a pod is bound
// to (its Node's name is the peer's name) reads them from its runtime; any
// other peer asks that one over /shoal/logs/1 (net/log-stream.ts) and passes
// the bytes on, with the same backpressure and cancellation. Which run is
// read, and the errors when there is none, follow the kubelet: the
// container's status says which run (`previous` is its last termination), and
// what the runtime still keeps is checked, so a status a moment behind the
// runtime does not hide a run that is there. Lines get the kubelet's
// RFC3339Nano prefix with `timestamps`; tailLines and since are the runtime's,
// limitBytes is cut here, on the pod's peer.
import type { PeerHost } from '../../net/host.js'
import { LogStreamServer, openLogStream } from '../../net/log-stream.js'
import type { PodLogOptions, PodLogSource } from '../api/pod-log.js'
import { StatusError, badRequest, toStatusError } from '../api/status.js'
import type { ApiObject } from '../kinds/meta.js'
import type { ContainerObservation, ContainerRuntime, LogLine, LogOptions } from './runtime.js'

export interface PodLogServiceOptions {
  /** This peer's runtime; null when this peer runs no agent (it can still read other peers' pods). */
  runtime: ContainerRuntime | null
  /** This peer's Node name. */
  nodeName: string
  /** null: this peer cannot reach the others (tests, a peer without networking). */
  host: PeerHost | null
  /** The peer id of the peer whose Node this is (the registry's peer of that name), if it is still in the cluster. */
  peerIdOfNode: (nodeName: string) => string | undefined
  nowMs?: () => number
  /** Streams this peer serves to others at once (net/log-stream.ts's logStreamsServedMax by default). */
  streamsServedMax?: number
}

interface ContainerStateJson {
  waiting?: { reason?: string }
  running?: object
  terminated?: { containerID?: string }
}

interface ContainerStatusJson {
  name: string
  containerID?: string
  state?: ContainerStateJson
  lastState?: ContainerStateJson
}

type LogPod = ApiObject & {
  spec?: { nodeName?: string }
  status?: { containerStatuses?: ContainerStatusJson[]; initContainerStatuses?: ContainerStatusJson[] }
}

/** What one peer asks the pod's peer for. */
interface LogRequest {
  pod: LogPod
  container: string
  options: PodLogOptions
}

function isLogRequest(r: unknown): r is LogRequest {
  const v = r as Partial<LogRequest> | null
  return typeof v === 'object' && v !== null && typeof v.container === 'string' && typeof v.pod?.metadata === 'object' && typeof v.options === 'object' && v.options !== null
}

function containerStatus(pod: LogPod, container: string): ContainerStatusJson | undefined {
  const all = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])]
  return all.find((s) => s.name === container)
}

/** The run the kubelet would read, by container id, or why there is none (its words). */
function statusRef(podName: string, container: string, status: ContainerStatusJson | undefined): { id: string } | { message: string } {
  const named = `container "${container}" in pod "${podName}"`
  if (status === undefined) return { message: `${named} is waiting to start: ContainerCreating` }
  const { state, lastState } = status
  const lastId = lastState?.terminated?.containerID
  if (state?.running !== undefined && status.containerID) return { id: status.containerID }
  if (state?.terminated !== undefined) {
    const id = state.terminated.containerID || lastId
    return id ? { id } : { message: `${named} is terminated` }
  }
  if (lastState?.terminated !== undefined) return lastId ? { id: lastId } : { message: `${named} is terminated` }
  const reason = state?.waiting?.reason
  if (reason === 'ErrImagePull') return { message: `${named} is waiting to start: image can't be pulled` }
  if (reason === 'ImagePullBackOff') return { message: `${named} is waiting to start: trying and failing to pull image` }
  if (reason !== undefined && reason !== '') return { message: `${named} is waiting to start: ${reason}` }
  return { message: `${named} is waiting to start - no logs yet` }
}

/**
 * Which run's log to read, as the runtime names it (`previous`: the run before
 * its newest), from the container's status and the runs the runtime keeps
 * (oldest first); a 400 in the kubelet's words when there is none.
 */
export function chooseRun(podName: string, container: string, status: ContainerStatusJson | undefined, runs: readonly ContainerObservation[], previous: boolean): { previous: boolean } {
  const asLogged = (run: ContainerObservation | undefined): { previous: boolean } | undefined => {
    const index = run === undefined ? -1 : runs.indexOf(run)
    if (index < 0 || index < runs.length - 2) return undefined
    return { previous: index === runs.length - 2 }
  }
  const byId = (id: string | undefined): ContainerObservation | undefined => (id ? runs.find((r) => r.containerId === id) : undefined)
  if (previous) {
    const chosen = asLogged(byId(status?.lastState?.terminated?.containerID))
    if (chosen === undefined) throw badRequest(`previous terminated container "${container}" in pod "${podName}" not found`)
    return chosen
  }
  const newest = runs.at(-1)
  if (newest?.state === 'running') return { previous: false }
  const ref = statusRef(podName, container, status)
  const chosen = 'id' in ref ? asLogged(byId(ref.id)) : undefined
  if (chosen !== undefined) return chosen
  // The status is a moment behind the runtime: a run that ended is still there to read.
  if (newest?.state === 'exited') return { previous: false }
  throw badRequest('message' in ref ? ref.message : `container "${container}" in pod "${podName}" is not available`)
}

/** The bytes of the lines: the kubelet's timestamp prefix, and cut at limitBytes (mid-line, as the kubelet cuts). */
export async function* formatLog(lines: AsyncIterable<LogLine>, options: Pick<PodLogOptions, 'timestamps' | 'limitBytes'>): AsyncGenerator<Uint8Array> {
  let remainingBytes = options.limitBytes ?? Infinity
  for await (const line of lines) {
    const bytes = Buffer.from(options.timestamps ? `${line.time} ${line.text}\n` : `${line.text}\n`)
    if (bytes.byteLength >= remainingBytes) {
      yield bytes.subarray(0, remainingBytes)
      return
    }
    remainingBytes -= bytes.byteLength
    yield bytes
  }
}

export class PodLogService implements PodLogSource {
  private server: LogStreamServer | null = null
  private readonly nowMs: () => number
  private runtime: ContainerRuntime | null

  constructor(private readonly o: PodLogServiceOptions) {
    this.nowMs = o.nowMs ?? Date.now
    this.runtime = o.runtime
  }

  /** The runtime arrived (or went) after the API started serving: logs of pods here come from it from now on. */
  setRuntime(runtime: ContainerRuntime | null): void {
    this.runtime = runtime
  }

  /** Serves this peer's pods' logs to the other peers. */
  async start(): Promise<void> {
    if (this.o.host === null) return
    this.server = new LogStreamServer({
      host: this.o.host,
      handler: (request, _from, signal) => this.serveRemote(request, signal),
      ...(this.o.streamsServedMax === undefined ? {} : { streamsMax: this.o.streamsServedMax }),
    })
    await this.server.start()
  }

  async stop(): Promise<void> {
    await this.server?.stop()
    this.server = null
  }

  /** Log streams this peer serves to others now. */
  get servedStreams(): number {
    return this.server?.active ?? 0
  }

  async open(pod: ApiObject, container: string, options: PodLogOptions, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const nodeName = (pod as LogPod).spec?.nodeName ?? ''
    if (nodeName === '') throw badRequest(`pod ${pod.metadata.name ?? ''} does not have a host assigned`)
    if (nodeName === this.o.nodeName) return this.openLocal(pod as LogPod, container, options, signal)
    return this.openRemote(nodeName, pod as LogPod, container, options, signal)
  }

  private async openLocal(pod: LogPod, container: string, options: PodLogOptions, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const podName = pod.metadata.name ?? ''
    const runtime = this.runtime
    if (runtime === null) throw badRequest(`container "${container}" in pod "${podName}" is waiting to start: node "${this.o.nodeName}" runs no agent`)
    const uid = pod.metadata.uid ?? ''
    const observation = (await runtime.listPods()).find((p) => p.uid === uid)
    const runs = (observation?.containers ?? []).filter((r) => r.name === container).sort((a, b) => a.attempt - b.attempt)
    const { previous } = chooseRun(podName, container, containerStatus(pod, container), runs, options.previous)
    const logOptions: LogOptions = { follow: options.follow, previous }
    if (options.tailLines !== undefined) logOptions.tailLines = options.tailLines
    if (options.sinceSeconds !== undefined) logOptions.sinceMs = this.nowMs() - options.sinceSeconds * 1000
    if (options.sinceTime !== undefined) logOptions.sinceMs = Date.parse(options.sinceTime)
    signal.throwIfAborted()
    return formatLog(runtime.logs(uid, container, logOptions, signal), options)
  }

  private async openRemote(nodeName: string, pod: LogPod, container: string, options: PodLogOptions, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const podName = pod.metadata.name ?? ''
    const peerId = this.o.peerIdOfNode(nodeName)
    if (peerId === undefined) throw new StatusError(503, 'ServiceUnavailable', `node "${nodeName}", which runs pod "${podName}", is no longer a peer of this cluster: its logs cannot be read`)
    if (this.o.host === null) throw new StatusError(503, 'ServiceUnavailable', `pod "${podName}" runs on node "${nodeName}", and this peer cannot reach other peers: ask the API of "${nodeName}"`)
    const request: LogRequest = { pod, container, options }
    try {
      return await openLogStream(this.o.host, peerId, request, { signal })
    } catch (err) {
      if (signal.aborted) throw err
      throw remoteFailure(err as Error, nodeName, podName)
    }
  }

  /** Another peer asks for the log of a pod bound here. */
  private async serveRemote(request: unknown, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    if (!isLogRequest(request)) throw badRequest('malformed log request')
    const nodeName = request.pod.spec?.nodeName ?? ''
    if (nodeName !== this.o.nodeName) throw badRequest(`pod "${request.pod.metadata.name ?? ''}" is bound to node "${nodeName}", not to "${this.o.nodeName}"`)
    return this.openLocal(request.pod, request.container, request.options, signal)
  }
}

/** Why the pod's peer did not stream its log, as a Status: its own Status as it is, the rest named. */
function remoteFailure(err: Error, nodeName: string, podName: string): StatusError {
  if (err.name === 'StatusError') return toStatusError(err)
  if (err.name === 'TooManyLogStreamsError') return new StatusError(429, 'TooManyRequests', `node "${nodeName}": ${err.message}`, { retryAfterSeconds: 1 })
  return new StatusError(503, 'ServiceUnavailable', `cannot read the logs of pod "${podName}" from node "${nodeName}": ${err.message}`)
}
