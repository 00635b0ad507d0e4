// The history of a fault-test round: every API call the workload made (when it
// was invoked and answered, through which peer, what it asked, what came back)
// and every fault the nemesis injected, as JSON lines, so a failing round can
// be read after the fact and re-checked without running it again.
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs'

/** What a client learned from one call. */
export type Outcome =
  /** 2xx: the operation took effect (a write) or returned this (a read). */
  | 'ok'
  /** 4xx: refused before anything was proposed, so it certainly did not take effect. */
  | 'fail'
  /** A timeout, a reset connection or a 5xx: it may or may not have taken effect (Jepsen's :info). */
  | 'info'

export type ObjectKind = 'rc' | 'pod' | 'svc'
export type OperationKind = 'create' | 'update' | 'delete' | 'read'

export interface OperationRecord {
  type: 'op'
  id: number
  /** The client (worker) that made the call; each client has at most one call in flight. */
  client: number
  peer: string
  kind: OperationKind
  object: ObjectKind
  name: string
  /** Milliseconds since the round started (monotonic clock). */
  invokeMs: number
  /** Null when the call never came back before the round ended. */
  completeMs: number | null
  outcome: Outcome
  /** HTTP status, 0 when none came. */
  status: number
  /**
   * The register value the call wrote (create/update) or read (null: absent):
   * the object's jepsen/value annotation plus, for an RC, `|` and its spec.replicas.
   */
  value?: string | null
  resourceVersion?: string
  request: { method: string; path: string; body?: unknown }
  error?: string
}

export interface NemesisRecord {
  type: 'nemesis'
  /** Milliseconds since the round started. */
  atMs: number
  /** start or stop of a fault */
  phase: 'start' | 'stop'
  fault: string
  /** The hosts (peer names) the fault affects: they are "impaired" between start and stop. */
  peers: string[]
  detail?: string
}

/** One observation of pod processes running on a host (see copies.ts). */
export interface CopiesRecord {
  type: 'copies'
  atMs: number
  /**
   * Processes running where the store does not bind their pod: its uid's node
   * (null: the pod is gone), and the node of a newer pod of the same name, if
   * any (a second live copy of that name).
   */
  stale: { uid: string; name: string; peer: string; pid: number; boundTo: string | null; sameNameOn: string | null }[]
}

export type HistoryRecord = OperationRecord | NemesisRecord | CopiesRecord

/** Lines still in memory before the file stream takes them; past this we wait for the stream to drain. */
const pendingWritesMax = 10_000

export class HistoryWriter {
  readonly records: HistoryRecord[] = []
  private readonly stream: WriteStream
  private readonly startedAt = performance.now()

  constructor(readonly path: string) {
    this.stream = createWriteStream(path, { flags: 'w' })
  }

  /** Milliseconds since the round started. */
  now(): number {
    return Math.round((performance.now() - this.startedAt) * 10) / 10
  }

  add(record: HistoryRecord): void {
    this.records.push(record)
    if (this.closing !== null) return
    this.stream.write(`${JSON.stringify(record)}\n`)
  }

  /** Waits if the file has fallen far behind (it never should at our op rates). */
  async drainIfBehind(): Promise<void> {
    if (this.stream.writableLength < pendingWritesMax * 256) return
    await new Promise<void>((resolve) => this.stream.once('drain', () => resolve()))
  }

  private closing: Promise<void> | null = null

  close(): Promise<void> {
    this.closing ??= new Promise((resolve) => this.stream.end(() => resolve()))
    return this.closing
  }
}

export function readHistory(path: string): HistoryRecord[] {
  return readFileSync(path, 'utf8').split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as HistoryRecord)
}

export function operations(records: readonly HistoryRecord[]): OperationRecord[] {
  return records.filter((r): r is OperationRecord => r.type === 'op')
}

export function nemesisEvents(records: readonly HistoryRecord[]): NemesisRecord[] {
  return records.filter((r): r is NemesisRecord => r.type === 'nemesis')
}

/** Per peer, the intervals [start, stop] during which some fault affected it (open faults end at `endMs`). */
export function impairedIntervals(records: readonly HistoryRecord[], endMs: number): Map<string, [number, number][]> {
  const open = new Map<string, number[]>()
  const result = new Map<string, [number, number][]>()
  const key = (e: NemesisRecord, peer: string): string => `${e.fault}\u0000${peer}`
  for (const event of nemesisEvents(records)) {
    for (const peer of event.peers) {
      const k = key(event, peer)
      if (event.phase === 'start') {
        open.set(k, [...(open.get(k) ?? []), event.atMs])
        continue
      }
      const starts = open.get(k) ?? []
      const start = starts.shift()
      if (start === undefined) continue
      result.set(peer, [...(result.get(peer) ?? []), [start, event.atMs]])
    }
  }
  for (const [k, starts] of open) {
    const peer = k.split('\u0000')[1]!
    for (const start of starts) result.set(peer, [...(result.get(peer) ?? []), [start, endMs]])
  }
  return result
}
