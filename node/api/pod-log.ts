// GET pods/NAME/log. Which container is meant and which options are valid is
// decided here, as the API server decides it; the bytes come from a
// PodLogSource (the agent's log service: the pod's own peer reads its runtime,
// any other peer streams from it over libp2p). The answer is text/plain,
// chunked, written as lines arrive and only as fast as the client reads, and
// it ends when the log does (the container's run, for a followed log) or when
// the client goes away. Without a source (no agent on this peer and no way to
// reach the others) no container can have started: a 400 naming it.
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { coalesceChunks, logChunkBytesMax } from '../../net/log-stream.js'
import type { ApiObject } from '../kinds/meta.js'
import { badRequest, invalid } from './status.js'
import type { FieldCause } from './schema.js'

interface PodContainers {
  spec?: { containers?: { name?: string }[]; initContainers?: { name?: string }[] }
}

function namesOf(list: { name?: string }[] | undefined): string[] {
  return (list ?? []).map((c) => c.name ?? '').filter((n) => n !== '')
}

/** The container `?container=` names, or the pod's only one; a 400 when that is not clear. */
export function logContainer(pod: ApiObject, requested: string | null): string {
  const podName = pod.metadata.name ?? ''
  const { spec } = pod as ApiObject & PodContainers
  const containers = namesOf(spec?.containers)
  const initContainers = namesOf(spec?.initContainers)
  if (requested !== null && requested !== '') {
    if (!containers.includes(requested) && !initContainers.includes(requested)) throw badRequest(`container ${requested} is not valid for pod ${podName}`)
    return requested
  }
  if (containers.length === 1) return containers[0]!
  const init = initContainers.length > 0 ? ` or one of the init containers: [${initContainers.join(' ')}]` : ''
  throw badRequest(`a container name must be specified for pod ${podName}, choose one of: [${containers.join(' ')}]${init}`)
}

/** The log of a container where nothing can run it (no source): always throws a Status. */
export function podLog(pod: ApiObject, query: URLSearchParams): never {
  const container = logContainer(pod, query.get('container'))
  if (query.get('previous') === 'true') throw badRequest(`previous terminated container "${container}" in pod "${pod.metadata.name ?? ''}" not found`)
  throw badRequest(`container "${container}" in pod "${pod.metadata.name ?? ''}" is waiting to start: no agent runs pods yet`)
}

/** PodLogOptions, parsed and validated (kubectl's --since becomes sinceSeconds, --since-time sinceTime). */
export interface PodLogOptions {
  follow: boolean
  previous: boolean
  timestamps: boolean
  tailLines?: number
  sinceSeconds?: number
  /** RFC 3339. */
  sinceTime?: string
  limitBytes?: number
}

/** Where a container's log comes from; errors it throws are Statuses (or become them). */
export interface PodLogSource {
  /** Resolves once the log can be read (a Status otherwise), with its bytes; aborting `signal` stops the reading. */
  open(pod: ApiObject, container: string, options: PodLogOptions, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>>
}

/** Query booleans as the API server converts them: absent, `0` and `false` are false, anything else true. */
function boolParam(query: URLSearchParams, name: string): boolean {
  const v = query.get(name)
  return v !== null && v !== '0' && v.toLowerCase() !== 'false'
}

function intParam(query: URLSearchParams, name: string): number | undefined {
  const v = query.get(name)
  if (v === null || v === '') return undefined
  const n = Number(v)
  if (!/^[+-]?\d+$/.test(v) || !Number.isSafeInteger(n)) throw badRequest(`strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`)
  return n
}

const rfc3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/

/** The query's PodLogOptions: 400 for what does not parse, 422 for values Kubernetes' validation refuses. */
export function podLogOptions(podName: string, query: URLSearchParams): PodLogOptions {
  const sinceTime = query.get('sinceTime') ?? ''
  if (sinceTime !== '' && !(rfc3339.test(sinceTime) && Number.isFinite(Date.parse(sinceTime)))) {
    throw badRequest(`parsing time ${JSON.stringify(sinceTime)} as "2006-01-02T15:04:05Z07:00": sinceTime must be an RFC 3339 time`)
  }
  const options: PodLogOptions = { follow: boolParam(query, 'follow'), previous: boolParam(query, 'previous'), timestamps: boolParam(query, 'timestamps') }
  const tailLines = intParam(query, 'tailLines')
  const sinceSeconds = intParam(query, 'sinceSeconds')
  const limitBytes = intParam(query, 'limitBytes')
  const causes: FieldCause[] = []
  if (tailLines !== undefined && tailLines < 0) causes.push({ reason: 'FieldValueInvalid', field: 'tailLines', message: `Invalid value: ${tailLines}: must be greater than or equal to 0` })
  if (limitBytes !== undefined && limitBytes < 1) causes.push({ reason: 'FieldValueInvalid', field: 'limitBytes', message: `Invalid value: ${limitBytes}: must be greater than 0` })
  if (sinceSeconds !== undefined && sinceTime !== '') causes.push({ reason: 'FieldValueForbidden', field: '', message: 'Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified' })
  else if (sinceSeconds !== undefined && sinceSeconds < 1) causes.push({ reason: 'FieldValueInvalid', field: 'sinceSeconds', message: `Invalid value: ${sinceSeconds}: must be greater than 0` })
  if (causes.length > 0) throw invalid('PodLogOptions', podName, causes)
  if (tailLines !== undefined) options.tailLines = tailLines
  if (sinceSeconds !== undefined) options.sinceSeconds = sinceSeconds
  if (sinceTime !== '') options.sinceTime = sinceTime
  if (limitBytes !== undefined) options.limitBytes = limitBytes
  return options
}

/** Streams the log as the HTTP answer; returns null (the answer is written). */
export async function servePodLog(source: PodLogSource, pod: ApiObject, query: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<null> {
  const container = logContainer(pod, query.get('container'))
  const options = podLogOptions(pod.metadata.name ?? '', query)
  const abort = new AbortController()
  // The client went away (or the answer is complete): stop reading the log, here or on the pod's peer.
  const onClose = (): void => abort.abort(new Error(`the client of ${req.url ?? 'a log'} went away`))
  res.once('close', onClose)
  try {
    const body = await source.open(pod, container, options, abort.signal)
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-cache, private' })
    // A followed log may be quiet for long: the client should see the answer start now.
    res.flushHeaders()
    for await (const chunk of coalesceChunks(body, logChunkBytesMax, abort.signal)) {
      if (!res.write(chunk)) await once(res, 'drain', { signal: abort.signal })
    }
    res.end()
  } catch (err) {
    if (!abort.signal.aborted) throw err
  } finally {
    res.off('close', onClose)
    // Whatever ended the answer, nothing may go on reading for it.
    abort.abort(new Error('the log answer ended'))
  }
  return null
}
