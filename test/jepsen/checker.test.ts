// The fault test's checker on hand-made histories: it must catch a lost
// write, a non-linearizable read and a stale pod copy, and pass valid
// concurrent histories (a checker that cannot fail would prove nothing).
import { describe, expect, it } from 'vitest'
import { checkHistory, lostWrites, staleCopyRuns } from './checker.js'
import type { CopiesRecord, HistoryRecord, NemesisRecord, OperationRecord } from './history.js'
import { checkRegister, type RegisterOp } from './linearizability.js'

let nextId = 0
const finalClient = 1000

function op(client: number, kind: OperationRecord['kind'], invokeMs: number, completeMs: number | null, value: string | null | undefined, outcome: OperationRecord['outcome'] = 'ok', name = 'rc-0'): OperationRecord {
  return {
    type: 'op', id: nextId++, client, peer: `j${(client % 5) + 1}`, kind, object: 'rc', name, invokeMs, completeMs, outcome,
    status: outcome === 'ok' ? 200 : outcome === 'fail' ? 409 : 0, request: { method: 'GET', path: '/' },
    ...(value === undefined ? {} : { value }),
  }
}

const reg = (id: number, kind: RegisterOp['kind'], value: string | null, invokeMs: number, completeMs: number): RegisterOp => ({ id, kind, value, invokeMs, completeMs })
const check = (records: HistoryRecord[]) => checkHistory(records, undefined, { staleBoundMs: 8000, finalClientMin: finalClient })

describe('lost writes', () => {
  it('catches an acknowledged update that the final state does not show', () => {
    const history = [
      op(0, 'create', 0, 10, 'a|1'),
      op(1, 'update', 20, 30, 'b|2'),
      // Every peer ends with the value the update replaced.
      op(finalClient, 'read', 100, 110, 'a|1'),
      op(finalClient + 1, 'read', 100, 110, 'a|1'),
    ]
    const { lost } = lostWrites(history, finalClient)
    expect(lost.map((l) => l.write.value)).toEqual(['b|2'])
    const result = check(history)
    expect(result.ok).toBe(false)
    expect(result.summary).toContain('lost writes: 1')
  })

  it('catches an acknowledged create that is absent at the end with no delete ever sent', () => {
    const history = [op(0, 'create', 0, 10, 'a|1'), op(finalClient, 'read', 100, 110, null)]
    expect(lostWrites(history, finalClient).lost).toHaveLength(1)
  })

  it('accepts a final value from a write whose outcome was unknown, even after later acknowledged writes', () => {
    const history = [
      op(0, 'create', 0, 10, 'a|1'),
      op(1, 'update', 15, null, 'c|0', 'info'),
      op(2, 'update', 20, 30, 'b|2'),
      op(finalClient, 'read', 100, 110, 'c|0'),
    ]
    expect(lostWrites(history, finalClient).lost).toEqual([])
    expect(check(history).ok).toBe(true)
  })

  it('reports peers that disagree at the end', () => {
    const history = [op(0, 'create', 0, 10, 'a|1'), op(finalClient, 'read', 100, 110, 'a|1'), op(finalClient + 1, 'read', 100, 110, null)]
    expect(check(history).divergentFinals).toHaveLength(1)
    expect(check(history).ok).toBe(false)
  })
})

describe('linearizability of one object', () => {
  it('passes a valid concurrent history', () => {
    const verdict = checkRegister([
      reg(1, 'create', 'a', 0, 10),
      reg(2, 'update', 'b', 5, 40),
      reg(3, 'read', 'a', 12, 20), // before the concurrent update took effect
      reg(4, 'read', 'b', 30, 50), // overlaps the update: may see it
      reg(5, 'delete', null, 60, 70),
      reg(6, 'read', null, 75, 80),
      reg(7, 'create', 'c', 90, Infinity), // unknown outcome, never seen: may never have happened
      reg(8, 'read', null, 95, 99),
    ])
    expect(verdict.ok).toBe(true)
  })

  it('catches a stale read: a value read after a later write was acknowledged', () => {
    const verdict = checkRegister([reg(1, 'create', 'a', 0, 10), reg(2, 'update', 'b', 20, 30), reg(3, 'read', 'a', 40, 50)])
    expect(verdict.ok).toBe(false)
    if (verdict.ok === false) expect(verdict.reason).toContain('read -> "a"')
  })

  it('catches two reads that order concurrent writes both ways', () => {
    const verdict = checkRegister([
      reg(1, 'create', 'a', 0, 10),
      reg(2, 'update', 'b', 20, 100),
      reg(3, 'update', 'c', 20, 100),
      reg(4, 'read', 'b', 30, 40),
      reg(5, 'read', 'c', 50, 60),
      reg(6, 'read', 'b', 70, 80),
    ])
    expect(verdict.ok).toBe(false)
  })

  it('catches an object that is read before its only create was invoked', () => {
    expect(checkRegister([reg(1, 'read', 'a', 0, 5), reg(2, 'create', 'a', 10, 20)]).ok).toBe(false)
  })

  it('lets an unknown-outcome write explain a read at any point after its invocation', () => {
    const verdict = checkRegister([reg(1, 'create', 'a', 0, 10), reg(2, 'update', 'x', 15, Infinity), reg(3, 'read', 'a', 20, 30), reg(4, 'read', 'x', 500, 510)])
    expect(verdict.ok).toBe(true)
  })

  it('says unknown rather than searching past its budget', () => {
    // Many concurrent unknown writes and a read no order can explain: the search must give up, not hang.
    const ops = [reg(0, 'create', 'a', 0, 1), ...Array.from({ length: 40 }, (_, k) => reg(k + 1, 'update', `u${k}`, 2, Infinity)), reg(99, 'read', 'never-written', 3, 4)]
    const verdict = checkRegister(ops, { maxStates: 1000 })
    expect(verdict.ok === 'unknown' || verdict.ok === false).toBe(true)
  })

  it('flags the whole round when one object is not linearizable', () => {
    const history = [op(0, 'create', 0, 10, 'a|1'), op(1, 'update', 20, 30, 'b|1'), op(2, 'read', 40, 50, 'a|1'), op(finalClient, 'read', 100, 110, 'b|1')]
    const result = check(history)
    expect(result.linearizability.violations).toHaveLength(1)
    expect(result.ok).toBe(false)
  })
})

describe('stale pod copies', () => {
  const sample = (atMs: number, peer: string | null): CopiesRecord => ({ type: 'copies', atMs, stale: peer === null ? [] : [{ uid: 'u1', name: 'pod-0', peer, pid: 42, boundTo: null, sameNameOn: 'j2' }] })
  const fault = (phase: 'start' | 'stop', atMs: number): NemesisRecord => ({ type: 'nemesis', atMs, phase, fault: 'partition-minority', peers: ['j1'] })

  it('excuses a copy while its peer is cut off, and counts from when it is back', () => {
    const records: HistoryRecord[] = [fault('start', 0), ...[1000, 5000, 20_000, 24_000].map((t) => sample(t, 'j1')), fault('stop', 21_000), sample(25_000, null)]
    const copies = staleCopyRuns(records, 8000)
    expect(copies.staleCopies).toBe(1)
    expect(copies.longestStaleMs).toBe(23_000)
    expect(copies.violations).toEqual([])
    expect(copies.duplicateNames).toBe(4)
  })

  it('catches a copy that keeps running well after its peer is back in touch', () => {
    const records: HistoryRecord[] = [fault('start', 0), fault('stop', 2000), ...[3000, 6000, 9000, 12_000, 15_000].map((t) => sample(t, 'j1'))]
    const copies = staleCopyRuns(records, 8000)
    expect(copies.violations).toHaveLength(1)
    expect(copies.violations[0]!.unexcusedMs).toBe(12_000)
    expect(check(records).ok).toBe(false)
  })
})

describe('stale rejections', () => {
  it('counts a 404 on an update of an object an acknowledged write made, and fails the round only when strict', () => {
    const history = [op(0, 'create', 0, 10, 'a|1'), { ...op(1, 'update', 20, 30, 'b|1', 'fail'), status: 404 }, op(finalClient, 'read', 100, 110, 'a|1')]
    expect(check(history).staleRejections.map((r) => r.id)).toEqual([history[1]!.id])
    expect(check(history).ok).toBe(true)
    expect(checkHistory(history, undefined, { staleBoundMs: 8000, finalClientMin: finalClient, strictRejections: true }).ok).toBe(false)
  })

  it('does not count a 404 that a concurrent delete explains', () => {
    const history = [op(0, 'create', 0, 10, 'a|1'), op(2, 'delete', 15, null, null, 'info'), { ...op(1, 'update', 20, 30, 'b|1', 'fail'), status: 404 }]
    expect(check(history).staleRejections).toEqual([])
  })
})
