// The label selector language (labels.Parse): `a=b,c!=d,e in (f,g),h notin (i),j,!k,l>1`.
import { InvalidSelectorError, fail, keyError, newRequirement, selectorFromRequirements, type LabelOperator, type LabelRequirement, type Selector } from './label-selectors.js'

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

