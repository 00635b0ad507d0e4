// What every describer shares: the aligned writer, times as kubectl prints
// them, the Name/Namespace/Labels/Annotations header and the Events table.
import { humanDuration } from '../kinds/printing.js'
import type { JsonObject } from './manifests.js'
import { resourcePath, type ResourceInfo } from './resources.js'
import type { Session } from './session.js'
import { describeStyle, tabwrite } from './table-print.js'

/** Lines written at indentation levels (two spaces each), tab-separated, aligned at the end. */
export class DescribeWriter {
  private text = ''

  line(level: number, ...cells: (string | number | undefined)[]): void {
    this.text += '  '.repeat(level) + cells.map((c) => (c === undefined ? '' : String(c))).join('\t') + '\n'
  }

  /** Labels:  a=b, then one more line per entry; <none> when empty. */
  map(level: number, title: string, map: Record<string, string> | undefined, separator = '='): void {
    const entries = Object.entries(map ?? {}).sort(([a], [b]) => a.localeCompare(b))
    if (entries.length === 0) return this.line(level, `${title}:`, '<none>')
    entries.forEach(([k, v], i) => this.line(level, i === 0 ? `${title}:` : '', `${k}${separator}${v}`))
  }

  toString(): string {
    return tabwrite(this.text, describeStyle)
  }
}

export interface DescribeContext {
  session: Session
  resource: ResourceInfo
  w: DescribeWriter
  nowMs: number
}

export type Describer = (ctx: DescribeContext, object: JsonObject) => Promise<void>

/** Mon, 02 Jan 2006 15:04:05 -0700, in UTC, as kubectl prints times. */
export function describeTime(timestamp: unknown): string {
  if (typeof timestamp !== 'string' || Number.isNaN(Date.parse(timestamp))) return '<unset>'
  return new Date(timestamp).toUTCString().replace(/GMT$/, '+0000')
}

export function metaOf(o: JsonObject): { name?: string; namespace?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; creationTimestamp?: string; ownerReferences?: { kind: string; name: string; controller?: boolean }[]; deletionTimestamp?: string } {
  return (o.metadata ?? {}) as ReturnType<typeof metaOf>
}

/** Name, Namespace, Labels, Annotations: the header every describer starts with. */
export function writeHeader(ctx: DescribeContext, o: JsonObject, withNamespace = ctx.resource.namespaced): void {
  const meta = metaOf(o)
  ctx.w.line(0, 'Name:', meta.name)
  if (withNamespace) ctx.w.line(0, 'Namespace:', meta.namespace)
  ctx.w.map(0, 'Labels', meta.labels)
  ctx.w.map(0, 'Annotations', meta.annotations, ': ')
}

interface EventView {
  type?: string
  reason?: string
  message?: string
  count?: number
  firstTimestamp?: string
  lastTimestamp?: string
  eventTime?: string
  source?: { component?: string; host?: string }
  reportingComponent?: string
  metadata?: { creationTimestamp?: string }
}

function eventAge(e: EventView, nowMs: number): string {
  const since = (t: string | undefined): string => (t === undefined || Number.isNaN(Date.parse(t)) ? '<unknown>' : humanDuration(nowMs - Date.parse(t)))
  const last = e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp
  if ((e.count ?? 1) > 1 && e.firstTimestamp !== undefined) return `${since(last)} (x${e.count} over ${since(e.firstTimestamp)})`
  return since(last)
}

function eventTime(e: EventView): number {
  const t = Date.parse(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp ?? '')
  return Number.isNaN(t) ? 0 : t
}

/** The events about an object: Type Reason Age From Message, or <none>. */
export async function writeEvents(ctx: DescribeContext, o: JsonObject): Promise<void> {
  const meta = metaOf(o)
  const discovery = await ctx.session.resources()
  let events: EventView[] = []
  try {
    const eventsResource = discovery.resolve('events')
    const path = resourcePath(eventsResource, ctx.resource.namespaced ? meta.namespace : undefined)
    const list = await ctx.session.json<{ items?: EventView[] }>(path, { query: { fieldSelector: `involvedObject.name=${meta.name ?? ''},involvedObject.kind=${ctx.resource.kind}` } })
    events = (list.items ?? []).sort((a, b) => eventTime(a) - eventTime(b))
  } catch (err) {
    if ((err as Error).name !== 'ServerError' && (err as Error).name !== 'UnknownResourceError') throw err
  }
  if (events.length === 0) return ctx.w.line(0, 'Events:', '<none>')
  ctx.w.line(0, 'Events:')
  ctx.w.line(1, 'Type', 'Reason', 'Age', 'From', 'Message')
  ctx.w.line(1, '----', '------', '----', '----', '-------')
  for (const e of events) {
    const from = [e.source?.component ?? e.reportingComponent, e.source?.host].filter((s) => s !== undefined && s !== '').join(', ')
    ctx.w.line(1, e.type ?? 'Normal', e.reason ?? '', eventAge(e, ctx.nowMs), from, (e.message ?? '').trim())
  }
}
