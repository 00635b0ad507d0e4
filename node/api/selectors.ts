// Label and field selectors, parsed, matched and printed as k8s.io/apimachinery's
// pkg/labels and pkg/fields do, with the same error messages.

export class InvalidSelectorError extends Error {
  override readonly name = 'InvalidSelectorError'
}

/** Kubernetes' selection.Operator values. */
export type LabelOperator = 'in' | 'notin' | '=' | '==' | '!=' | 'exists' | '!' | 'gt' | 'lt'

export interface LabelRequirement {
  readonly key: string
  readonly operator: LabelOperator
  /** Sorted, without duplicates. */
  readonly values: readonly string[]
}

/** A parsed label selector: the AND of its requirements, sorted by key. */
export interface Selector {
  readonly requirements: readonly LabelRequirement[]
  /** Only a null LabelSelector selects nothing (Kubernetes' labels.Nothing()). */
  readonly matchesNothing: boolean
  /** The canonical form, e.g. `app=web,tier in (back,front)`; '' when unrestricted. */
  toString(): string
}

/** The LabelSelector of apps/v1 objects (metav1.LabelSelector). */
export interface LabelSelector {
  matchLabels?: Readonly<Record<string, string>> | null
  matchExpressions?: readonly LabelSelectorRequirement[] | null
}

export interface LabelSelectorRequirement {
  key: string
  /** In, NotIn, Exists or DoesNotExist; anything else is rejected. */
  operator: string
  values?: readonly string[] | null
}

// ---------------------------------------------------------------- key and value syntax

const QUALIFIED_NAME_FORMAT = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'
const QUALIFIED_NAME = new RegExp(`^${QUALIFIED_NAME_FORMAT}$`)
const LABEL_VALUE_FORMAT = `(${QUALIFIED_NAME_FORMAT})?`
const LABEL_VALUE = new RegExp(`^${LABEL_VALUE_FORMAT}$`)
const DNS1123_LABEL_FORMAT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?'
const DNS1123_SUBDOMAIN_FORMAT = `${DNS1123_LABEL_FORMAT}(\\.${DNS1123_LABEL_FORMAT})*`
const DNS1123_SUBDOMAIN = new RegExp(`^${DNS1123_SUBDOMAIN_FORMAT}$`)
const NAME_MAX_LENGTH = 63
const SUBDOMAIN_MAX_LENGTH = 253

function regexError(message: string, format: string, ...examples: string[]): string {
  return `${message} (e.g. ${examples.map((e) => `'${e}', `).join('or ')}regex used for validation is '${format}')`
}

const QUALIFIED_NAME_MESSAGE = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
const maxLengthError = (length: number): string => `must be no more than ${length} characters`

/** validation.IsQualifiedName: an optional DNS-1123 subdomain prefix and '/', then a name. */
function qualifiedNameErrors(value: string): string[] {
  const parts = value.split('/')
  if (parts.length > 2) {
    const example = regexError(QUALIFIED_NAME_MESSAGE, QUALIFIED_NAME_FORMAT, 'MyName', 'my.name', '123-abc')
    return [`a qualified name ${example} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`]
  }
  const errors: string[] = []
  const name = parts.length === 2 ? (parts[1] ?? '') : value
  const prefix = parts.length === 2 ? (parts[0] ?? '') : undefined
  if (prefix === '') errors.push('prefix part must be non-empty')
  else if (prefix !== undefined) {
    if (prefix.length > SUBDOMAIN_MAX_LENGTH) errors.push(`prefix part ${maxLengthError(SUBDOMAIN_MAX_LENGTH)}`)
    if (!DNS1123_SUBDOMAIN.test(prefix)) {
      const message = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
      errors.push(`prefix part ${regexError(message, DNS1123_SUBDOMAIN_FORMAT, 'example.com')}`)
    }
  }
  if (name === '') errors.push('name part must be non-empty')
  else if (name.length > NAME_MAX_LENGTH) errors.push(`name part ${maxLengthError(NAME_MAX_LENGTH)}`)
  if (!QUALIFIED_NAME.test(name)) errors.push(`name part ${regexError(QUALIFIED_NAME_MESSAGE, QUALIFIED_NAME_FORMAT, 'MyName', 'my.name', '123-abc')}`)
  return errors
}

function labelValueErrors(value: string): string[] {
  const errors: string[] = []
  if (value.length > NAME_MAX_LENGTH) errors.push(maxLengthError(NAME_MAX_LENGTH))
  if (!LABEL_VALUE.test(value)) {
    const message = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
    errors.push(regexError(message, LABEL_VALUE_FORMAT, 'MyValue', 'my_value', '12345'))
  }
  return errors
}

// Renders like Go's field.Invalid(path, value, detail).Error().
function invalidValue(path: string, value: string | readonly string[], detail: string): string {
  const shown = typeof value === 'string' ? JSON.stringify(value) : `[]string{${value.map((v) => JSON.stringify(v)).join(', ')}}`
  return `${path}: Invalid value: ${shown}: ${detail}`
}

function keyError(key: string, path: string): string | undefined {
  const errors = qualifiedNameErrors(key)
  return errors.length === 0 ? undefined : invalidValue(path, key, errors.join('; '))
}

function parseInt64(text: string): bigint | undefined {
  if (!/^[+-]?[0-9]+$/.test(text)) return undefined
  const value = BigInt(text)
  return value >= -(2n ** 63n) && value < 2n ** 63n ? value : undefined
}

/** labels.NewRequirement: validates and returns a requirement with sorted, distinct values. */
export function newRequirement(key: string, operator: LabelOperator, values: readonly string[]): LabelRequirement {
  const errors: string[] = []
  const keyProblem = keyError(key, 'key')
  if (keyProblem !== undefined) errors.push(keyProblem)
  if ((operator === 'in' || operator === 'notin') && values.length === 0) {
    errors.push(invalidValue('values', values, "for 'in', 'notin' operators, values set can't be empty"))
  } else if ((operator === '=' || operator === '==' || operator === '!=') && values.length !== 1) {
    errors.push(invalidValue('values', values, 'exact-match compatibility requires one single value'))
  } else if ((operator === 'exists' || operator === '!') && values.length !== 0) {
    errors.push(invalidValue('values', values, 'values set must be empty for exists and does not exist'))
  } else if (operator === 'gt' || operator === 'lt') {
    if (values.length !== 1) errors.push(invalidValue('values', values, "for 'Gt', 'Lt' operators, exactly one value is required"))
    values.forEach((v, i) => {
      if (parseInt64(v) === undefined) errors.push(invalidValue(`values[${i}]`, v, "for 'Gt', 'Lt' operators, the value must be an integer"))
    })
  }
  values.forEach((v, i) => {
    const problems = labelValueErrors(v)
    if (problems.length > 0) errors.push(invalidValue(`values[${i}][${key}]`, v, problems.join('; ')))
  })
  const distinct = [...new Set(errors)]
  if (distinct.length > 0) throw new InvalidSelectorError(distinct.length === 1 ? (distinct[0] ?? '') : `[${distinct.join(', ')}]`)
  return Object.freeze({ key, operator, values: Object.freeze([...new Set(values)].sort()) })
}

// ---------------------------------------------------------------- selectors

function requirementString(r: LabelRequirement): string {
  const values = r.values.join(',')
  switch (r.operator) {
    case 'exists':
      return r.key
    case '!':
      return `!${r.key}`
    case 'in':
    case 'notin':
      return `${r.key} ${r.operator} (${values})`
    case 'gt':
      return `${r.key}>${values}`
    case 'lt':
      return `${r.key}<${values}`
    default:
      return `${r.key}${r.operator}${values}`
  }
}

/** A selector of these requirements, sorted by key as Kubernetes sorts them. */
export function selectorFromRequirements(requirements: readonly LabelRequirement[], matchesNothing = false): Selector {
  const sorted = Object.freeze([...requirements].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)))
  const text = matchesNothing ? '' : sorted.map(requirementString).join(',')
  return Object.freeze({ requirements: sorted, matchesNothing, toString: () => text })
}

export const everything: Selector = selectorFromRequirements([])
export const nothing: Selector = selectorFromRequirements([], true)

/** ReplicationController and Service `spec.selector`: every label must equal. Empty selects everything. */
export function selectorFromMap(labels: Readonly<Record<string, string>> | null | undefined): Selector {
  return selectorFromRequirements(Object.entries(labels ?? {}).map(([key, value]) => newRequirement(key, '=', [value])))
}

const LABEL_SELECTOR_OPERATORS: Readonly<Record<string, LabelOperator>> = { In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!' }

/** metav1.LabelSelectorAsSelector: null selects nothing, an empty selector everything. */
export function selectorFromLabelSelector(selector: LabelSelector | null | undefined): Selector {
  if (selector === null || selector === undefined) return nothing
  const fromLabels = Object.entries(selector.matchLabels ?? {}).map(([key, value]) => newRequirement(key, '=', [value]))
  const fromExpressions = (selector.matchExpressions ?? []).map((expression) => {
    const operator = Object.hasOwn(LABEL_SELECTOR_OPERATORS, expression.operator) ? LABEL_SELECTOR_OPERATORS[expression.operator] : undefined
    if (operator === undefined) throw new InvalidSelectorError(`${JSON.stringify(expression.operator)} is not a valid label selector operator`)
    return newRequirement(expression.key, operator, expression.values ?? [])
  })
  return selectorFromRequirements([...fromLabels, ...fromExpressions])
}

function requirementMatches(r: LabelRequirement, labels: Readonly<Record<string, string>>): boolean {
  const present = Object.hasOwn(labels, r.key)
  const value = present ? labels[r.key] : undefined
  switch (r.operator) {
    case 'in':
    case '=':
    case '==':
      return present && r.values.includes(value ?? '')
    case 'notin':
    case '!=':
      return !present || !r.values.includes(value ?? '')
    case 'exists':
      return present
    case '!':
      return !present
    case 'gt':
    case 'lt': {
      const actual = present ? parseInt64(value ?? '') : undefined
      const bound = r.values.length === 1 ? parseInt64(r.values[0] ?? '') : undefined
      if (actual === undefined || bound === undefined) return false
      return r.operator === 'gt' ? actual > bound : actual < bound
    }
  }
}

export function matches(selector: Selector, labels: Readonly<Record<string, string>> | undefined): boolean {
  return !selector.matchesNothing && selector.requirements.every((r) => requirementMatches(r, labels ?? {}))
}

// ---------------------------------------------------------------- the label selector language

type TokenType = 'end' | 'identifier' | '(' | ')' | ',' | '!' | '=' | '==' | '!=' | '>' | '<' | 'in' | 'notin'

interface Token {
  readonly type: TokenType
  readonly literal: string
}

const SYMBOLS: ReadonlySet<string> = new Set(['(', ')', ',', '!', '=', '==', '!=', '>', '<'])
const isSpecial = (ch: string): boolean => '=!(),><'.includes(ch)
const isWhitespace = (ch: string): boolean => ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n'

function tokenize(text: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i <= text.length) {
    const ch = text[i]
    if (ch === undefined) {
      tokens.push({ type: 'end', literal: '' })
      break
    }
    let end = i + 1
    if (isWhitespace(ch)) {
      i = end
      continue
    }
    if (isSpecial(ch)) {
      // Longest symbol: "!=" and "==" over "!" and "=".
      while (end < text.length && SYMBOLS.has(text.slice(i, end + 1))) end++
    } else {
      while (end < text.length && !isWhitespace(text[end] ?? ' ') && !isSpecial(text[end] ?? '=')) end++
    }
    const literal = text.slice(i, end)
    const keyword = literal === 'in' || literal === 'notin'
    tokens.push({ type: keyword || SYMBOLS.has(literal) ? (literal as TokenType) : 'identifier', literal })
    i = end
  }
  return tokens
}

/** The token stream; where values are expected, "in" and "notin" are plain identifiers. */
class TokenReader {
  private position = 0
  constructor(private readonly tokens: readonly Token[]) {}

  lookahead(asValue = true): Token {
    const token = this.tokens[Math.min(this.position, this.tokens.length - 1)] ?? { type: 'end', literal: '' }
    return asValue && (token.type === 'in' || token.type === 'notin') ? { type: 'identifier', literal: token.literal } : token
  }

  consume(asValue = true): Token {
    const token = this.lookahead(asValue)
    this.position++
    return token
  }
}

const fail = (message: string): never => {
  throw new InvalidSelectorError(message)
}

/** labels.Parse: `a=b,c!=d,e in (f,g),h notin (i),j,!k,l>1`. An empty string selects everything. */
export function parseLabelSelector(text: string): Selector {
  const reader = new TokenReader(tokenize(text))
  const requirements: LabelRequirement[] = []
  for (;;) {
    const next = reader.lookahead()
    if (next.type === 'end') return selectorFromRequirements(requirements)
    if (next.type !== 'identifier' && next.type !== '!') fail(`found '${next.literal}', expected: !, identifier, or 'end of string'`)
    try {
      requirements.push(parseRequirement(reader))
    } catch (error) {
      if (error instanceof InvalidSelectorError) throw new InvalidSelectorError(`unable to parse requirement: ${error.message}`)
      throw error
    }
    const separator = reader.consume()
    if (separator.type === 'end') return selectorFromRequirements(requirements)
    if (separator.type !== ',') fail(`found '${separator.literal}', expected: ',' or 'end of string'`)
    const after = reader.lookahead()
    if (after.type !== 'identifier' && after.type !== '!') fail(`found '${after.literal}', expected: identifier after ','`)
  }
}

const BINARY_OPERATORS: Partial<Record<TokenType, LabelOperator>> = { in: 'in', notin: 'notin', '=': '=', '==': '==', '!=': '!=', '>': 'gt', '<': 'lt' }

function parseRequirement(reader: TokenReader): LabelRequirement {
  let token = reader.consume()
  const negated = token.type === '!'
  if (negated) token = reader.consume()
  if (token.type !== 'identifier') return fail(`found '${token.literal}', expected: identifier`)
  const key = token.literal
  const keyProblem = keyError(key, '<nil>')
  if (keyProblem !== undefined) fail(keyProblem)
  const following = reader.lookahead().type
  if (negated || following === 'end' || following === ',') return newRequirement(key, negated ? '!' : 'exists', [])
  const operatorToken = reader.consume(false)
  const operator = BINARY_OPERATORS[operatorToken.type]
  if (operator === undefined) return fail(`found '${operatorToken.literal}', expected: in, notin, =, ==, !=, gt, lt`)
  const values = operator === 'in' || operator === 'notin' ? parseValueSet(reader) : [parseExactValue(reader)]
  return newRequirement(key, operator, [...new Set(values)].sort())
}

function parseExactValue(reader: TokenReader): string {
  const next = reader.lookahead()
  if (next.type === 'end' || next.type === ',') return ''
  const token = reader.consume()
  return token.type === 'identifier' ? token.literal : fail(`found '${token.literal}', expected: identifier`)
}

/** `(a, b)`; empty members are the empty value, so `()` and `(a,)` hold "" (as Kubernetes reads them). */
function parseValueSet(reader: TokenReader): string[] {
  const open = reader.consume()
  if (open.type !== '(') fail(`found '${open.literal}' expected: '('`)
  const first = reader.lookahead()
  if (first.type !== ')' && first.type !== 'identifier' && first.type !== ',') fail(`found '${first.literal}', expected: ',', ')' or identifier`)
  const values = first.type === ')' ? [''] : parseValueList(reader)
  reader.consume() // the ')' that ended the list
  return values
}

function parseValueList(reader: TokenReader): string[] {
  const values: string[] = []
  for (;;) {
    const token = reader.consume()
    if (token.type === 'identifier') {
      values.push(token.literal)
      const next = reader.lookahead()
      if (next.type === ')') return values
      if (next.type !== ',') fail(`found '${next.literal}', expected: ',' or ')'`)
    } else if (token.type === ',') {
      if (values.length === 0) values.push('')
      const next = reader.lookahead()
      if (next.type === ')') return [...values, '']
      if (next.type === ',') {
        reader.consume()
        values.push('')
      }
    } else {
      return fail(`found '${token.literal}', expected: ',', or identifier`)
    }
  }
}

// ---------------------------------------------------------------- field selectors

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
