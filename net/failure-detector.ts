// SWIM-style per-peer membership state, kept free of networking so the
// transitions can be read (and tested) on their own: a fresh report makes a
// peer alive, silence makes it suspect, a failed probe round makes it dead.
// The caller runs the probes; this module only says when one is due and
// records how it went.

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left'

/** What the detector needs from a report to order it against earlier ones. */
export interface VersionedReport {
  peerId: string
  /** Chosen by the sender at start-up, so a restarted peer's first seq is not taken for a replay. */
  incarnation: number
  /** Increases with every report within one incarnation. */
  seq: number
}

export interface MemberSnapshot<R> {
  peerId: string
  state: MemberState
  /** The last accepted report, or null if the peer never reported. */
  health: R | null
  /** Age of the last accepted report, or null if the peer never reported. */
  lastHeardMs: number | null
  /** How long the peer has been in its current state. */
  stateSinceMs: number
}

export interface FailureDetectorOptions<R> {
  /** No report for this long makes an alive peer suspect. */
  suspectAfterMs: number
  /** After a probe of a suspect succeeds, wait this long before the next round. */
  reprobeIntervalMs: number
  /** Reports from peers beyond this many are ignored, so a noisy network cannot grow the table without end. */
  maxMembers: number
  now: () => number
  onChange: (snapshot: MemberSnapshot<R>, previous: MemberState | null) => void
}

interface MemberRecord<R> {
  peerId: string
  state: MemberState
  health: R | null
  heardAtMs: number | null
  stateAtMs: number
  /** When the next probe round should start; null while none is wanted. */
  probeDueAtMs: number | null
  /** The connection closed since the last round started: the next round is urgent. */
  connectionLost: boolean
  /** True while a probe round is in flight: at most one per peer. */
  probing: boolean
  /** A direct report arrived since the current round started: newer evidence than the round's outcome. */
  heardDuringProbe: boolean
  /** An indirect report not yet believed (see `heard`), and when it arrived. */
  pending: R | null
  pendingAtMs: number
  /** The pending report predates the round in flight, so that round's answer can confirm it. */
  pendingBeforeProbe: boolean
  /** The incarnation that left; only a later one (a restart) brings the peer back. Null if it never reported. */
  leftIncarnation: number | null
}

export class FailureDetector<R extends VersionedReport> {
  private readonly records = new Map<string, MemberRecord<R>>()
  private readonly options: FailureDetectorOptions<R>

  constructor(options: FailureDetectorOptions<R>) {
    this.options = options
  }

  /**
   * Apply a report; returns false if it was stale, a duplicate, or over the
   * member cap. `direct` says it came from the sender over a connection still
   * open. Any other report (forwarded by another peer, or processed after the
   * connection closed) may have been sent before its sender died, so it cannot
   * by itself overturn a suspicion, a verdict or a probe in flight: it is held
   * until a probe confirms the sender is reachable.
   */
  heard(report: R, direct = true): boolean {
    const t = this.options.now()
    let record = this.records.get(report.peerId)
    if (record === undefined) {
      if (this.records.size >= this.options.maxMembers) return false
      record = this.create(report.peerId, 'alive', t)
      this.apply(record, report, t)
      this.options.onChange(this.snapshot(record, t), null)
      return true
    }
    if (!isNewer(record, report)) return false
    if (!direct && (record.state !== 'alive' || record.probing || record.probeDueAtMs !== null)) {
      record.pending = report
      record.pendingAtMs = t
      if (!record.probing) record.probeDueAtMs = t
      return true
    }
    this.apply(record, report, t)
    if (record.state !== 'alive') this.transition(record, 'alive', t)
    return true
  }

  /** Start tracking peers learned elsewhere: suspect, and probed at once, until they report. */
  track(peerId: string): void {
    if (this.records.has(peerId)) return
    const t = this.options.now()
    const record = this.create(peerId, 'suspect', t)
    record.probeDueAtMs = t
    this.options.onChange(this.snapshot(record, t), null)
  }

  /** A graceful departure: never probed again; only a restarted incarnation comes back. */
  markLeft(peerId: string): void {
    const t = this.options.now()
    const record = this.records.get(peerId)
    if (record === undefined) {
      const created = this.create(peerId, 'left', t)
      this.options.onChange(this.snapshot(created, t), null)
      return
    }
    record.leftIncarnation = (record.pending ?? record.health)?.incarnation ?? null
    record.pending = null
    record.probeDueAtMs = null
    if (record.state !== 'left') this.transition(record, 'left', t)
  }

  /** Drop a peer entirely (for example once it is removed from the cluster). */
  forget(peerId: string): boolean {
    return this.records.delete(peerId)
  }

  /** The connection closed: probe now rather than waiting out `suspectAfterMs`. */
  connectionLost(peerId: string): void {
    const record = this.records.get(peerId)
    if (record === undefined || (record.state !== 'alive' && record.state !== 'suspect')) return
    record.probeDueAtMs = this.options.now()
    record.connectionLost = true
  }

  /** Advance the silence timers; returns the peers whose probe round should start now. */
  tick(): string[] {
    const t = this.options.now()
    const due: string[] = []
    for (const record of this.records.values()) {
      if (record.state === 'alive' && record.heardAtMs !== null && t - record.heardAtMs >= this.options.suspectAfterMs) {
        this.transition(record, 'suspect', t)
        record.probeDueAtMs = t
      }
      if (isProbeable(record) && !record.probing && record.probeDueAtMs !== null && record.probeDueAtMs <= t) {
        due.push(record.peerId)
      }
    }
    return due
  }

  /** Mark the round in flight; true if it is urgent (the connection closed), so worth asking helpers at once. */
  probeStarted(peerId: string): boolean {
    const record = this.records.get(peerId)
    if (record === undefined) return false
    const urgent = record.connectionLost
    record.connectionLost = false
    record.probing = true
    record.heardDuringProbe = false
    record.pendingBeforeProbe = record.pending !== null
    record.probeDueAtMs = null
    return urgent
  }

  /** The direct ping failed: an alive peer becomes suspect while the indirect probes run. */
  directProbeFailed(peerId: string): void {
    const record = this.records.get(peerId)
    if (record === undefined || record.state !== 'alive' || record.heardDuringProbe) return
    this.transition(record, 'suspect', this.options.now())
  }

  /** The round ended: reachable (directly or through a helper) or not. */
  probeFinished(peerId: string, reachable: boolean): void {
    const record = this.records.get(peerId)
    if (record === undefined) return
    record.probing = false
    if (record.heardDuringProbe) return // the peer spoke to us directly meanwhile: it is alive
    const t = this.options.now()
    if (!reachable) {
      record.pending = null // sent before it died, or by a peer we cannot reach: not proof of life
      record.probeDueAtMs = null
      if (record.state === 'alive' || record.state === 'suspect') this.transition(record, 'dead', t)
      return
    }
    if (record.pending !== null && record.pendingBeforeProbe) {
      this.apply(record, record.pending, record.pendingAtMs)
      if (record.state !== 'alive') this.transition(record, 'alive', t)
      return
    }
    if (record.pending !== null) {
      record.probeDueAtMs = t // it came during this round; the next one confirms it
    } else if (record.state === 'suspect') {
      // Answering pings is not reporting: a suspect stays suspect, and is probed again later.
      record.probeDueAtMs ??= t + this.options.reprobeIntervalMs
    }
    // An alive peer keeps any probe asked for during the round (its connection closed again).
  }

  /** The round was abandoned (we are stopping): it says nothing about the peer, so probe again when next asked. */
  probeCancelled(peerId: string): void {
    const record = this.records.get(peerId)
    if (record === undefined) return
    record.probing = false
    if (isProbeable(record)) record.probeDueAtMs = this.options.now()
  }

  /** Peers currently alive, other than `exceptPeerId`: candidates to probe on our behalf. */
  alivePeers(exceptPeerId: string): string[] {
    const peers: string[] = []
    for (const record of this.records.values()) {
      if (record.state === 'alive' && record.peerId !== exceptPeerId) peers.push(record.peerId)
    }
    return peers
  }

  member(peerId: string): MemberSnapshot<R> | null {
    const record = this.records.get(peerId)
    return record === undefined ? null : this.snapshot(record, this.options.now())
  }

  members(): MemberSnapshot<R>[] {
    const t = this.options.now()
    return [...this.records.values()].sort((a, b) => (a.peerId < b.peerId ? -1 : 1)).map((record) => this.snapshot(record, t))
  }

  private create(peerId: string, state: MemberState, t: number): MemberRecord<R> {
    const record: MemberRecord<R> = {
      peerId,
      state,
      health: null,
      heardAtMs: null,
      stateAtMs: t,
      probeDueAtMs: null,
      connectionLost: false,
      probing: false,
      heardDuringProbe: false,
      pending: null,
      pendingAtMs: 0,
      pendingBeforeProbe: false,
      leftIncarnation: null,
    }
    this.records.set(peerId, record)
    return record
  }

  private apply(record: MemberRecord<R>, report: R, t: number): void {
    record.health = report
    record.heardAtMs = t
    record.probeDueAtMs = null
    record.connectionLost = false
    record.heardDuringProbe = record.probing
    record.pending = null
  }

  private transition(record: MemberRecord<R>, state: MemberState, t: number): void {
    const previous = record.state
    record.state = state
    record.stateAtMs = t
    this.options.onChange(this.snapshot(record, t), previous)
  }

  private snapshot(record: MemberRecord<R>, t: number): MemberSnapshot<R> {
    return {
      peerId: record.peerId,
      state: record.state,
      health: record.health,
      lastHeardMs: record.heardAtMs === null ? null : t - record.heardAtMs,
      stateSinceMs: t - record.stateAtMs,
    }
  }
}

/** Alive and suspect peers are probed; dead and left ones only to confirm an indirect report. */
function isProbeable<R>(record: MemberRecord<R>): boolean {
  return record.state === 'alive' || record.state === 'suspect' || record.pending !== null
}

function isNewer<R extends VersionedReport>(record: MemberRecord<R>, report: R): boolean {
  // Only a later incarnation (a restart) comes back from leaving.
  if (record.state === 'left' && record.leftIncarnation !== null && report.incarnation <= record.leftIncarnation) return false
  const last = record.pending ?? record.health
  if (last === null) return true
  if (report.incarnation === last.incarnation) return report.seq > last.seq
  // A restart picks a larger incarnation. Take a smaller one only from a peer
  // already given up on: its clock may have stepped back across the restart.
  return report.incarnation > last.incarnation || record.state === 'dead'
}
