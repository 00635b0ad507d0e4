// The checks run on a round's history (pure: hand-made histories test them):
// (1) no acknowledged write is lost, (2) every object's history is
// linearizable, (4) no pod keeps running where the store no longer binds it
// for longer than the eviction timeout plus detection time after its host is
// back in touch. (3), convergence, is measured on the live cluster
// (convergence.ts) and reported here with the rest.
import { impairedIntervals, operations, type CopiesRecord, type HistoryRecord, type OperationRecord } from './history.js'
import { checkRegister, describeOp, type RegisterOp, type RegisterVerdict } from './linearizability.js'
import type { ConvergenceResult } from './convergence.js'

export interface LostWrite {
  object: string
  /** The acknowledged write that the final state does not reflect. */
  write: OperationRecord
  /** What every peer holds at the end (null: absent). */
  finalValue: string | null
}

export interface StaleCopy {
  uid: string
  name: string
  peer: string
  /** How long it ran stale in all, and how much of that its peer was not impaired (dead, paused, cut off, lossy, delayed) nor just back. */
  staleMs: number
  unexcusedMs: number
}

export interface CheckResult {
  ok: boolean
  /**
   * Updates and deletes answered 404 although the object certainly existed
   * (an acknowledged write made it, and no delete could have come between):
   * a peer refusing from a replica that trails the leader. Failed calls are
   * not part of the linearizability check (as in Knossos), so these are
   * counted apart; with `strictRejections` they fail the round.
   */
  staleRejections: OperationRecord[]
  summary: string
  ops: { total: number; ok: number; fail: number; info: number; reads: number; writes: number }
  lostWrites: LostWrite[]
  /** Peers disagreeing on an object at the end (read with ?linearizable=true from each). */
  divergentFinals: string[]
  linearizability: { objects: number; valid: number; unknown: string[]; violations: { object: string; reason: string }[] }
  copies: { samples: number; staleCopies: number; longestStaleMs: number; duplicateNames: number; violations: StaleCopy[]; boundMs: number }
  convergence: ConvergenceResult | undefined
}

export interface CheckOptions {
  /** Eviction timeout plus detection time: the longest a stale copy may run once its peer is back in touch. */
  staleBoundMs: number
  /** Client ids of the final reads (one per peer, after healing). */
  finalClientMin: number
  maxStatesPerObject?: number
  /** Count stale 404s (see CheckResult.staleRejections) as failures. */
  strictRejections?: boolean
}

const keyOf = (op: OperationRecord): string => `${op.object}/${op.name}`

/** The register ops of each object: failed calls dropped, unknown outcomes open-ended, reads only when answered. */
export function registerHistories(ops: readonly OperationRecord[]): Map<string, RegisterOp[]> {
  const byObject = new Map<string, RegisterOp[]>()
  for (const op of ops) {
    if (op.outcome === 'fail') continue
    if (op.kind === 'read' && op.outcome !== 'ok') continue
    const value = op.kind === 'delete' ? null : (op.value ?? null)
    const registerOp: RegisterOp = { id: op.id, kind: op.kind, value, invokeMs: op.invokeMs, completeMs: op.outcome === 'ok' && op.completeMs !== null ? op.completeMs : Infinity }
    const list = byObject.get(keyOf(op)) ?? []
    list.push(registerOp)
    byObject.set(keyOf(op), list)
  }
  return byObject
}

/**
 * (1) For each object, the final value (agreed by every peer's final read)
 * must come from a write that no acknowledged write followed: if an
 * acknowledged write began after the final value's write was acknowledged,
 * that later write was lost.
 */
export function lostWrites(ops: readonly OperationRecord[], finalClientMin: number): { lost: LostWrite[]; divergent: string[] } {
  const lost: LostWrite[] = []
  const divergent: string[] = []
  const finals = new Map<string, Set<string | null>>()
  for (const op of ops) if (op.client >= finalClientMin && op.kind === 'read' && op.outcome === 'ok') finals.set(keyOf(op), (finals.get(keyOf(op)) ?? new Set()).add(op.value ?? null))
  for (const [object, values] of finals) {
    if (values.size !== 1) {
      divergent.push(`${object}: ${[...values].map((v) => v ?? 'absent').join(' vs ')}`)
      continue
    }
    const finalValue = [...values][0] ?? null
    const writes = ops.filter((op) => keyOf(op) === object && op.kind !== 'read' && op.client < finalClientMin && op.outcome !== 'fail')
    const acknowledged = writes.filter((w) => w.outcome === 'ok')
    const producedFinal = (w: OperationRecord): boolean => (finalValue === null ? w.kind === 'delete' : w.kind !== 'delete' && w.value === finalValue)
    const doneAt = (w: OperationRecord): number => (w.outcome === 'ok' && w.completeMs !== null ? w.completeMs : Infinity)
    // The initial absence is a write done at -Infinity.
    const sources = [...writes.filter(producedFinal).map(doneAt), ...(finalValue === null ? [-Infinity] : [])]
    if (sources.length === 0) {
      for (const w of acknowledged) lost.push({ object, write: w, finalValue })
      continue
    }
    const latestSource = Math.max(...sources)
    for (const w of acknowledged) if (w.invokeMs > latestSource && !producedFinal(w)) lost.push({ object, write: w, finalValue })
  }
  return { lost, divergent }
}

/** 404s on update or delete of an object that an acknowledged write made and no delete could have removed meanwhile. */
export function staleRejections(ops: readonly OperationRecord[]): OperationRecord[] {
  const found: OperationRecord[] = []
  for (const op of ops) {
    if (op.outcome !== 'fail' || op.status !== 404 || (op.kind !== 'update' && op.kind !== 'delete') || op.completeMs === null) continue
    const same = ops.filter((o) => keyOf(o) === keyOf(op) && o.id !== op.id)
    const made = same.filter((o) => (o.kind === 'create' || o.kind === 'update') && o.outcome === 'ok' && o.completeMs !== null && o.completeMs < op.invokeMs)
    if (made.length === 0) continue
    const last = made.reduce((a, b) => (a.completeMs! >= b.completeMs! ? a : b))
    const couldRemove = same.some((o) => o.kind === 'delete' && o.outcome !== 'fail' && o.invokeMs < op.completeMs! && (o.outcome === 'info' || o.completeMs === null || o.completeMs > last.invokeMs))
    if (!couldRemove) found.push(op)
  }
  return found
}

/** (4) Runs of consecutive samples in which a pod's process was stale on a peer, less the time its peer was impaired. */
export function staleCopyRuns(records: readonly HistoryRecord[], boundMs: number): CheckResult['copies'] {
  const samples = records.filter((r): r is CopiesRecord => r.type === 'copies').sort((a, b) => a.atMs - b.atMs)
  const endMs = samples.at(-1)?.atMs ?? 0
  const impaired = impairedIntervals(records, endMs)
  const open = new Map<string, { uid: string; name: string; peer: string; since: number; last: number }>()
  const runs: StaleCopy[] = []
  let duplicateNames = 0
  const close = (run: { uid: string; name: string; peer: string; since: number; last: number }): void => {
    // The clock restarts when the peer's last impairment before the run's end is over.
    const back = Math.max(run.since, ...(impaired.get(run.peer) ?? []).filter(([start]) => start <= run.last).map(([, stop]) => stop))
    runs.push({ uid: run.uid, name: run.name, peer: run.peer, staleMs: Math.round(run.last - run.since), unexcusedMs: Math.round(Math.max(0, run.last - back)) })
  }
  for (const sample of samples) {
    const current = new Set<string>()
    for (const copy of sample.stale) {
      const key = `${copy.uid}@${copy.peer}`
      current.add(key)
      const run = open.get(key)
      if (run === undefined) open.set(key, { uid: copy.uid, name: copy.name, peer: copy.peer, since: sample.atMs, last: sample.atMs })
      else run.last = sample.atMs
      // Two live copies of one pod: its uid bound elsewhere, or a newer pod of the same name running elsewhere.
      if ((copy.boundTo ?? copy.sameNameOn) !== null) duplicateNames++
    }
    for (const [key, run] of open) {
      if (current.has(key)) continue
      close(run)
      open.delete(key)
    }
  }
  for (const run of open.values()) close(run)
  return {
    samples: samples.length,
    staleCopies: runs.length,
    longestStaleMs: Math.max(0, ...runs.map((r) => r.staleMs)),
    duplicateNames,
    violations: runs.filter((r) => r.unexcusedMs > boundMs),
    boundMs,
  }
}

export function checkHistory(records: readonly HistoryRecord[], convergence: ConvergenceResult | undefined, options: CheckOptions): CheckResult {
  const ops = operations(records)
  const counts = { total: ops.length, ok: 0, fail: 0, info: 0, reads: 0, writes: 0 }
  for (const op of ops) {
    counts[op.outcome]++
    if (op.kind === 'read') counts.reads++
    else counts.writes++
  }
  const { lost, divergent } = lostWrites(ops, options.finalClientMin)
  const linearizability: CheckResult['linearizability'] = { objects: 0, valid: 0, unknown: [], violations: [] }
  for (const [object, history] of registerHistories(ops)) {
    linearizability.objects++
    const verdict: RegisterVerdict = checkRegister(history, options.maxStatesPerObject === undefined ? {} : { maxStates: options.maxStatesPerObject })
    if (verdict.ok === true) linearizability.valid++
    else if (verdict.ok === 'unknown') linearizability.unknown.push(`${object}: ${verdict.reason}`)
    else linearizability.violations.push({ object, reason: verdict.reason })
  }
  const copies = staleCopyRuns(records, options.staleBoundMs)
  const rejections = staleRejections(ops)
  const ok = (options.strictRejections !== true || rejections.length === 0) && lost.length === 0 && divergent.length === 0 && linearizability.violations.length === 0 && copies.violations.length === 0 && (convergence?.ok ?? true)
  return { ok, summary: summarize(counts, lost, divergent, linearizability, copies, convergence, rejections), ops: counts, staleRejections: rejections, lostWrites: lost, divergentFinals: divergent, linearizability, copies, convergence }
}

function summarize(counts: CheckResult['ops'], lost: LostWrite[], divergent: string[], lin: CheckResult['linearizability'], copies: CheckResult['copies'], convergence: ConvergenceResult | undefined, rejections: OperationRecord[]): string {
  const lines = [
    `operations: ${counts.total} (${counts.writes} writes, ${counts.reads} reads): ${counts.ok} ok, ${counts.fail} failed, ${counts.info} indeterminate`,
    `lost writes: ${lost.length}${lost.slice(0, 5).map((l) => `\n  ${l.object}: #${l.write.id} ${l.write.kind} ${l.write.value ?? ''} acknowledged at ${l.write.completeMs} by ${l.write.peer}, final ${l.finalValue ?? 'absent'}`).join('')}`,
    `final reads disagree: ${divergent.length}${divergent.slice(0, 5).map((d) => `\n  ${d}`).join('')}`,
    `linearizable: ${lin.valid}/${lin.objects} objects, unknown ${lin.unknown.length}, violations ${lin.violations.length}${lin.violations.slice(0, 3).map((v) => `\n  ${v.object}: ${v.reason}`).join('')}${lin.unknown.map((u) => `\n  unknown ${u}`).join('')}`,
    `stale pod copies: ${copies.staleCopies} runs over ${copies.samples} samples, longest ${copies.longestStaleMs} ms, ${copies.duplicateNames} duplicate observations, ${copies.violations.length} beyond ${copies.boundMs} ms after their peer was back${copies.violations.slice(0, 5).map((v) => `\n  ${v.name} (${v.uid}) on ${v.peer}: stale ${v.staleMs} ms, ${v.unexcusedMs} ms after its peer was back`).join('')}`,
    `stale 404s (update/delete refused by a lagging replica): ${rejections.length}${rejections.slice(0, 3).map((r) => `\n  #${r.id} ${r.kind} ${r.object}/${r.name} via ${r.peer} at [${r.invokeMs}, ${r.completeMs}]`).join('')}`,
    convergence === undefined ? 'convergence: not measured' : convergence.ok ? `converged after ${convergence.elapsedMs} ms (${convergence.polls} polls)` : `NOT converged after ${convergence.elapsedMs} ms: ${convergence.problems.slice(0, 8).join('; ')}`,
  ]
  return lines.join('\n')
}

export { describeOp }
