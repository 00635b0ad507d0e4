// Watch over HTTP: a chunked stream of newline-delimited JSON events,
// {"type":"ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR","object":...}.
// Without a resourceVersion (or with "0") it starts with the current objects
// as ADDED; from a resourceVersion still in the window it replays what came
// after; an older one gets an ERROR event with a 410 Expired Status.
import type { ServerResponse } from 'node:http'
import { apiVersionOf, type KindDefinition } from '../kinds/kind.js'
import type { ApiObject } from '../kinds/meta.js'
import type { ObjectStore } from '../store/object-store.js'
import { kindKey } from '../store/object-store.js'
import { TooManyWatchesError, type WatchEvent } from '../store/watch.js'
import { listObjects, makeFilter, tableOf } from './read.js'
import { toStatusError } from './status.js'

export interface WatchRequest {
  def: KindDefinition
  namespace?: string
  name?: string
  labelSelector?: string
  fieldSelector?: string
  resourceVersion?: string
  timeoutSeconds?: number
  allowBookmarks: boolean
  /** The Accept header asked for Table rows (kubectl get -w). */
  asTable: boolean
  includeObject?: string
}

/** Watches end after this long unless the client asks for less (Kubernetes picks 30-60 minutes). */
const watchTimeoutMaxSeconds = 1800
const bookmarkIntervalMs = 60_000
/** Bytes queued to a slow watcher before it is cut off (it relists and rewatches). */
const watchBufferMaxBytes = 8 * 1024 * 1024

export function serveWatch(store: ObjectStore, req: WatchRequest, res: ServerResponse, nowMs: () => number): void {
  const filter = makeFilter(req.def, req)
  const kk = kindKey(apiVersionOf(req.def), req.def.kind)
  const matches = (o: ApiObject): boolean =>
    (req.namespace === undefined || o.metadata.namespace === req.namespace) && (req.name === undefined || o.metadata.name === req.name) && filter(o)
  const render = (type: string, o: ApiObject): string =>
    JSON.stringify({ type, object: req.asTable ? tableOf(req.def, [o], o.metadata.resourceVersion ?? '', req.includeObject, nowMs()) : o }) + '\n'
  // Refused before the stream starts, so the client sees 429 and backs off rather than an empty 200.
  if (store.watches.full) throw new TooManyWatchesError(store.watches.watchersMax)
  res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'cache-control': 'no-cache' })
  // Headers go out now, not with the first event: clients (client-node's Watch) wait for them before they write anything.
  res.flushHeaders()
  let stopped = false
  let stop = (): void => {}
  let timeout: ReturnType<typeof setTimeout> | undefined
  let bookmarks: ReturnType<typeof setInterval> | undefined
  const write = (text: string): void => {
    if (stopped) return
    res.write(text)
    // A watcher that cannot keep up is cut off rather than buffered without end.
    if (res.writableLength > watchBufferMaxBytes) finish()
  }
  const finish = (): void => {
    if (stopped) return
    stopped = true
    stop()
    clearTimeout(timeout)
    clearInterval(bookmarks)
    res.end()
  }
  const startRv = startingPoint(store, req, matches, (o) => write(render('ADDED', o)))
  try {
    stop = store.watches.watchFrom(startRv, (e: WatchEvent) => {
      if (e.kindKey === kk && matches(e.object)) write(render(e.type, e.object))
    })
  } catch (err) {
    write(JSON.stringify({ type: 'ERROR', object: toStatusError(err).toStatus() }) + '\n')
    stopped = true
    res.end()
    return
  }
  timeout = setTimeout(finish, Math.min(req.timeoutSeconds ?? watchTimeoutMaxSeconds, watchTimeoutMaxSeconds) * 1000)
  bookmarks = setInterval(() => {
    if (req.allowBookmarks) write(JSON.stringify({ type: 'BOOKMARK', object: { kind: req.def.kind, apiVersion: apiVersionOf(req.def), metadata: { resourceVersion: String(store.appliedIndex) } } }) + '\n')
  }, bookmarkIntervalMs)
  res.on('close', finish)
}

/** Send the current objects first when no resourceVersion (or "0") was given; return where events resume. */
function startingPoint(store: ObjectStore, req: WatchRequest, matches: (o: ApiObject) => boolean, added: (o: ApiObject) => void): number {
  const rv = req.resourceVersion
  if (rv !== undefined && rv !== '' && rv !== '0') {
    const n = Number(rv)
    return Number.isFinite(n) ? n : 0
  }
  const current = listObjects(store, req.def, req.namespace, {})
  for (const o of current.items) if (matches(o)) added(o)
  return Number(current.resourceVersion)
}
