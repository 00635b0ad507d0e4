// Label selectors as k8s.io/apimachinery's pkg/labels has them: requirements, their
// key and value syntax (with the same error messages), and matching.

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

export function keyError(key: string, path: string): string | undefined {
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


export const fail = (message: string): never => {
  throw new InvalidSelectorError(message)
}
