import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { checkLinearizable, describeViolation, type KvOperation, type KvOperationKind } from './linearizability.js'

const UNKNOWN = Infinity

function op(
  clientId: number,
  kind: KvOperationKind,
  key: string,
  value: string,
  invokeTime: number,
  responseTime: number,
): KvOperation {
  return { clientId, kind, key, value, invokeTime, responseTime }
}

const put = (c: number, v: string, from: number, to: number, key = 'k'): KvOperation => op(c, 'put', key, v, from, to)
const get = (c: number, v: string, from: number, to: number, key = 'k'): KvOperation => op(c, 'get', key, v, from, to)
const append = (c: number, v: string, from: number, to: number, key = 'k'): KvOperation =>
  op(c, 'append', key, v, from, to)

describe('checkLinearizable: hand-written histories', () => {
  const accepted: Array<[string, KvOperation[]]> = [
    ['an empty history', []],
    ['a read of the initial empty value', [get(1, '', 0, 1)]],
    ['a read after a completed write', [put(1, 'x', 0, 1), get(2, 'x', 2, 3)]],
    ['a read concurrent with a write seeing the old value', [put(1, 'x', 0, 10), get(2, '', 2, 3)]],
    ['a read concurrent with a write seeing the new value', [put(1, 'x', 0, 10), get(2, 'x', 2, 3)]],
    ['a write that responds exactly when a read is invoked', [put(1, 'x', 0, 5), get(2, '', 5, 6)]],
    ['an unknown-outcome write later read', [put(1, 'x', 0, UNKNOWN), get(2, 'x', 5, 6)]],
    ['an unknown-outcome write that is never read', [put(1, 'x', 0, UNKNOWN), get(2, '', 5, 6), get(2, '', 7, 8)]],
    ['an unknown-outcome write that shows up long after its client gave up', [
      put(1, 'x', 0, UNKNOWN), put(2, 'y', 1, 2), get(3, 'y', 3, 4), get(3, 'x', 100, 101),
    ]],
    ['an unknown-outcome read, whatever it returned', [put(1, 'x', 0, 1), get(2, 'nonsense', 2, UNKNOWN)]],
    // The unknown put must be held back for the last read, not spent early on the first.
    ['an unknown-outcome write that takes effect only after a read of another write of its value', [
      put(1, 'x', 0, 0), put(2, 'x', 0, UNKNOWN), append(3, 'y', 1, UNKNOWN), get(4, 'xy', 1, 1), get(4, 'x', 2, 2),
    ]],
    ['appends in real-time order', [append(1, 'a', 0, 1), append(2, 'b', 2, 3), get(3, 'ab', 4, 5)]],
    ['concurrent appends in either order', [append(1, 'a', 0, 5), append(2, 'b', 1, 6), get(3, 'ba', 7, 8)]],
    ['an append after a put', [put(1, 'x', 0, 1), append(2, 'y', 2, 3), get(1, 'xy', 4, 5)]],
    ['independent keys', [put(1, 'x', 0, 1, 'a'), get(2, '', 2, 3, 'b'), get(2, 'x', 4, 5, 'a')]],
  ]
  it.each(accepted)('accepts %s', (_, history) => {
    expect(checkLinearizable(history)).toEqual({ ok: true })
  })

  const rejected: Array<[string, KvOperation[]]> = [
    ['a stale read after a completed write', [put(1, 'x', 0, 1), get(2, '', 2, 3)]],
    ['a stale read after a completed overwrite', [put(1, 'x', 0, 1), put(1, 'y', 2, 3), get(2, 'x', 4, 5)]],
    ['a read of a value never written', [put(1, 'x', 0, 1), get(2, 'z', 2, 3)]],
    ['a read of a value before it was written', [get(2, 'x', 0, 1), put(1, 'x', 2, 3)]],
    ['a read of an unknown-outcome write before its invocation', [get(2, 'x', 0, 1), put(1, 'x', 2, UNKNOWN)]],
    ['an unknown-outcome write read and then unread', [
      put(1, 'x', 0, UNKNOWN), get(2, 'x', 1, 2), get(2, '', 3, 4),
    ]],
    ['a new-old inversion between sequential reads of one write', [
      put(1, 'x', 0, 10), get(2, 'x', 1, 2), get(3, '', 3, 4),
    ]],
    ['appends observed out of real-time order', [append(1, 'a', 0, 1), append(2, 'b', 2, 3), get(3, 'ba', 4, 5)]],
    ['concurrent appends observed in both orders', [
      append(1, 'a', 0, 5), append(2, 'b', 1, 6), get(3, 'ab', 7, 8), get(3, 'ba', 9, 10),
    ]],
    ['a lost append', [append(1, 'a', 0, 1), append(2, 'b', 2, 3), get(3, 'b', 4, 5)]],
  ]
  it.each(rejected)('rejects %s', (_, history) => {
    const result = checkLinearizable(history)
    expect(result.ok).toBe(false)
    if (result.ok === false) expectValidPrefix(result.operations, result.longestPrefix)
  })

  it('reports the key with the violation and only its operations', () => {
    const history = [
      put(1, 'x', 0, 1, 'good'), put(1, 'y', 0, 1, 'bad'), get(2, 'x', 2, 3, 'good'), get(2, '', 2, 3, 'bad'),
    ]
    const result = checkLinearizable(history)
    expect(result).toMatchObject({ ok: false, key: 'bad', longestPrefix: [0] })
    if (result.ok === false) expect(result.operations.map((o) => o.value)).toEqual(['y', ''])
  })

  it('rejects operations that respond before they are invoked', () => {
    expect(() => checkLinearizable([put(1, 'x', 5, 4)])).toThrow(RangeError)
    expect(() => checkLinearizable([put(1, 'x', NaN, 4)])).toThrow(RangeError)
  })
})

describe('checkLinearizable: work bound', () => {
  const long = Array.from({ length: 100 }, (_, i) => put(1, `v${i}`, 2 * i, 2 * i + 1))

  it('reports unknown instead of searching past maxStatesPerKey', () => {
    const result = checkLinearizable(long, { maxStatesPerKey: 10 })
    expect(result).toMatchObject({ ok: 'unknown', key: 'k' })
    expect(describeViolation(result)).toContain('unknown')
    expect(checkLinearizable(long, { maxStatesPerKey: 1000 })).toEqual({ ok: true })
  })

  it('prefers a definite violation on another key to an unknown verdict', () => {
    const result = checkLinearizable([...long, put(1, 'x', 0, 1, 'z'), get(1, '', 2, 3, 'z')], { maxStatesPerKey: 10 })
    expect(result).toMatchObject({ ok: false, key: 'z' })
  })

  // Every pending unknown-outcome write may take effect at any point, so a
  // naive search tries them in every combination (2^20 here) before giving up.
  it('settles a violation among many pending unknown-outcome writes within a small budget', () => {
    const writes = Array.from({ length: 20 }, (_, i) => put(i, `u${i}`, 0, UNKNOWN))
    const reads = writes.map((_, i) => get(100, `u${i}`, 10 + 2 * i, 11 + 2 * i))
    const options = { maxStatesPerKey: 10_000 }
    expect(checkLinearizable([...writes, ...reads], options)).toEqual({ ok: true })
    expect(checkLinearizable([...writes, ...reads, get(100, 'u0', 300, 301)], options)).toMatchObject({ ok: false })
  })
})

describe('describeViolation', () => {
  it('is empty for a linearizable history', () => {
    expect(describeViolation({ ok: true })).toBe('')
  })

  it('names the key, the register value and the conflicting read', () => {
    const result = checkLinearizable([put(1, 'x', 0, 1), put(2, 'y', 2, 3), get(3, 'x', 4, 5)])
    const text = describeViolation(result)
    expect(text).toContain('Key "k" is not linearizable')
    expect(text).toContain('the register holds "y"')
    expect(text).toMatch(/#2 client 3 get -> "x" \[4, 5\].*register holds "y"/)
  })
})

/** Reference semantics by exhaustive enumeration of orders, over the whole history at once (no per-key split). */
function bruteForceLinearizable(history: readonly KvOperation[]): boolean {
  const ops = history.filter((o) => !(o.kind === 'get' && o.responseTime === UNKNOWN))
  const completed = ops.filter((o) => o.responseTime !== UNKNOWN).length
  const used = ops.map(() => false)
  const register = new Map<string, string>()
  const search = (placedCompleted: number): boolean => {
    if (placedCompleted === completed) return true
    return ops.some((next, i) => {
      const blocked = ops.some((other, j) => !used[j] && j !== i && other.responseTime < next.invokeTime)
      if (used[i] || blocked) return false
      const before = register.get(next.key) ?? ''
      if (next.kind === 'get' && next.value !== before) return false
      register.set(next.key, next.kind === 'put' ? next.value : next.kind === 'append' ? before + next.value : before)
      used[i] = true
      const found = search(placedCompleted + (next.responseTime === UNKNOWN ? 0 : 1))
      used[i] = false
      register.set(next.key, before)
      return found
    })
  }
  return search(0)
}

/** A longest prefix must itself be a legal, real-time respecting, downward-closed linearization. */
function expectValidPrefix(ops: readonly KvOperation[], prefix: readonly number[]): void {
  const at = (i: number): KvOperation => ops[i] ?? expect.unreachable(`no operation ${i}`)
  expect(new Set(prefix).size).toBe(prefix.length)
  let value = ''
  prefix.forEach((index, position) => {
    const o = at(index)
    if (o.kind === 'get') expect(o.value).toBe(value)
    value = o.kind === 'put' ? o.value : o.kind === 'append' ? value + o.value : value
    for (const later of prefix.slice(position + 1)) expect(at(later).responseTime).toBeGreaterThanOrEqual(o.invokeTime)
  })
  const inPrefix = new Set(prefix)
  ops.forEach((o, i) => {
    if (inPrefix.has(i)) return
    for (const p of prefix) expect(o.responseTime).toBeGreaterThanOrEqual(at(p).invokeTime)
  })
}

const smallHistoryArb = fc.array(
  fc
    .record({
      clientId: fc.nat({ max: 3 }),
      kind: fc.constantFrom<KvOperationKind>('put', 'get', 'get', 'append'),
      key: fc.constantFrom('a', 'a', 'a', 'b'),
      value: fc.constantFrom('', 'x', 'y', 'x', 'y', 'xy', 'yx'),
      invokeTime: fc.nat({ max: 8 }),
      length: fc.nat({ max: 6 }),
      unknownOutcome: fc.nat({ max: 9 }).map((n) => n < 2),
    })
    .map(({ length, unknownOutcome, ...o }) => ({
      ...o,
      responseTime: unknownOutcome ? UNKNOWN : o.invokeTime + length,
    })),
  { maxLength: 7 },
)

describe('checkLinearizable agrees with brute force on small histories', () => {
  it('gives the same verdict as exhaustive enumeration', () => {
    let rejections = 0
    fc.assert(
      fc.property(smallHistoryArb, (history) => {
        const result = checkLinearizable(history)
        expect(result.ok).toBe(bruteForceLinearizable(history))
        if (result.ok === false) {
          rejections++
          expectValidPrefix(result.operations, result.longestPrefix)
        }
      }),
      { numRuns: 1000 },
    )
    // Guard against a generator that only ever produces one kind of verdict.
    expect(rejections).toBeGreaterThan(100)
    expect(rejections).toBeLessThan(900)
  })
})

/** One client operation; `at` in [0, 1) places its effect within its interval. */
interface OpSpec {
  kind: KvOperationKind
  key: number
  gap: number
  duration: number
  at: number
  /** lost and late both time out; late still takes effect, possibly after the client gave up */
  outcome: 'ok' | 'lost' | 'late'
}

/**
 * Runs clients against a real sequential register: each op takes effect at a
 * point inside its interval, and reads return what the register held then.
 * Integer times make ties (and so touching intervals) common.
 */
function simulate(clients: readonly (readonly OpSpec[])[], keys: number): KvOperation[] {
  const history: KvOperation[] = []
  const effects: Array<{ time: number; op: KvOperation }> = []
  clients.forEach((specs, clientId) => {
    let now = 0
    specs.forEach((spec, i) => {
      const invokeTime = now + spec.gap
      now = invokeTime + spec.duration
      const known = spec.outcome === 'ok'
      // Unique values, so a corrupted read cannot match by accident; a read's value is filled in below.
      const value = spec.kind === 'put' ? `v${clientId}.${i}` : spec.kind === 'append' ? `<${clientId}.${i}>` : '???'
      const o = op(clientId, spec.kind, `k${spec.key % keys}`, value, invokeTime, known ? now : UNKNOWN)
      history.push(o)
      const window = known ? spec.duration + 1 : 3 * spec.duration + 1
      if (spec.outcome !== 'lost') effects.push({ time: invokeTime + Math.floor(spec.at * window), op: o })
    })
  })
  const register = new Map<string, string>()
  for (const { op: o } of effects.sort((a, b) => a.time - b.time)) {
    const before = register.get(o.key) ?? ''
    if (o.kind === 'get') o.value = before
    else register.set(o.key, o.kind === 'put' ? o.value : before + o.value)
  }
  return history
}

function opSpecArb(unknownPercent: number): fc.Arbitrary<OpSpec> {
  return fc.record({
    kind: fc.constantFrom<KvOperationKind>('put', 'get', 'get', 'append'),
    key: fc.nat({ max: 7 }),
    gap: fc.nat({ max: 4 }),
    duration: fc.nat({ max: 12 }),
    at: fc.nat({ max: 999 }).map((n) => n / 1000),
    outcome: fc.nat({ max: 99 }).map((n) => (n < unknownPercent / 2 ? 'lost' : n < unknownPercent ? 'late' : 'ok')),
  })
}

const simulatedArb = fc.record({
  keys: fc.integer({ min: 1, max: 3 }),
  clients: fc.array(fc.array(opSpecArb(20), { maxLength: 25 }), { minLength: 1, maxLength: 6 }),
})

const FRESH = 'never-written'

function completedGets(history: readonly KvOperation[]): number[] {
  return history.flatMap((o, i) => (o.kind === 'get' && o.responseTime !== UNKNOWN ? [i] : []))
}

/** Replaces one completed read with a value no execution could return. */
function corrupt(history: readonly KvOperation[], choice: number): { history: KvOperation[]; key: string } | undefined {
  const gets = completedGets(history)
  const index = gets[choice % Math.max(gets.length, 1)]
  const target = index === undefined ? undefined : history[index]
  if (index === undefined || target === undefined) return undefined
  return { history: history.map((o, i) => (i === index ? { ...o, value: FRESH } : o)), key: target.key }
}

describe('checkLinearizable on simulated register histories', () => {
  it('accepts every history produced by a real register', () => {
    fc.assert(
      fc.property(simulatedArb, ({ keys, clients }) => {
        expect(checkLinearizable(simulate(clients, keys))).toEqual({ ok: true })
      }),
      { numRuns: 500 },
    )
  })

  it('rejects such a history once a completed read returns a never-written value', () => {
    fc.assert(
      fc.property(simulatedArb, fc.nat(), ({ keys, clients }, choice) => {
        const corrupted = corrupt(simulate(clients, keys), choice)
        fc.pre(corrupted !== undefined)
        if (corrupted === undefined) return
        const result = checkLinearizable(corrupted.history)
        expect(result).toMatchObject({ ok: false, key: corrupted.key })
        if (result.ok === false) expectValidPrefix(result.operations, result.longestPrefix)
      }),
      { numRuns: 500 },
    )
  })
})

/** Deterministic (mulberry32) so the performance case measures the same history every run. */
function seededSpecs(seed: number, clients: number, opsPerClient: number, unknownPercent: number): OpSpec[][] {
  let state = seed
  const random = (): number => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] ?? expect.unreachable()
  return Array.from({ length: clients }, () =>
    Array.from({ length: opsPerClient }, () => {
      const roll = random() * 100
      return {
        kind: pick<KvOperationKind>(['put', 'get', 'get', 'append']),
        key: Math.floor(random() * 1_000_000),
        gap: Math.floor(random() * 5),
        duration: 1 + Math.floor(random() * 20),
        at: random(),
        outcome: roll < unknownPercent / 2 ? 'lost' : roll < unknownPercent ? 'late' : 'ok',
      }
    }),
  )
}

describe('checkLinearizable performance', () => {
  const history = simulate(seededSpecs(42, 10, 1000, 2), 20)

  it('checks 10,000 operations over 20 keys from 10 clients in under 2 s', () => {
    expect(history).toHaveLength(10_000)
    const started = performance.now()
    const result = checkLinearizable(history)
    const elapsed = performance.now() - started
    expect(result).toEqual({ ok: true })
    expect(elapsed).toBeLessThan(2000)
  })

  it('checks 2,000 operations on a single key from 10 clients in under 2 s', () => {
    // About eight ops are in flight at any moment, all on this key.
    const hot = simulate(seededSpecs(7, 10, 200, 2), 1)
    const started = performance.now()
    const result = checkLinearizable(hot)
    const elapsed = performance.now() - started
    expect(result).toEqual({ ok: true })
    expect(elapsed).toBeLessThan(2000)
  })

  it('rejects the 10,000-operation history with one corrupted read in under 2 s', () => {
    const corrupted = corrupt(history, 4321)
    if (corrupted === undefined) return expect.unreachable('no completed reads')
    const started = performance.now()
    const result = checkLinearizable(corrupted.history)
    const elapsed = performance.now() - started
    expect(result).toMatchObject({ ok: false, key: corrupted.key })
    expect(elapsed).toBeLessThan(2000)
  })
})
