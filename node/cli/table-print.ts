// Column output as kubectl prints it. Go's text/tabwriter is what kubectl uses
// (get: minimum width 6, padding 3; describe: padding 2), so its algorithm is
// reproduced here: a column's width is decided per block of consecutive lines
// that have a cell in that column, and a line's last cell is never padded.

export interface TabwriterOptions {
  minWidth: number
  padding: number
}

export const getTableStyle: TabwriterOptions = { minWidth: 6, padding: 3 }
export const describeStyle: TabwriterOptions = { minWidth: 0, padding: 2 }

function textWidth(s: string): number {
  return [...s].length
}

function writeLines(lines: string[][], widths: number[], from: number, to: number, out: string[]): void {
  for (let i = from; i < to; i++) {
    const line = lines[i]!
    out.push(line.map((cell, j) => (j < widths.length && j < line.length - 1 ? cell + ' '.repeat(Math.max(0, widths[j]! - textWidth(cell))) : cell)).join(''))
  }
}

function format(lines: string[][], widths: number[], line0: number, line1: number, o: TabwriterOptions, out: string[]): void {
  const column = widths.length
  let printedTo = line0
  for (let i = line0; i < line1; i++) {
    if (column >= lines[i]!.length - 1) continue
    writeLines(lines, widths, printedTo, i, out)
    let width = o.minWidth
    let end = i
    for (; end < line1 && column < lines[end]!.length - 1; end++) width = Math.max(width, textWidth(lines[end]![column]!) + o.padding)
    format(lines, [...widths, width], i, end, o, out)
    printedTo = end
    i = end - 1
  }
  writeLines(lines, widths, printedTo, line1, out)
}

/** Align tab-separated text the way Go's tabwriter (left-aligned, space padding) does. */
export function tabwrite(text: string, o: TabwriterOptions): string {
  const lines = text.split('\n').map((l) => l.split('\t'))
  const out: string[] = []
  format(lines, [], 0, lines.length, o, out)
  return out.join('\n')
}

/** A meta.k8s.io/v1 Table, as the server returns it for `Accept: ...;as=Table`. */
export interface ServerTable {
  metadata?: { resourceVersion?: string }
  columnDefinitions: { name: string; type?: string; format?: string; priority?: number }[]
  rows: TableRow[]
}

export interface TableRow {
  cells: unknown[]
  object?: { metadata?: { name?: string; namespace?: string; labels?: Record<string, string> } } | null
}

export interface TableView {
  wide: boolean
  withNamespace: boolean
  /** replicationcontroller/ in front of names when several kinds are printed. */
  kindPrefix: string
  showLabels: boolean
}

export const tableAccept = 'application/json;as=Table;v=v1;g=meta.k8s.io, application/json'

function cellText(cell: unknown): string {
  if (cell === null || cell === undefined) return '<none>'
  if (typeof cell === 'string') return cell
  if (typeof cell === 'number' || typeof cell === 'boolean') return String(cell)
  return JSON.stringify(cell)
}

function labelsText(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {})
  return entries.length === 0 ? '<none>' : entries.map(([k, v]) => `${k}=${v}`).join(',')
}

function visibleColumns(table: ServerTable, view: TableView): number[] {
  return table.columnDefinitions.map((c, k) => ((c.priority ?? 0) === 0 || view.wide ? k : -1)).filter((k) => k >= 0)
}

export function headerCells(table: ServerTable, view: TableView): string[] {
  const names = visibleColumns(table, view).map((k) => table.columnDefinitions[k]!.name.toUpperCase())
  return [...(view.withNamespace ? ['NAMESPACE'] : []), ...names, ...(view.showLabels ? ['LABELS'] : [])]
}

export function rowCells(table: ServerTable, row: TableRow, view: TableView): string[] {
  const cells = visibleColumns(table, view).map((k) => {
    const text = cellText(row.cells[k])
    const def = table.columnDefinitions[k]!
    return def.format === 'name' || def.name === 'Name' ? view.kindPrefix + text : text
  })
  return [...(view.withNamespace ? [row.object?.metadata?.namespace ?? ''] : []), ...cells, ...(view.showLabels ? [labelsText(row.object?.metadata?.labels)] : [])]
}

/** Rows of cells as aligned text, one line each, ending with a newline. */
export function renderRows(rows: string[][], o: TabwriterOptions = getTableStyle): string {
  if (rows.length === 0) return ''
  return tabwrite(rows.map((r) => r.join('\t')).join('\n'), o) + '\n'
}

/**
 * Widths that stay put across calls (kubectl's RememberWidths), for `get -w`:
 * rows that arrive later line up with the table printed first.
 */
export class RememberedColumns {
  private widths: number[] = []

  render(rows: string[][]): string {
    for (const row of rows) row.slice(0, -1).forEach((cell, k) => (this.widths[k] = Math.max(this.widths[k] ?? getTableStyle.minWidth, textWidth(cell) + getTableStyle.padding)))
    return rows.map((row) => row.map((cell, k) => (k < row.length - 1 ? cell + ' '.repeat(Math.max(0, this.widths[k]! - textWidth(cell))) : cell)).join('') + '\n').join('')
  }
}
