// shoal get: tables the server renders (kubectl's Table protocol), or the
// objects themselves as JSON, YAML or kind/name; -w keeps printing changes.
import { parse, UsageError } from './args.js'
import { listOf, nameOf, renderObject } from './object-print.js'
import { apiVersionOf, kindName, resourcePath } from './resources.js'
import { select, type Selection } from './selection.js'
import { ServerError, Session, targetOptions } from './session.js'
import { headerCells, renderRows, rowCells, tableAccept, type ServerTable, type TableView } from './table-print.js'
import { watchSelection } from './get-watch.js'
import type { JsonObject } from './manifests.js'

export const getOptions = {
  ...targetOptions,
  'all-namespaces': { type: 'boolean', short: 'A' },
  selector: { type: 'string', short: 'l' },
  'field-selector': { type: 'string' },
  output: { type: 'string', short: 'o' },
  watch: { type: 'boolean', short: 'w' },
  filename: { type: 'string', short: 'f', multiple: true },
  'show-labels': { type: 'boolean' },
  'no-headers': { type: 'boolean' },
} as const

export type OutputFormat = 'table' | 'wide' | 'json' | 'yaml' | 'name'

export function outputFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === '') return 'table'
  if (value === 'wide' || value === 'json' || value === 'yaml' || value === 'name') return value
  throw new UsageError(`unknown output format "${value}"; use wide, json, yaml or name`)
}

export interface ListQuery {
  labelSelector?: string | undefined
  fieldSelector?: string | undefined
}

/** The Table for one selection: a list, or each named object (failures are collected, not thrown). */
export async function fetchTable(session: Session, sel: Selection, query: ListQuery, failures: string[]): Promise<ServerTable | null> {
  if (sel.names === null) return session.json<ServerTable>(resourcePath(sel.resource, sel.namespace), { accept: tableAccept, query: { ...query } })
  let table: ServerTable | null = null
  for (const name of sel.names) {
    try {
      const one = await session.json<ServerTable>(resourcePath(sel.resource, sel.namespace, name), { accept: tableAccept })
      if (table === null) table = one
      else table.rows.push(...one.rows)
    } catch (err) {
      if ((err as Error).name !== 'ServerError') throw err
      failures.push((err as Error).message)
    }
  }
  return table
}

/** The objects of one selection, with apiVersion and kind filled in (list items may leave them out). */
export async function fetchObjects(session: Session, sel: Selection, query: ListQuery, failures: string[]): Promise<JsonObject[]> {
  const fill = (o: JsonObject): JsonObject => ({ apiVersion: apiVersionOf(sel.resource), kind: sel.resource.kind, ...o })
  if (sel.names === null) {
    const list = await session.json<{ items?: JsonObject[] }>(resourcePath(sel.resource, sel.namespace), { query: { ...query } })
    return (list.items ?? []).map(fill)
  }
  const out: JsonObject[] = []
  for (const name of sel.names) {
    try {
      out.push(fill(await session.json<JsonObject>(resourcePath(sel.resource, sel.namespace, name))))
    } catch (err) {
      if ((err as ServerError).name !== 'ServerError') throw err
      failures.push((err as Error).message)
    }
  }
  return out
}

export function noResourcesMessage(session: Session, selections: Selection[]): string {
  const namespaced = selections.every((s) => s.resource.namespaced) && !session.allNamespaces
  return namespaced ? `No resources found in ${session.namespace} namespace.` : 'No resources found'
}

export function tableView(session: Session, sel: Selection, format: OutputFormat, withKind: boolean, showLabels: boolean): TableView {
  return { wide: format === 'wide', withNamespace: session.allNamespaces && sel.resource.namespaced, kindPrefix: withKind ? `${kindName(sel.resource)}/` : '', showLabels }
}

async function printTables(session: Session, selections: Selection[], multipleTypes: boolean, format: OutputFormat, flags: { query: ListQuery; showLabels: boolean; noHeaders: boolean }, failures: string[]): Promise<void> {
  const tables: { sel: Selection; table: ServerTable }[] = []
  for (const sel of selections) {
    const table = await fetchTable(session, sel, flags.query, failures)
    if (table !== null && table.rows.length > 0) tables.push({ sel, table })
  }
  const withKind = multipleTypes || new Set(tables.map((t) => t.sel.resource.kind)).size > 1
  const blocks = tables.map(({ sel, table }) => {
    const view = tableView(session, sel, format, withKind, flags.showLabels)
    const rows = table.rows.map((r) => rowCells(table, r, view))
    return renderRows(flags.noHeaders ? rows : [headerCells(table, view), ...rows])
  })
  if (blocks.length > 0) process.stdout.write(blocks.join('\n'))
  else if (failures.length === 0) process.stderr.write(noResourcesMessage(session, selections) + '\n')
}

async function printObjects(session: Session, selections: Selection[], format: 'json' | 'yaml' | 'name', query: ListQuery, failures: string[]): Promise<void> {
  const printed: { sel: Selection; objects: JsonObject[] }[] = []
  for (const sel of selections) printed.push({ sel, objects: await fetchObjects(session, sel, query, failures) })
  if (format === 'name') {
    process.stdout.write(printed.flatMap(({ sel, objects }) => objects.map((o) => nameOf(sel.resource, o) + '\n')).join(''))
    return
  }
  const all = printed.flatMap((p) => p.objects)
  const singleImplied = selections.length === 1 && selections[0]!.names?.length === 1
  if (singleImplied && all.length === 1) process.stdout.write(renderObject(all[0], format))
  else if (!singleImplied) process.stdout.write(renderObject(listOf(all), format))
}

export async function get(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, getOptions)
  const format = outputFormat(values.output)
  const session = await Session.open(values)
  const { selections, multipleTypes } = await select(session, positionals, values.filename, 'get')
  const query: ListQuery = { labelSelector: values.selector, fieldSelector: values['field-selector'] }
  if ((query.labelSelector !== undefined || query.fieldSelector !== undefined) && selections.some((s) => s.names !== null)) {
    throw new UsageError('name objects or select them with -l/--field-selector, not both')
  }
  if (values.watch === true) {
    if (selections.length !== 1 || (selections[0]!.names?.length ?? 0) > 1) throw new UsageError('-w watches one resource type, or one object')
    return watchSelection(session, selections[0]!, format, { query, showLabels: values['show-labels'] === true, noHeaders: values['no-headers'] === true })
  }
  const failures: string[] = []
  if (format === 'table' || format === 'wide') {
    await printTables(session, selections, multipleTypes, format, { query, showLabels: values['show-labels'] === true, noHeaders: values['no-headers'] === true }, failures)
  } else {
    await printObjects(session, selections, format, query, failures)
  }
  for (const f of failures) process.stderr.write(`shoal get: ${f}\n`)
  return failures.length > 0 ? 1 : 0
}
