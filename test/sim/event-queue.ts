// Virtual time: a binary heap of events ordered by (time, insertion order),
// so equal-time events run in a reproducible order.

export interface SimEvent {
  time: number
  seq: number
  run: () => void
}

export class EventQueue {
  private heap: SimEvent[] = []
  private seq = 0
  now = 0

  get size(): number {
    return this.heap.length
  }

  schedule(delayMs: number, run: () => void): void {
    this.push({ time: this.now + Math.max(0, delayMs), seq: this.seq++, run })
  }

  /** Run events until virtual time `until`; returns how many ran. */
  runUntil(until: number, afterEach?: () => void): number {
    let count = 0
    for (;;) {
      const top = this.heap[0]
      if (top === undefined || top.time > until) break
      this.pop()
      this.now = top.time
      top.run()
      afterEach?.()
      count++
    }
    this.now = Math.max(this.now, until)
    return count
  }

  private push(event: SimEvent): void {
    const heap = this.heap
    heap.push(event)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(heap[i]!, heap[parent]!)) break
      ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
      i = parent
    }
  }

  private pop(): void {
    const heap = this.heap
    const last = heap.pop()!
    if (heap.length === 0) return
    heap[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let smallest = i
      if (l < heap.length && before(heap[l]!, heap[smallest]!)) smallest = l
      if (r < heap.length && before(heap[r]!, heap[smallest]!)) smallest = r
      if (smallest === i) return
      ;[heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!]
      i = smallest
    }
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq)
}
