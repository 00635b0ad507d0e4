// The per-key search behind checkLinearizable (linearizability.ts): Wing &
// Gong's depth-first search over call/return events with Lowe's memoization,
// as in Porcupine, plus the pruning described where it is done.
import type { KvOperation } from './linearizability.js'

/** The sequential specification: the next register value, or null if `op` cannot happen in `value`. */
export function step(value: string, op: KvOperation): string | null {
  if (op.kind === 'get') return op.value === value ? value : null
  return op.kind === 'put' ? op.value : value + op.value
}

/**
 * Whether an unknown-outcome write could explain some completed read. If not,
 * leaving it out changes no verdict: in a linearization that includes it, no
 * read falls between it and the next put (that read would start with the put's
 * value, or contain the appended one), so dropping it alters no read. Without
 * this, the search would try every unobserved write at every point.
 */
function couldBeObserved(op: KvOperation, reads: ReadonlySet<string>): boolean {
  if (op.kind === 'append' && op.value === '') return false
  for (const read of reads) {
    if (op.kind === 'put' ? read.startsWith(op.value) : read.includes(op.value)) return true
  }
  return false
}

/**
 * An event in a doubly linked list (Porcupine's entry list). A completed op has
 * a call and a return in the main list and, for a get, a node in the list of
 * reads by deadline. An unknown-outcome op has only a call, in its own list, so
 * the search can try such ops after the completed ones.
 */
interface Node {
  readonly index: number
  readonly op: KvOperation
  /** position in the completed or the unknown bitset; -1 for returns */
  readonly bit: number
  readonly time: number
  readonly match: Node | null
  readonly read: Node | null
  /** polynomial hash of op.value and BASE to the power of its length, so an append rehashes in O(1) */
  readonly hash: number
  readonly power: number
  prev: Node | null
  next: Node | null
}

const BASE = 0x01000193

function makeNode(index: number, op: KvOperation, bit: number, match: Node | null = null, read: Node | null = null) {
  let hash = 0
  let power = 1
  for (let i = 0; i < op.value.length; i++) {
    hash = (Math.imul(hash, BASE) + op.value.charCodeAt(i)) | 0
    power = Math.imul(power, BASE)
  }
  const time = bit >= 0 ? op.invokeTime : op.responseTime
  const node: Node = { index, op, bit, time, match, read, hash, power, prev: null, next: null }
  return node
}

function linkAfterHead(nodes: readonly Node[]): Node {
  const head = makeNode(-1, { clientId: -1, kind: 'get', key: '', value: '', invokeTime: 0, responseTime: 0 }, -1)
  nodes.reduce((last, node) => {
    last.next = node
    node.prev = last
    return node
  }, head)
  return head
}

function unlink(node: Node | null): void {
  if (node?.prev) node.prev.next = node.next
  if (node?.next) node.next.prev = node.prev
}

function relink(node: Node | null): void {
  if (node?.prev) node.prev.next = node
  if (node?.next) node.next.prev = node
}

/** Removes an op from its lists; its nodes keep their own links, so `restore` is O(1). */
function lift(call: Node): void {
  unlink(call)
  unlink(call.match)
  unlink(call.read)
}

function restore(call: Node): void {
  relink(call.read)
  relink(call.match)
  relink(call)
}

/** A well-mixed word per op (murmur3's finalizer) for Zobrist hashing of the completed set. */
function zobrist(bit: number): number {
  const z = Math.imul(bit ^ 0x5bd1e995, 0x85ebca6b)
  const y = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return y ^ (y >>> 16)
}

function grow(array: Int32Array<ArrayBuffer>, length: number): Int32Array<ArrayBuffer> {
  if (length <= array.length) return array
  const bigger = new Int32Array(Math.max(length, array.length * 2))
  bigger.set(array)
  return bigger
}

/**
 * Lowe's memo of visited (linearized set, register value) pairs, extended with
 * subsumption: a state is redundant if a visited one has the same completed ops
 * and value and a subset of its unknown-outcome ops, because unknown ops can be
 * postponed to the end. Without it, each pending unknown write doubles the
 * space a failing search must exhaust. States live in one flat arena (a typed
 * array per state made GC dominate) as [lo, length, completed words from lo,
 * unknown words]: below word lo all ops are linearized, beyond it none.
 */
class StateCache {
  size = 0
  private words = new Int32Array(1 << 12)
  private used = 0
  /** per state: its start in `words`, the next state in its bucket, its hash */
  private index = new Int32Array(3 << 10)
  private heads = new Int32Array(1 << 10).fill(-1)
  private readonly values: string[] = []

  /** Takes the search's live bitsets, which `add` reads in place. */
  constructor(
    private readonly completed: Int32Array,
    private readonly unknown: Int32Array,
  ) {}

  /**
   * Records the state unless a recorded state subsumes it; returns whether it
   * was new. `flag` must match exactly: it changes which moves are explored.
   */
  add(hash: number, flag: number, lo: number, length: number, value: string): boolean {
    const { completed, unknown } = this
    const bucket = hash & (this.heads.length - 1)
    for (let state = this.heads[bucket] ?? -1; state !== -1; state = this.index[3 * state + 1] ?? -1) {
      if (this.index[3 * state + 2] !== hash || this.values[state] !== value) continue
      if (this.subsumes(this.index[3 * state] ?? 0, 2 * lo + flag, length)) return false
    }
    const start = this.used
    this.used += 2 + length + unknown.length
    this.words = grow(this.words, this.used)
    this.words[start] = 2 * lo + flag
    this.words[start + 1] = length
    this.words.set(completed.subarray(lo, lo + length), start + 2)
    this.words.set(unknown, start + 2 + length)
    this.index = grow(this.index, 3 * this.size + 3)
    this.index[3 * this.size] = start
    this.index[3 * this.size + 1] = this.heads[bucket] ?? -1
    this.index[3 * this.size + 2] = hash
    this.heads[bucket] = this.size++
    this.values.push(value)
    if (this.size > this.heads.length) this.rehash()
    return true
  }

  private subsumes(at: number, head: number, length: number): boolean {
    const { words, completed, unknown } = this
    if (words[at] !== head || words[at + 1] !== length) return false
    const lo = head >>> 1
    for (let i = 0; i < length; i++) if (words[at + 2 + i] !== completed[lo + i]) return false
    for (let i = 0; i < unknown.length; i++) {
      if (((words[at + 2 + length + i] ?? 0) & ~(unknown[i] ?? 0)) !== 0) return false
    }
    return true
  }

  private rehash(): void {
    this.heads = new Int32Array(this.heads.length * 2).fill(-1)
    for (let state = 0; state < this.size; state++) {
      const bucket = (this.index[3 * state + 2] ?? 0) & (this.heads.length - 1)
      this.index[3 * state + 1] = this.heads[bucket] ?? -1
      this.heads[bucket] = state
    }
  }
}

/** Counts `budget` down over calls invoked by the read's deadline; 0 if one is a put whose value starts the read's. */
function scanForReset(list: Node, read: Node, skip: Node, budget: number): number {
  for (let at = list.next; at !== null && at.time <= read.time; at = at.next) {
    if (at !== skip && at.bit >= 0 && at.op.kind === 'put' && read.op.value.startsWith(at.op.value)) return 0
    if (--budget === 0) return 0
  }
  return budget
}

interface Frame {
  readonly node: Node
  /** what to put back on backtracking */
  readonly value: string
  readonly valueHash: number
  readonly words: number
  /** the scan limit when an unknown-outcome op was chosen, so backtracking can resume that scan */
  readonly limit: number
  /** chosen without alternatives (see forceGet), so backtracking skips its siblings */
  readonly forced: boolean
  readonly unread: boolean
}

/** The WGL depth-first search over one key's operations. */
export class KeySearch {
  private readonly main: Node
  private readonly pending: Node
  private readonly reads: Node
  private readonly completed: Int32Array
  private readonly unknown: Int32Array
  private readonly cache: StateCache
  private readonly stack: Frame[] = []
  private longest: number[] = []
  private value = ''
  private valueHash = 0
  private hash = 0
  /** how many words of `completed` hold a set bit */
  private words = 0
  /** whether an unknown-outcome write has been linearized since the last get */
  private unread = false
  private remaining = 0

  constructor(
    ops: readonly KvOperation[],
    private readonly maxStates: number,
  ) {
    const events: Node[] = []
    const unknownCalls: Node[] = []
    const deadlines: Node[] = []
    const reads = new Set(ops.flatMap((op) => (op.kind === 'get' ? [op.value] : [])))
    ops.forEach((op, index) => {
      if (op.responseTime !== Infinity) {
        const ret = makeNode(index, op, -1)
        const read = op.kind === 'get' ? makeNode(index, op, -1) : null
        if (read !== null) deadlines.push(read)
        events.push(makeNode(index, op, this.remaining++, ret, read), ret)
      } else if (couldBeObserved(op, reads)) {
        unknownCalls.push(makeNode(index, op, unknownCalls.length))
      }
    })
    // Calls sort before returns at equal times: intervals are closed.
    events.sort((a, b) => a.time - b.time || b.bit - a.bit || a.index - b.index)
    this.main = linkAfterHead(events)
    this.pending = linkAfterHead(unknownCalls)
    this.reads = linkAfterHead(deadlines.sort((a, b) => a.time - b.time))
    this.completed = new Int32Array(Math.ceil(this.remaining / 32))
    this.unknown = new Int32Array(Math.ceil(unknownCalls.length / 32))
    this.cache = new StateCache(this.completed, this.unknown)
  }

  /**
   * Porcupine's loop, in two phases per search node: first the completed ops
   * whose calls precede the earliest pending return, then the unknown-outcome
   * ops invoked by then. Trying completed ops first memoizes states without an
   * optional op before those with it, which lets subsumption prune the latter.
   * Returns the longest prefix on a violation.
   */
  run(): 'ok' | 'exhausted' | number[] {
    let cursor: Node | null = null
    let candidate: Node | null = null
    let limit = 0
    let arrived = true
    for (;;) {
      if (this.remaining === 0) return 'ok'
      if (this.cache.size > this.maxStates) return 'exhausted'
      if (arrived) {
        const forced = this.forceGet()
        arrived = forced === 'forced'
        cursor = forced === 'none' ? this.main.next : null // a dead end leaves both null: backtrack
        candidate = null
      } else if (cursor !== null) {
        if (cursor.bit < 0) {
          // An unlinearized op has returned here: nothing invoked later may go first.
          limit = cursor.time
          candidate = this.pending.next
          cursor = null
        } else if (this.tryLinearize(cursor, limit, false)) arrived = true
        else cursor = cursor.next
      } else if (candidate !== null && candidate.time <= limit) {
        if (this.tryLinearize(candidate, limit, false)) arrived = true
        else candidate = candidate.next
      } else {
        const frame = this.backtrack()
        if (frame === undefined) return this.longest
        if (frame.node.match !== null) {
          cursor = frame.node.next
        } else {
          candidate = frame.node.next
          limit = frame.limit
        }
      }
    }
  }

  /**
   * A callable get matching the register can be linearized at once without
   * loss of generality: it changes nothing, and no pending op must precede it.
   * Committing to it instead of branching keeps concurrent histories tractable.
   */
  private forceGet(): 'forced' | 'none' | 'dead' {
    for (let node = this.main.next; node !== null && node.bit >= 0; node = node.next) {
      if (node.op.kind === 'get' && node.op.value === this.value) {
        return this.tryLinearize(node, 0, true) ? 'forced' : 'dead'
      }
    }
    return 'none'
  }

  private tryLinearize(node: Node, limit: number, forced: boolean): boolean {
    const { kind } = node.op
    const next = step(this.value, node.op)
    if (next === null || (kind !== 'get' && this.cannotReachNextRead(node, next))) return false
    // An unknown write that a put overwrites unread is pointless: the sibling
    // branch that skips it reaches the same state with less. This is what
    // stops pending unknown writes from being tried in every combination.
    if (kind === 'put' && this.unread) return false
    const unread = kind !== 'get' && (this.unread || node.match === null)
    const appended = (Math.imul(this.valueHash, node.power) + node.hash) | 0
    const nextHash = kind === 'get' ? this.valueHash : kind === 'put' ? node.hash : appended
    const words = node.match === null ? this.words : Math.max(this.words, (node.bit >>> 5) + 1)
    this.toggle(node)
    lift(node)
    // Bits follow invocation order, so the first call left is the lowest unset bit.
    const lo = (this.main.next?.bit ?? 32 * this.completed.length) >>> 5
    const key = (this.hash + Math.imul(nextHash, 0x9e3779b1)) | 0
    if (!this.cache.add(key, Number(unread), lo, Math.max(0, words - lo), next)) {
      restore(node)
      this.toggle(node)
      return false
    }
    const { value, valueHash, unread: wasUnread } = this
    this.stack.push({ node, value, valueHash, words: this.words, limit, forced, unread: wasUnread })
    this.value = next
    this.valueHash = nextHash
    this.words = words
    this.unread = unread
    if (node.match !== null) this.remaining--
    return true
  }

  /**
   * Lookahead: until the read with the earliest deadline, the register only
   * grows by appends unless a put invoked by that deadline intervenes. So a
   * value that is not a prefix of what that read returns is a dead end unless
   * such a put's value is. Without this, the search tries every order of
   * concurrent appends. The scan is capped; giving up on pruning is safe.
   */
  private cannotReachNextRead(node: Node, next: string): boolean {
    const read = this.reads.next
    if (read === null || read.op.value.startsWith(next)) return false
    const left = scanForReset(this.main, read, node, 64)
    return left > 0 && scanForReset(this.pending, read, node, left) > 0
  }

  /** Undoes choices up to the most recent one with untried alternatives. */
  private backtrack(): Frame | undefined {
    // Snapshot only when retreating from a new maximum: copying on every
    // advance would make a long linearizable history quadratic.
    if (this.stack.length > this.longest.length) this.longest = this.stack.map((f) => f.node.index)
    for (;;) {
      const frame = this.stack.pop()
      if (frame === undefined) return undefined
      restore(frame.node)
      this.toggle(frame.node)
      this.value = frame.value
      this.valueHash = frame.valueHash
      this.words = frame.words
      this.unread = frame.unread
      if (frame.node.match !== null) this.remaining++
      if (!frame.forced) return frame
    }
  }

  private toggle(node: Node): void {
    const bits = node.match !== null ? this.completed : this.unknown
    bits[node.bit >>> 5] = (bits[node.bit >>> 5] ?? 0) ^ (1 << (node.bit & 31))
    if (node.match !== null) this.hash ^= zobrist(node.bit)
  }
}
