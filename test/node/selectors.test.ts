import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  everything,
  InvalidSelectorError,
  matches,
  matchesFields,
  newRequirement,
  nothing,
  parseFieldSelector,
  parseLabelSelector,
  readField,
  selectorFromLabelSelector,
  selectorFromMap,
  type LabelOperator,
} from '../../node/api/selectors.js'

const NAME_RULE = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
const VALUE_RULE =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"

const parsed = (text: string) => parseLabelSelector(text).requirements.map((r) => [r.key, r.operator, ...r.values].join(' '))

describe('label selector parsing', () => {
  it.each([
    ['', [], ''],
    ['x=a', ['x = a'], 'x=a'],
    ['x==a', ['x == a'], 'x==a'],
    ['x!=a', ['x != a'], 'x!=a'],
    ['x=', ['x = '], 'x='],
    ['x=a,y=b,z=c', ['x = a', 'y = b', 'z = c'], 'x=a,y=b,z=c'],
    ['z=c,x=a', ['x = a', 'z = c'], 'x=a,z=c'],
    ['  x = a ,\ty\n!=\rb  ', ['x = a', 'y != b'], 'x=a,y!=b'],
    ['x in (b,a)', ['x in a b'], 'x in (a,b)'],
    ['x notin ( a , b ,a)', ['x notin a b'], 'x notin (a,b)'],
    ['x in ()', ['x in '], 'x in ()'],
    ['x in (,a)', ['x in  a'], 'x in (,a)'],
    ['x in (a,,b)', ['x in  a b'], 'x in (,a,b)'],
    ['x in (a,)', ['x in  a'], 'x in (,a)'],
    ['x', ['x exists'], 'x'],
    ['!x', ['x !'], '!x'],
    ['! x,y', ['x !', 'y exists'], '!x,y'],
    ['x>1,z<5', ['x gt 1', 'z lt 5'], 'x>1,z<5'],
    ['x>-1', null, ''], // "-1" is not a valid label value, as in Kubernetes
    ['example.com/app=web,app.kubernetes.io/name in (nginx)', ['app.kubernetes.io/name in nginx', 'example.com/app = web'], 'app.kubernetes.io/name in (nginx),example.com/app=web'],
    ['in=notin,notin in (in)', ['in = notin', 'notin in in'], 'in=notin,notin in (in)'],
    [`k=${'v'.repeat(63)}`, [`k = ${'v'.repeat(63)}`], `k=${'v'.repeat(63)}`],
  ])('%j', (text, requirements, canonical) => {
    if (requirements === null) {
      expect(() => parseLabelSelector(text)).toThrow(InvalidSelectorError)
      return
    }
    expect(parsed(text)).toEqual(requirements)
    expect(String(parseLabelSelector(text))).toBe(canonical)
    expect(String(parseLabelSelector(canonical))).toBe(canonical)
  })

  // The messages k8s.io/apimachinery/pkg/labels gives, one per way of failing.
  it.each([
    ['x=a||y=b', `unable to parse requirement: values[0][x]: Invalid value: "a||y": ${VALUE_RULE}`],
    ['x==a==b', "found '==', expected: ',' or 'end of string'"],
    ['!x=a', "found '=', expected: ',' or 'end of string'"],
    ['x=a b', "found 'b', expected: ',' or 'end of string'"],
    ['x,', "found '', expected: identifier after ','"],
    ['x=a,,y', "found ',', expected: identifier after ','"],
    [',x', "found ',', expected: !, identifier, or 'end of string'"],
    ['=a', "found '=', expected: !, identifier, or 'end of string'"],
    ['!', "unable to parse requirement: found '', expected: identifier"],
    ['!=a', "found '!=', expected: !, identifier, or 'end of string'"],
    ['! =a', "unable to parse requirement: found '=', expected: identifier"],
    ['x=(a', "unable to parse requirement: found '(', expected: identifier"],
    ['x!==a', "unable to parse requirement: found '=', expected: identifier"],
    ['x (a)', "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"],
    ['x!', "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"],
    ['x in a', "unable to parse requirement: found 'a' expected: '('"],
    ['x in (=)', "unable to parse requirement: found '=', expected: ',', ')' or identifier"],
    ['x in (a b)', "unable to parse requirement: found 'b', expected: ',' or ')'"],
    ['x in (a', "unable to parse requirement: found '', expected: ',' or ')'"],
    ['x in (a,=)', "unable to parse requirement: found '=', expected: ',', or identifier"],
    ['x<a', `unable to parse requirement: values[0]: Invalid value: "a": for 'Gt', 'Lt' operators, the value must be an integer`],
    ['x>1.1', `unable to parse requirement: values[0]: Invalid value: "1.1": for 'Gt', 'Lt' operators, the value must be an integer`],
    ['x>99999999999999999999', `unable to parse requirement: values[0]: Invalid value: "99999999999999999999": for 'Gt', 'Lt' operators, the value must be an integer`],
    ['-x=a', `unable to parse requirement: <nil>: Invalid value: "-x": name part ${NAME_RULE}`],
    [`${'k'.repeat(64)}`, `unable to parse requirement: <nil>: Invalid value: "${'k'.repeat(64)}": name part must be no more than 63 characters`],
    ['/x', 'unable to parse requirement: <nil>: Invalid value: "/x": prefix part must be non-empty'],
    ['x/', `unable to parse requirement: <nil>: Invalid value: "x/": name part must be non-empty; name part ${NAME_RULE}`],
    ['a/b/c', `unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name ${NAME_RULE} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`],
    ['Example.com/x', 'unable to parse requirement: <nil>: Invalid value: "Example.com/x": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric'],
    [`${'p'.repeat(254)}/x`, 'prefix part must be no more than 253 characters'],
    ['x=-a', `unable to parse requirement: values[0][x]: Invalid value: "-a": ${VALUE_RULE}`],
    [`x=${'v'.repeat(64)}`, `unable to parse requirement: values[0][x]: Invalid value: "${'v'.repeat(64)}": must be no more than 63 characters`],
    ['x in (-b,-a)', `unable to parse requirement: [values[0][x]: Invalid value: "-a": ${VALUE_RULE}, values[1][x]: Invalid value: "-b": ${VALUE_RULE}]`],
  ])('rejects %j', (text, message) => {
    const run = () => parseLabelSelector(text)
    expect(run).toThrow(InvalidSelectorError)
    expect(run).toThrow(message)
  })

  it('names its error for the HTTP layer', () => {
    try {
      parseLabelSelector('x in')
      expect.unreachable()
    } catch (error) {
      expect((error as Error).name).toBe('InvalidSelectorError')
      expect((error as Error).message).toBe("unable to parse requirement: found '' expected: '('")
    }
  })
})

describe('label selector matching', () => {
  const labels = { app: 'web', tier: 'front', empty: '', replicas: '3' }
  it.each([
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app=db', false],
    ['app!=db', true],
    ['missing!=x', true],
    ['missing=', false],
    ['empty=', true],
    ['app in (web,db)', true],
    ['app notin (web)', false],
    ['missing notin (web)', true],
    ['missing in (web)', false],
    ['empty in ()', true],
    ['app', true],
    ['missing', false],
    ['!missing', true],
    ['!app', false],
    ['replicas>2,replicas<4', true],
    ['replicas>3', false],
    ['app>1', false],
    ['missing<1', false],
    ['app=web,tier=back', false],
  ])('%j', (text, expected) => {
    expect(matches(parseLabelSelector(text), labels)).toBe(expected)
  })

  it('treats missing labels as an empty set', () => {
    expect(matches(parseLabelSelector('!a,b!=c,d notin (e)'), undefined)).toBe(true)
    expect(matches(parseLabelSelector('a'), undefined)).toBe(false)
    expect(matches(parseLabelSelector('constructor'), {})).toBe(false)
  })
})

describe('structured selectors', () => {
  it('builds a selector from a plain map (ReplicationController and Service spec.selector)', () => {
    const selector = selectorFromMap({ name: 'frontend' })
    expect(String(selector)).toBe('name=frontend')
    expect(String(selectorFromMap({ tier: 'front', app: 'web' }))).toBe('app=web,tier=front')
    expect(matches(selector, { name: 'frontend', extra: 'x' })).toBe(true)
    expect(matches(selector, { name: 'backend' })).toBe(false)
    expect(selectorFromMap({}).requirements).toEqual([])
    expect(matches(selectorFromMap(undefined), { any: 'thing' })).toBe(true)
    expect(() => selectorFromMap({ app: 'no spaces' })).toThrow('values[0][app]: Invalid value: "no spaces"')
  })

  it('builds a selector from matchLabels and matchExpressions (apps/v1 LabelSelector)', () => {
    const selector = selectorFromLabelSelector({
      matchLabels: { app: 'web' },
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['front', 'edge'] },
        { key: 'env', operator: 'NotIn', values: ['dev'] },
        { key: 'track', operator: 'Exists' },
        { key: 'legacy', operator: 'DoesNotExist', values: [] },
      ],
    })
    expect(String(selector)).toBe('app=web,env notin (dev),!legacy,tier in (edge,front),track')
    expect(matches(selector, { app: 'web', tier: 'edge', track: '' })).toBe(true)
    expect(matches(selector, { app: 'web', tier: 'edge', track: '', legacy: 'y' })).toBe(false)
    expect(matches(selector, { app: 'web', tier: 'edge', env: 'dev', track: '' })).toBe(false)
  })

  it('selects nothing for a null LabelSelector and everything for an empty one', () => {
    expect(selectorFromLabelSelector(null)).toBe(nothing)
    expect(matches(selectorFromLabelSelector(undefined), {})).toBe(false)
    expect(matches(selectorFromLabelSelector({}), { a: 'b' })).toBe(true)
    expect(matches(selectorFromLabelSelector({ matchLabels: null, matchExpressions: [] }), {})).toBe(true)
    expect(String(nothing)).toBe('')
    expect(String(everything)).toBe('')
    expect(matches(everything, undefined)).toBe(true)
  })

  it.each([
    [{ matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] }, '"Gt" is not a valid label selector operator'],
    [{ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }, "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"],
    [{ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }, 'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist'],
    [{ matchExpressions: [{ key: 'a b', operator: 'Exists' }] }, `key: Invalid value: "a b": name part ${NAME_RULE}`],
    [{ matchLabels: { '': 'x' } }, 'key: Invalid value: "": name part must be non-empty'],
    [{ matchLabels: { a: '-' } }, `values[0][a]: Invalid value: "-": ${VALUE_RULE}`],
  ])('rejects %j', (selector, message) => {
    expect(() => selectorFromLabelSelector(selector)).toThrow(InvalidSelectorError)
    expect(() => selectorFromLabelSelector(selector)).toThrow(message)
  })

  it('validates requirements built directly', () => {
    expect(newRequirement('a', 'in', ['y', 'x', 'y'])).toEqual({ key: 'a', operator: 'in', values: ['x', 'y'] })
    expect(() => newRequirement('a', '=', ['x', 'y'])).toThrow('exact-match compatibility requires one single value')
    expect(() => newRequirement('a', 'gt', [])).toThrow("for 'Gt', 'Lt' operators, exactly one value is required")
    expect(() => newRequirement('-a', '=', ['-'])).toThrow(/^\[key: Invalid value: "-a".*, values\[0\]\[-a\]: Invalid value: "-"/)
  })
})

describe('field selectors', () => {
  const podFields = ['metadata.name', 'metadata.namespace', 'spec.nodeName', 'status.phase']
  const pod = { metadata: { name: 'web', namespace: 'prod' }, spec: { hostNetwork: false, replicas: 3 }, status: { phase: 'Running' } }

  it('parses =, == and != with empty values, and prints them canonically', () => {
    const selector = parseFieldSelector('status.phase==Running,metadata.name=web,spec.nodeName=,metadata.namespace!=kube-system', podFields)
    expect(selector.requirements).toEqual([
      { field: 'metadata.name', operator: '=', value: 'web' },
      { field: 'metadata.namespace', operator: '!=', value: 'kube-system' },
      { field: 'spec.nodeName', operator: '=', value: '' },
      { field: 'status.phase', operator: '=', value: 'Running' },
    ])
    expect(String(selector)).toBe('metadata.name=web,metadata.namespace!=kube-system,spec.nodeName=,status.phase=Running')
    expect(matchesFields(selector, pod)).toBe(true)
    expect(matchesFields(selector, { ...pod, spec: { nodeName: 'node-1' } })).toBe(false)
    expect(matchesFields(parseFieldSelector('', podFields), pod)).toBe(true)
  })

  it('unescapes \\, \\= and \\\\ in values and escapes them back', () => {
    const selector = parseFieldSelector('metadata.name=a\\,b\\=c\\\\d', podFields)
    expect(selector.requirements[0]?.value).toBe('a,b=c\\d')
    expect(String(selector)).toBe('metadata.name=a\\,b\\=c\\\\d')
    expect(matchesFields(selector, { metadata: { name: 'a,b=c\\d' } })).toBe(true)
  })

  it('takes the supported fields as a list or a predicate', () => {
    expect(() => parseFieldSelector('spec.host=x', (field) => field.startsWith('metadata.'))).toThrow('field label not supported: spec.host')
    expect(() => parseFieldSelector('metadata.name=x', (field) => field.startsWith('metadata.'))).not.toThrow()
  })

  it.each([
    ['spec.host=x', 'field label not supported: spec.host'],
    ['metadata.name =x', 'field label not supported: metadata.name '],
    ['metadata.name', "invalid selector: 'metadata.name'; can't understand 'metadata.name'"],
    ['metadata.name=a,b', "invalid selector: 'metadata.name=a,b'; can't understand 'b'"],
    ['metadata.name in (a)', "invalid selector: 'metadata.name in (a)'; can't understand 'metadata.name in (a)'"],
    ['metadata.name==a==b', 'invalid field selector: unescaped character in value: ='],
    ['metadata.name=a\\b', 'invalid field selector: invalid escape sequence: \\b'],
    ['metadata.name=a\\', 'invalid field selector: invalid escape sequence: \\'],
  ])('rejects %j', (text, message) => {
    expect(() => parseFieldSelector(text, podFields)).toThrow(InvalidSelectorError)
    expect(() => parseFieldSelector(text, podFields)).toThrow(message)
  })

  it('reads dotted paths, with missing values and non-scalars as the empty string', () => {
    expect(readField(pod, 'status.phase')).toBe('Running')
    expect(readField(pod, 'spec.hostNetwork')).toBe('false')
    expect(readField(pod, 'spec.replicas')).toBe('3')
    expect(readField(pod, 'spec.nodeName')).toBe('')
    expect(readField(pod, 'metadata')).toBe('')
    expect(readField(pod, 'metadata.name.length')).toBe('')
    expect(readField(null, 'a')).toBe('')
    expect(matchesFields(parseFieldSelector('spec.nodeName=', podFields), pod)).toBe(true)
  })

  it('accepts a reader function for computed fields', () => {
    const selector = parseFieldSelector('status.phase!=Failed', podFields)
    expect(matchesFields(selector, (path) => (path === 'status.phase' ? 'Failed' : ''))).toBe(false)
    expect(matchesFields(selector, (path) => (path === 'status.phase' ? 'Running' : ''))).toBe(true)
  })
})

// ---------------------------------------------------------------- properties

type GeneratedRequirement = { key: string; operator: LabelOperator; values: string[] }

const labelKey = fc.constantFrom('a', 'b', 'c', 'example.com/d')
const labelValue = fc.constantFrom('', 'x', 'y', '1', '5', '10', 'in')
const integerValue = fc.constantFrom('0', '1', '5', '10')
const space = fc.constantFrom('', ' ', '  ', '\t')
const requirement: fc.Arbitrary<GeneratedRequirement> = fc.oneof(
  fc.record({ key: labelKey, operator: fc.constantFrom<LabelOperator>('in', 'notin'), values: fc.uniqueArray(labelValue, { minLength: 1, maxLength: 3 }) }),
  fc.record({ key: labelKey, operator: fc.constantFrom<LabelOperator>('=', '==', '!='), values: labelValue.map((v) => [v]) }),
  fc.record({ key: labelKey, operator: fc.constantFrom<LabelOperator>('exists', '!'), values: fc.constant<string[]>([]) }),
  fc.record({ key: labelKey, operator: fc.constantFrom<LabelOperator>('gt', 'lt'), values: integerValue.map((v) => [v]) }),
)
const labelMap = fc.dictionary(labelKey, fc.constantFrom('', 'x', 'y', '1', '5', '10', 'abc'), { maxKeys: 4 })

// The selector language, written independently of the module, with whitespace where allowed.
function render(r: GeneratedRequirement, ws: string): string {
  const values = r.values.join(`,${ws}`)
  switch (r.operator) {
    case 'exists':
      return `${ws}${r.key}${ws}`
    case '!':
      return `${ws}!${ws}${r.key}${ws}`
    case 'in':
    case 'notin':
      return `${ws}${r.key} ${r.operator}${ws}(${ws}${values}${ws})${ws}`
    case 'gt':
      return `${r.key}${ws}>${ws}${values}`
    case 'lt':
      return `${r.key}${ws}<${ws}${values}`
    default:
      return `${ws}${r.key}${ws}${r.operator}${ws}${values}`
  }
}

function bruteForce(requirements: GeneratedRequirement[], labels: Record<string, string>): boolean {
  return requirements.every(({ key, operator, values }) => {
    const has = Object.keys(labels).includes(key)
    const value = labels[key] ?? ''
    if (operator === 'in' || operator === '=' || operator === '==') return has && values.includes(value)
    if (operator === 'notin' || operator === '!=') return !has || !values.includes(value)
    if (operator === 'exists') return has
    if (operator === '!') return !has
    const isInteger = /^\d+$/.test(value)
    return has && isInteger && (operator === 'gt' ? Number(value) > Number(values[0]) : Number(value) < Number(values[0]))
  })
}

describe('selector properties', () => {
  it('matches agrees with a brute-force evaluation of the requirements', () => {
    fc.assert(
      fc.property(fc.array(requirement, { maxLength: 4 }), labelMap, space, (requirements, labels, ws) => {
        const text = requirements.map((r) => render(r, ws)).join(',')
        expect(matches(parseLabelSelector(text), labels)).toBe(bruteForce(requirements, labels))
      }),
      { numRuns: 500 },
    )
  })

  it('toString and parse round-trip', () => {
    fc.assert(
      fc.property(fc.array(requirement, { maxLength: 4 }), space, (requirements, ws) => {
        const selector = parseLabelSelector(requirements.map((r) => render(r, ws)).join(','))
        const again = parseLabelSelector(String(selector))
        expect(again.requirements).toEqual(selector.requirements)
        expect(String(again)).toBe(String(selector))
      }),
    )
  })

  it('matchExpressions select what the equivalent selector string selects', () => {
    const operators = { in: 'In', notin: 'NotIn', exists: 'Exists', '!': 'DoesNotExist' } as const
    const setBased = requirement.filter((r): r is GeneratedRequirement & { operator: keyof typeof operators } => Object.hasOwn(operators, r.operator))
    fc.assert(
      fc.property(fc.array(setBased, { maxLength: 4 }), labelMap, (requirements, labels) => {
        const structured = selectorFromLabelSelector({ matchExpressions: requirements.map((r) => ({ key: r.key, operator: operators[r.operator], values: r.values })) })
        const text = parseLabelSelector(requirements.map((r) => render(r, ' ')).join(','))
        expect(matches(structured, labels)).toBe(matches(text, labels))
        expect(String(structured)).toBe(String(text))
      }),
    )
  })

  it('field selectors match escaped values exactly and print back what they parsed', () => {
    const value = fc.array(fc.constantFrom('a', ',', '=', '\\', ' ', '!'), { maxLength: 4 }).map((chars) => chars.join(''))
    const escape = (v: string) => v.replace(/[\\,=]/g, (c) => `\\${c}`)
    fc.assert(
      fc.property(value, value, fc.boolean(), (wanted, actual, negate) => {
        const selector = parseFieldSelector(`metadata.name${negate ? '!=' : '='}${escape(wanted)}`, ['metadata.name'])
        expect(matchesFields(selector, { metadata: { name: actual } })).toBe((actual === wanted) !== negate)
        expect(parseFieldSelector(String(selector), ['metadata.name']).requirements).toEqual(selector.requirements)
      }),
    )
  })
})
