// Events as Kubernetes records them: one Event object per (object, type,
// reason, message), its `count` and `lastTimestamp` bumped on a repeat, so
// `shoal get events` and `describe` show "x5 over 2m" rather than five lines.
// Occurrences that arrive while their Event is being written join its next
// write, and past 10 different messages for one object and reason they share
// a "(combined from similar events)" Event, as client-go's correlator does.
// Recording is best effort: an event that cannot be written is dropped (and
// counted), never retried in a loop.
import { createHash } from 'node:crypto'
import { prepareCreate } from '../api/prepare.js'
import { submit, type Submitter } from '../api/submit.js'
import { eventKind } from '../kinds/cluster.js'
import type { ApiObject } from '../kinds/meta.js'
import { refOf } from '../store/commands.js'
import type { ObjectStore } from '../store/object-store.js'

export type EventType = 'Normal' | 'Warning'

export interface EventSource {
  component: string
  host: string
}

/** Event writes waiting to go out; past it, new events are dropped. */
export const pendingEventsMax = 1000
/** As client-go's EventAggregator: past this many different messages for one (object, type, reason) in the window, they share one Event. */
export const similarEventsMax = 10
export const aggregationWindowMs = 10 * 60_000
/** (object, type, reason) keys remembered for aggregation; the oldest is forgotten past it. */
const aggregationKeysMax = 4096

export interface EventRecorderOptions {
  store: ObjectStore
  submitter: Submitter
  source: EventSource
  nowIso: () => string
  /** Event writes waiting at once, past which new events are dropped (pendingEventsMax when absent): a recorder whose user tells of more at once says so. */
  pendingMax?: number
}

export class EventRecorder {
  /** Events not written (the bound was hit, or the write failed). */
  dropped = 0
  /** Per (object, type, reason): the different messages seen in the current window. */
  private readonly similar = new Map<string, { sinceMs: number; messages: Set<string> }>()

  constructor(private readonly options: EventRecorderOptions) {}

  /** Occurrences waiting for their Event's next write, by Event name; one write per Event at a time. */
  private readonly queued = new Map<string, { involved: ApiObject; type: EventType; reason: string; message: string; count: number }>()
  private readonly writing = new Map<string, Promise<void>>()

  /** Record that `reason` happened to `involved`; resolves once written (or dropped). */
  record(involved: ApiObject, type: EventType, reason: string, message: string): Promise<void> {
    const combined = this.aggregate(involved, type, reason, message)
    const name = eventName(involved, type, reason, combined ? combinedPrefix : message)
    const text = combined ? `${combinedPrefix}${message}` : message
    const waiting = this.queued.get(name)
    // Occurrences that arrive while their Event is being written go into its next write, counted.
    if (waiting !== undefined) {
      waiting.count++
      waiting.message = text
      return this.writing.get(name) ?? Promise.resolve()
    }
    // Every queued Event has its writer: the writers are the Events waiting to go out.
    if (this.writing.size >= (this.options.pendingMax ?? pendingEventsMax)) {
      this.dropped++
      return Promise.resolve()
    }
    this.queued.set(name, { involved, type, reason, message: text, count: 1 })
    let writer = this.writing.get(name)
    if (writer === undefined) {
      writer = this.drain(name)
      this.writing.set(name, writer)
    }
    return writer
  }

  private async drain(name: string): Promise<void> {
    await Promise.resolve()
    for (let next = this.queued.get(name); next !== undefined; next = this.queued.get(name)) {
      this.queued.delete(name)
      try {
        const outcome = (await submit(this.options.submitter, this.command(next, name))).outcomes[0]
        if (outcome !== undefined && !outcome.ok) this.dropped += next.count
      } catch {
        this.dropped += next.count
      }
    }
    // In the same turn as the last look at the queue: an occurrence queued after it starts a new writer.
    this.writing.delete(name)
  }

  /**
   * The message to record: itself, or once an object has had more than `similarEventsMax` different
   * messages for one reason in the window (say, "Created pod: web-x7k2p" for each of 500 pods), the
   * shared "(combined from similar events): LATEST" Event, whose count counts them all.
   */
  private aggregate(involved: ApiObject, type: EventType, reason: string, message: string): boolean {
    const key = `${involved.metadata.uid ?? refOf(involved).name}\0${type}\0${reason}`
    const now = Date.parse(this.options.nowIso())
    let entry = this.similar.get(key)
    if (entry === undefined || now - entry.sinceMs > aggregationWindowMs) {
      entry = { sinceMs: now, messages: new Set() }
      this.similar.delete(key)
      this.similar.set(key, entry)
      if (this.similar.size > aggregationKeysMax) this.similar.delete(this.similar.keys().next().value!)
    }
    if (entry.messages.has(message) || entry.messages.size < similarEventsMax) {
      entry.messages.add(message)
      return false
    }
    return true
  }

  /** The write that adds `o.count` occurrences to Event `name` (creating it if need be). */
  private command(o: { involved: ApiObject; type: EventType; reason: string; message: string; count: number }, name: string): Parameters<typeof submit>[1] {
    const { store, source } = this.options
    const { involved, type, reason, message, count } = o
    const namespace = involved.metadata.namespace ?? 'default'
    const now = this.options.nowIso().replace(/\.\d+Z$/, 'Z')
    const existing = store.get({ apiVersion: 'v1', kind: 'Event', namespace, name }) as (ApiObject & { count?: number }) | undefined
    if (existing !== undefined) {
      const updated = { ...existing, message, count: (existing.count ?? 1) + count, lastTimestamp: now }
      return { op: 'obj.update', object: updated, ...(existing.metadata.resourceVersion === undefined ? {} : { expectResourceVersion: existing.metadata.resourceVersion }) }
    }
    const body = {
      metadata: { name, namespace },
      involvedObject: { kind: involved.kind, apiVersion: involved.apiVersion, name: involved.metadata.name, ...(involved.metadata.namespace === undefined ? {} : { namespace: involved.metadata.namespace }), ...(involved.metadata.uid === undefined ? {} : { uid: involved.metadata.uid }) },
      type,
      reason,
      message,
      source,
      reportingComponent: source.component,
      reportingInstance: source.host,
      count,
      firstTimestamp: now,
      lastTimestamp: now,
    }
    return { op: 'obj.create', object: prepareCreate(eventKind, body, namespace, 'Strict', now).object }
  }
}

/** How an aggregated Event's message begins, as client-go writes it; the latest message follows. */
export const combinedPrefix = '(combined from similar events): '

/** The same object, type, reason and message always map to the same Event, so repeats count up. */
export function eventName(involved: ApiObject, type: string, reason: string, message: string): string {
  const digest = createHash('sha256').update(`${involved.metadata.uid ?? refOf(involved).name}\0${type}\0${reason}\0${message}`).digest('hex').slice(0, 16)
  return `${involved.metadata.name}.${digest}`
}
