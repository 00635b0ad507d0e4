// Linearizability of one object's history against a register that is absent
// or holds a value: create needs it absent, update and delete need it present,
// a read must return what it holds. The search is Wing & Gong's with Lowe's
// memo of (linearized ops, value), as in Knossos and Porcupine: at each step
// any op invoked before the earliest answer among ops not yet placed may go
// next. Ops whose outcome is unknown (timeouts, resets, 5xx) may be placed at
// any point after their invocation, or never. Definitely failed ops (4xx) are
// left out, as Jepsen does with :fail: they took no effect and constrain nothing.
// The workload writes a unique value each time, so reads pin writes down and
// the search stays small; a budget of states bounds it all the same.

export type RegisterOpKind = 'create' | 'update' | 'delete' | 'read'

export interface RegisterOp {
  /** The history's operation id, for reports. */
  id: number
  kind: RegisterOpKind
  /** create/update: the value written; read: the value seen, null for absent (404). */
  value: string | null
  invokeMs: number
  /** Infinity when the outcome is unknown. */
  completeMs: number
}

export type RegisterVerdict =
  | { ok: true; states: number }
  | { ok: false; states: number; longestPrefix: number[]; reason: string }
  | { ok: 'unknown'; states: number; reason: string }

const defaultMaxStates = 200_000

/** The register after `op`, or undefined if `op` cannot happen when it holds `value`. */
export function stepRegister(value: string | null, op: RegisterOp): string | null | undefined {
  switch (op.kind) {
    case 'create':
      return value === null ? op.value : undefined
    case 'update':
      return value !== null ? op.value : undefined
    case 'delete':
      return value !== null ? null : undefined
    case 'read':
      return op.value === value ? value : undefined
  }
}

interface Frame {
  placed: number
  previous: string | null
}

/** Checks one object's ops (any order); unknown-outcome reads are dropped, since they constrain nothing. */
export function checkRegister(input: readonly RegisterOp[], options: { maxStates?: number; initial?: string | null } = {}): RegisterVerdict {
  const maxStates = options.maxStates ?? defaultMaxStates
  const ops = input.filter((op) => !(op.kind === 'read' && op.completeMs === Infinity)).sort((a, b) => a.invokeMs - b.invokeMs)
  const n = ops.length
  const mustPlace = ops.filter((op) => op.completeMs !== Infinity).length
  const placed = new Uint8Array(n)
  const memo = new Set<string>()
  const stack: Frame[] = []
  let value: string | null = options.initial ?? null
  let placedCompleted = 0
  let longest: number[] = []
  // Per depth, the next candidate index to try.
  const cursor: number[] = [0]
  const memoKey = (): string => `${placed.join('')}|${value === null ? '\u0000' : value}`
  for (;;) {
    if (placedCompleted === mustPlace) return { ok: true, states: memo.size }
    if (memo.size > maxStates) return { ok: 'unknown', states: memo.size, reason: `gave up after ${maxStates} search states on ${n} operations` }
    const depth = stack.length
    const deadline = earliestAnswer(ops, placed)
    let advanced = false
    for (let i = cursor[depth] ?? 0; i < n; i++) {
      const op = ops[i]!
      if (placed[i] === 1) continue
      if (op.invokeMs > deadline) break
      const next = stepRegister(value, op)
      if (next === undefined) continue
      placed[i] = 1
      const previous = value
      value = next
      const key = memoKey()
      if (memo.has(key)) {
        placed[i] = 0
        value = previous
        continue
      }
      memo.add(key)
      cursor[depth] = i + 1
      stack.push({ placed: i, previous })
      cursor[depth + 1] = 0
      if (op.completeMs !== Infinity) placedCompleted++
      advanced = true
      break
    }
    if (advanced) continue
    if (stack.length > longest.length) longest = stack.map((f) => ops[f.placed]!.id)
    const frame = stack.pop()
    if (frame === undefined) return { ok: false, states: memo.size, longestPrefix: longest, reason: explain(ops, longest, options.initial ?? null) }
    placed[frame.placed] = 0
    value = frame.previous
    if (ops[frame.placed]!.completeMs !== Infinity) placedCompleted--
  }
}

/** The earliest answer among completed ops not yet placed: nothing invoked after it may go before it. */
function earliestAnswer(ops: readonly RegisterOp[], placed: Uint8Array): number {
  let min = Infinity
  for (let i = 0; i < ops.length; i++) if (placed[i] === 0 && ops[i]!.completeMs < min) min = ops[i]!.completeMs
  return min
}

function explain(ops: readonly RegisterOp[], prefixIds: readonly number[], initial: string | null): string {
  const byId = new Map(ops.map((op) => [op.id, op]))
  let value = initial
  for (const id of prefixIds) value = stepRegister(value, byId.get(id)!) ?? value
  const placed = new Set(prefixIds)
  const rest = ops.filter((op) => !placed.has(op.id))
  const deadline = Math.min(...rest.map((op) => op.completeMs))
  const blocked = rest.filter((op) => op.invokeMs <= deadline).map(describeOp)
  return [
    `after ${prefixIds.length} of ${ops.length} operations placed (last: ${prefixIds.slice(-5).map((id) => `#${id}`).join(', ') || 'none'}) the object is ${show(value)};`,
    `none of the operations that could come next is possible: ${blocked.join('; ')}`,
  ].join(' ')
}

export function describeOp(op: RegisterOp): string {
  const what = op.kind === 'read' ? `read -> ${show(op.value)}` : op.kind === 'delete' ? 'delete' : `${op.kind} ${show(op.value)}`
  const end = op.completeMs === Infinity ? '?' : String(op.completeMs)
  return `#${op.id} ${what} [${op.invokeMs}, ${end}]`
}

function show(value: string | null): string {
  return value === null ? 'absent' : JSON.stringify(value)
}
