// Linearizability checker for key-value register histories: Wing & Gong's
// search with Lowe's memoization, as in Porcupine (anishathalye/porcupine).
// Registers are P-compositional (a history is linearizable if and only if each
// key's sub-history is), so each key is searched alone and the cost is
// exponential only in one key's concurrency.
//
// Intervals are closed: ops where one responds at t and the other is invoked
// at t are concurrent, since a coarse simulated clock makes such ties common
// and ordering them would report violations the system never committed.
// Unknown-outcome ops never have to be placed: a search succeeds once every
// completed op is, and the rest are deemed to take effect afterwards, or never.

import { KeySearch, step } from './linearizability-search.js'

export type KvOperationKind = 'put' | 'get' | 'append'

export interface KvOperation {
  clientId: number
  kind: KvOperationKind
  key: string
  /** put/append: the value written or appended; get: the value read ('' when the key was absent) */
  value: string
  invokeTime: number
  /** Infinity when the outcome is unknown (the client timed out): the op may have taken effect at any time after invokeTime, or never */
  responseTime: number
}

export type LinearizabilityResult =
  | { ok: true }
  | {
      ok: false
      key: string
      /** the ops on that key, for printing */
      operations: KvOperation[]
      /** the longest linearizable prefix found, as indexes into operations */
      longestPrefix: number[]
    }
  | { ok: 'unknown'; key: string; reason: string }

export interface CheckOptions {
  /** Give up on a key (`ok: 'unknown'`) once this many distinct search states have been memoized for it. */
  maxStatesPerKey?: number
}

// Ordinary histories need about one state per op. A state costs one to three
// microseconds and ~60 bytes, so giving up takes a few seconds and ~100 MB.
const DEFAULT_MAX_STATES_PER_KEY = 1_000_000

export function checkLinearizable(history: readonly KvOperation[], options: CheckOptions = {}): LinearizabilityResult {
  const maxStates = options.maxStatesPerKey ?? DEFAULT_MAX_STATES_PER_KEY
  if (!(maxStates >= 1)) throw new RangeError(`maxStatesPerKey must be at least 1, got ${maxStates}`)
  let inconclusive: LinearizabilityResult | undefined
  for (const [key, operations] of partitionByKey(history)) {
    const verdict = new KeySearch(operations, maxStates).run()
    if (verdict === 'ok') continue
    if (verdict !== 'exhausted') return { ok: false, key, operations, longestPrefix: pad(operations, verdict) }
    // Keep going: a definite violation on a later key is more useful than "unknown".
    const reason = `gave up after ${maxStates} search states on ${operations.length} operations`
    inconclusive ??= { ok: 'unknown', key, reason }
  }
  return inconclusive ?? { ok: true }
}

/** Groups ops by key, ordered by invocation; drops unknown-outcome gets, which constrain nothing. */
function partitionByKey(history: readonly KvOperation[]): Map<string, KvOperation[]> {
  const byKey = new Map<string, KvOperation[]>()
  history.forEach((op, index) => {
    if (!Number.isFinite(op.invokeTime) || !(op.responseTime >= op.invokeTime)) {
      const times = `[${op.invokeTime}, ${op.responseTime}]`
      throw new RangeError(`operation ${index} (${op.kind} ${JSON.stringify(op.key)}) has invalid times ${times}`)
    }
    if (op.kind === 'get' && op.responseTime === Infinity) return
    const ops = byKey.get(op.key)
    if (ops === undefined) byKey.set(op.key, [op])
    else ops.push(op)
  })
  for (const ops of byKey.values()) ops.sort((a, b) => a.invokeTime - b.invokeTime)
  return byKey
}

/**
 * The lookahead stops prefixes short of the op that makes a conflict plain, so
 * for diagnostics extend the longest one greedily with completed ops that are
 * callable and allowed by the register. Runs once, on a violation.
 */
function pad(ops: readonly KvOperation[], prefix: readonly number[]): number[] {
  const result = [...prefix]
  const placed = new Set(prefix)
  let value = valueAfter(ops, prefix)
  for (;;) {
    const deadline = earliestResponse(ops, placed)
    const callable = (op: KvOperation, i: number): boolean =>
      !placed.has(i) && op.responseTime !== Infinity && op.invokeTime <= deadline && step(value, op) !== null
    const next = ops.findIndex(callable)
    const op = ops[next]
    if (op === undefined) return result
    value = step(value, op) ?? value
    placed.add(next)
    result.push(next)
  }
}

function valueAfter(ops: readonly KvOperation[], prefix: readonly number[]): string {
  return prefix.reduce((value, i) => {
    const op = ops[i]
    return op === undefined ? value : (step(value, op) ?? value)
  }, '')
}

/** The earliest response among ops not yet placed: every op invoked by then could go next. */
function earliestResponse(ops: readonly KvOperation[], placed: ReadonlySet<number>): number {
  return ops.reduce((min, op, i) => (placed.has(i) ? min : Math.min(min, op.responseTime)), Infinity)
}

export function describeViolation(result: LinearizabilityResult): string {
  if (result.ok === true) return ''
  if (result.ok === 'unknown') {
    return `Linearizability of key ${JSON.stringify(result.key)} is unknown: ${result.reason}.`
  }
  const { key, operations: ops, longestPrefix: prefix } = result
  const value = valueAfter(ops, prefix)
  const placed = new Set(prefix)
  const deadline = earliestResponse(ops, placed)
  const candidates = ops.flatMap((op, i) => (placed.has(i) || op.invokeTime > deadline ? [] : [i]))
  const shown = prefix.slice(-10)
  return [
    `Key ${JSON.stringify(key)} is not linearizable (${ops.length} operations).`,
    `The longest linearizable prefix found has ${prefix.length} operations, ` +
      `after which the register holds ${show(value)}.`,
    shown.length < prefix.length ? `Its last ${shown.length} operations:` : 'Its operations:',
    ...shown.map((i) => `  ${describeOperation(ops, i)}`),
    'No linearizable history continues it with any of the operations that could come next:',
    ...candidates.map((i) => `  ${describeOperation(ops, i)}${conflict(ops[i], value)}`),
  ].join('\n')
}

function describeOperation(ops: readonly KvOperation[], index: number): string {
  const op = ops[index]
  if (op === undefined) return `#${index} (missing)`
  const action = op.kind === 'get' ? `get -> ${show(op.value)}` : `${op.kind} ${show(op.value)}`
  const end = op.responseTime === Infinity ? '?) outcome unknown' : `${op.responseTime}]`
  return `#${index} client ${op.clientId} ${action} [${op.invokeTime}, ${end}`
}

function conflict(op: KvOperation | undefined, value: string): string {
  return op?.kind === 'get' && op.value !== value ? `  <- but the register holds ${show(value)}` : ''
}

function show(value: string): string {
  const text = JSON.stringify(value)
  return text.length <= 60 ? text : `${text.slice(0, 28)}…${text.slice(-28)} (${value.length} chars)`
}
