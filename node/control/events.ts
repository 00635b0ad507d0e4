// Events as Kubernetes records them: one Event object per (object, type,
// reason, message), its `count` and `lastTimestamp` bumped on a repeat, so
// `shoal get events` and `describe` show "x5 over 2m" rather than five lines.
// Recording is best effort: an event that cannot be written is dropped (and
// counted), never retried in a loop, and never holds up the controller.
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

export interface EventRecorderOptions {
  store: ObjectStore
  submitter: Submitter
  source: EventSource
  nowIso: () => string
}

export class EventRecorder {
  private pending = 0
  /** Events not written (the bound was hit, or the write failed). */
  dropped = 0

  constructor(private readonly options: EventRecorderOptions) {}

  /** Record that `reason` happened to `involved`; resolves once written (or dropped). */
  async record(involved: ApiObject, type: EventType, reason: string, message: string): Promise<void> {
    if (this.pending >= pendingEventsMax) {
      this.dropped++
      return
    }
    this.pending++
    try {
      await submit(this.options.submitter, this.command(involved, type, reason, message))
    } catch {
      this.dropped++
    } finally {
      this.pending--
    }
  }

  private command(involved: ApiObject, type: EventType, reason: string, message: string): Parameters<typeof submit>[1] {
    const { store, source } = this.options
    const namespace = involved.metadata.namespace ?? 'default'
    const name = eventName(involved, type, reason, message)
    const now = this.options.nowIso().replace(/\.\d+Z$/, 'Z')
    const existing = store.get({ apiVersion: 'v1', kind: 'Event', namespace, name }) as (ApiObject & { count?: number }) | undefined
    if (existing !== undefined) {
      const updated = { ...existing, count: (existing.count ?? 1) + 1, lastTimestamp: now }
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
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
    }
    return { op: 'obj.create', object: prepareCreate(eventKind, body, namespace, 'Strict', now).object }
  }
}

/** The same object, type, reason and message always map to the same Event, so repeats count up. */
export function eventName(involved: ApiObject, type: string, reason: string, message: string): string {
  const digest = createHash('sha256').update(`${involved.metadata.uid ?? refOf(involved).name}\0${type}\0${reason}\0${message}`).digest('hex').slice(0, 16)
  return `${involved.metadata.name}.${digest}`
}
