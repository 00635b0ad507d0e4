// Field selectors as k8s.io/apimachinery's pkg/fields has them: `metadata.name=x,status.phase!=Running`.
import { fail } from './label-selectors.js'

export interface FieldRequirement {
  readonly field: string
  /** "==" is kept as "=", as Kubernetes does. */
  readonly operator: '=' | '!='
  readonly value: string
}

export interface FieldSelector {
  readonly requirements: readonly FieldRequirement[]
  /** e.g. `metadata.name=web,status.phase!=Running`, values escaped. */
  toString(): string
}

/** The field paths a kind can be selected by. */
export type SupportedFields = readonly string[] | ((field: string) => boolean)

const escapeFieldValue = (value: string): string => value.replace(/[\\,=]/g, (ch) => `\\${ch}`)

function unescapeFieldValue(text: string): string {
  let value = ''
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] ?? ''
    if (ch === ',' || ch === '=') fail(`invalid field selector: unescaped character in value: ${ch}`)
    if (ch !== '\\') {
      value += ch
      continue
    }
    const escaped = text[++i]
    if (escaped !== '\\' && escaped !== ',' && escaped !== '=') fail(`invalid field selector: invalid escape sequence: \\${escaped ?? ''}`)
    value += escaped
  }
  return value
}

// Commas split terms unless escaped with a backslash.
function splitTerms(text: string): string[] {
  const terms: string[] = []
  let start = 0
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++
    else if (text[i] === ',') {
      terms.push(text.slice(start, i))
      start = i + 1
    }
  }
  terms.push(text.slice(start))
  return terms
}

/** fields.ParseSelector, then the kind's check of the field names. Whitespace is not trimmed, as in Kubernetes. */
export function parseFieldSelector(text: string, supported: SupportedFields): FieldSelector {
  const isSupported = typeof supported === 'function' ? supported : (field: string) => supported.includes(field)
  const requirements = splitTerms(text)
    .sort()
    .filter((term) => term !== '')
    .map((term): FieldRequirement => {
      const match = /!=|==|=/.exec(term)
      if (match === null) return fail(`invalid selector: '${text}'; can't understand '${term}'`)
      const field = term.slice(0, match.index)
      if (!isSupported(field)) fail(`field label not supported: ${field}`)
      const value = unescapeFieldValue(term.slice(match.index + match[0].length))
      return Object.freeze({ field, operator: match[0] === '!=' ? '!=' : '=', value })
    })
  const rendered = requirements.map((r) => `${r.field}${r.operator}${escapeFieldValue(r.value)}`).join(',')
  return Object.freeze({ requirements: Object.freeze(requirements), toString: () => rendered })
}

/** Reads a dotted path of a JSON object as a field selector sees it: missing or not a scalar is ''. */
export function readField(object: unknown, path: string): string {
  let current = object
  for (const part of path.split('.')) {
    if (typeof current !== 'object' || current === null || Array.isArray(current) || !Object.hasOwn(current, part)) return ''
    current = (current as Record<string, unknown>)[part]
  }
  return typeof current === 'string' ? current : typeof current === 'number' || typeof current === 'boolean' ? String(current) : ''
}

/** Gives a field's value as a field selector sees it; for kinds whose selectable fields are computed. */
export type FieldReader = (path: string) => string

/** Matches an object (fields read with `readField`), or the values a FieldReader gives. */
export function matchesFields(selector: FieldSelector, read: FieldReader): boolean
export function matchesFields(selector: FieldSelector, object: unknown): boolean
export function matchesFields(selector: FieldSelector, objectOrReader: unknown): boolean {
  const read: FieldReader = typeof objectOrReader === 'function' ? (objectOrReader as FieldReader) : (path) => readField(objectOrReader, path)
  return selector.requirements.every((r) => (read(r.field) === r.value) === (r.operator === '='))
}
