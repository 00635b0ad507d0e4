// shoal get -w: the current table (or objects), then one row (or object) per
// change, from a watch that starts at the list's resourceVersion. The stream
// is newline-delimited JSON {type, object}; an expired resourceVersion (410)
// means relisting, and a stream the server ended is resumed where it stopped.
import { apiRequest } from './client.js'
import { nameOf, renderObject } from './object-print.js'
import { resourcePath } from './resources.js'
import type { Selection } from './selection.js'
import { ServerError, withQuery, type Session } from './session.js'
import { headerCells, RememberedColumns, rowCells, tableAccept, type ServerTable, type TableView } from './table-print.js'
import type { ListQuery, OutputFormat } from './get.js'
import type { JsonObject } from './manifests.js'

/** Consecutive failed reconnections before giving up. */
const watchReconnectsMax = 10
const watchReconnectDelayMs = 1000

interface WatchEvent {
  type: string
  object: JsonObject
}

interface WatchFlags {
  query: ListQuery
  showLabels: boolean
  noHeaders: boolean
}

/** Prints what arrives, in the chosen format. */
class WatchPrinter {
  private readonly columns = new RememberedColumns()
  private headerPrinted: boolean

  constructor(
    private readonly sel: Selection,
    private readonly format: OutputFormat,
    private readonly view: TableView,
    noHeaders: boolean,
  ) {
    this.headerPrinted = noHeaders
  }

  get asTable(): boolean {
    return this.format === 'table' || this.format === 'wide'
  }

  table(table: ServerTable): void {
    if (table.rows.length === 0) return
    const rows = table.rows.map((r) => rowCells(table, r, this.view))
    if (!this.headerPrinted) rows.unshift(headerCells(table, this.view))
    this.headerPrinted = true
    process.stdout.write(this.columns.render(rows))
  }

  object(o: JsonObject): void {
    if (this.format === 'name') process.stdout.write(nameOf(this.sel.resource, o) + '\n')
    else process.stdout.write(renderObject(o, this.format === 'json' ? 'json' : 'yaml'))
  }
}

function namedQuery(sel: Selection, query: ListQuery): ListQuery {
  const name = sel.names?.[0]
  if (name === undefined) return query
  const byName = `metadata.name=${name}`
  return { ...query, fieldSelector: query.fieldSelector === undefined ? byName : `${query.fieldSelector},${byName}` }
}

/** List and print; returns the resourceVersion to watch from. */
async function listAndPrint(session: Session, sel: Selection, query: ListQuery, printer: WatchPrinter): Promise<string> {
  const path = resourcePath(sel.resource, sel.namespace)
  if (printer.asTable) {
    const table = await session.json<ServerTable>(path, { accept: tableAccept, query: { ...query } })
    printer.table(table)
    return table.metadata?.resourceVersion ?? ''
  }
  const list = await session.json<{ metadata?: { resourceVersion?: string }; items?: JsonObject[] }>(path, { query: { ...query } })
  for (const item of list.items ?? []) printer.object(item)
  return list.metadata?.resourceVersion ?? ''
}

interface StreamEnd {
  resourceVersion: string
  expired: boolean
}

/** One watch request, until the server ends it. */
async function streamOnce(session: Session, sel: Selection, query: ListQuery, resourceVersion: string, printer: WatchPrinter): Promise<StreamEnd> {
  let rv = resourceVersion
  let expired = false
  let buffer = ''
  let failure = ''
  const path = withQuery(resourcePath(sel.resource, sel.namespace), { ...query, watch: 'true', resourceVersion: rv, allowWatchBookmarks: 'true' })
  const handle = (line: string): void => {
    if (line.trim() === '') return
    const event = JSON.parse(line) as WatchEvent
    const meta = (event.object.metadata ?? {}) as { resourceVersion?: string }
    if (event.type === 'ERROR') {
      const status = event.object as { code?: number; message?: string }
      if (status.code === 410) expired = true
      else throw new ServerError(status.code ?? 500, 'WatchError', status.message ?? 'the watch failed')
      return
    }
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== '') rv = meta.resourceVersion
    if (event.type === 'BOOKMARK') return
    if (printer.asTable) printer.table(event.object as unknown as ServerTable)
    else printer.object(event.object)
  }
  let handlerError: unknown = null
  const response = await apiRequest(session.target, 'GET', path, {
    ...(printer.asTable ? { accept: tableAccept } : {}),
    onChunk: (chunk, status) => {
      if (status >= 400) {
        failure += chunk
        return
      }
      buffer += chunk
      let newline: number
      while ((newline = buffer.indexOf('\n')) >= 0 && handlerError === null) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + 1)
        try {
          handle(line)
        } catch (err) {
          handlerError = err
        }
      }
    },
  })
  if (handlerError !== null) throw handlerError
  if (response.status === 410) return { resourceVersion: rv, expired: true }
  if (response.status >= 400) throw new ServerError(response.status, '', (JSON.parse(failure || '{}') as { message?: string }).message ?? `HTTP ${response.status}`)
  return { resourceVersion: rv, expired }
}

export async function watchSelection(session: Session, sel: Selection, format: OutputFormat, flags: WatchFlags): Promise<number> {
  const query = namedQuery(sel, flags.query)
  const view: TableView = { wide: format === 'wide', withNamespace: session.allNamespaces && sel.resource.namespaced, kindPrefix: '', showLabels: flags.showLabels }
  const printer = new WatchPrinter(sel, format, view, flags.noHeaders)
  let rv = await listAndPrint(session, sel, query, printer)
  let failures = 0
  for (;;) {
    try {
      const end = await streamOnce(session, sel, query, rv, printer)
      failures = 0
      rv = end.expired ? await listAndPrint(session, sel, query, printer) : end.resourceVersion
    } catch (err) {
      if ((err as Error).name === 'ServerError') throw err
      if (++failures > watchReconnectsMax) throw err
      await new Promise((r) => setTimeout(r, watchReconnectDelayMs))
    }
  }
}
