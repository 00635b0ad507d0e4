// Runs the leader's control loops (scheduler, controllers): only while this
// peer leads, each round rebuilt from the replicated store, so a new leader
// carries on where the old one stopped and nothing is remembered in between.
// A round runs when something in the store changed (coalesced), and at least
// every `roundEveryMs`; rounds of one controller never overlap.
import type { ObjectStore } from '../store/object-store.js'

/**
 * Changes within this window share one round. Every round rescans the store, so under a burst of
 * writes (10,000 pods) rounds on every change spent most of the leader's CPU rescanning: a 100 ms
 * window cut its CPU per pod by half and doubled the pods bound per second (npm run bench -- scheduler).
 */
export const coalesceMsDefault = 100

export interface Controller {
  readonly name: string
  /**
   * One pass: read the store, write what is missing. Throwing ends the pass; the next one retries.
   * Timed work (an eviction deadline) returns when it falls due: the loop runs this controller
   * again then, rather than at the next change or the next once-a-second round.
   */
  round(): Promise<RoundResult | void>
  /** This peer leads in a new term and has caught up: called before the term's first round (rebuild what is kept between rounds). */
  leadershipStarted?(): void
  /** This peer stopped leading (or the loop stopped): drop what is kept between rounds. */
  leadershipEnded?(): void
}

export interface RoundResult {
  /** Run this controller's next round at this time (ms since the epoch, `nowMs`'s clock); one pending wake-up per controller, the latest round's. */
  nextRoundAtMs?: number
}

/** A wake-up further away than this waits for the rounds that come anyway, and asks again. */
export const wakeUpMaxMs = 60_000

export interface LeaderLoopOptions {
  controllers: Controller[]
  store: ObjectStore
  /** The term this peer leads in, or null while it follows. */
  leaderTerm: () => number | null
  /** Upper bound between rounds when nothing changes (timed work: evictions, retries). */
  roundEveryMs?: number
  /** Changes are coalesced: at most one round per controller per this many ms (coalesceMsDefault). */
  coalesceMs?: number
  /** Called with what a failed round threw (logged by the peer; tests collect it). */
  onError?: (controller: string, err: Error) => void
  /**
   * Resolves once this peer has applied everything committed before it began to lead (a
   * ReadIndex round). A new leader runs no round before: it would miss what the old one did.
   */
  caughtUp?: () => Promise<void>
  /** The clock for wake-ups (Date.now when absent). */
  nowMs?: () => number
}

interface ControllerState {
  running: boolean
  /** A change arrived while a round ran: run again right after. */
  again: boolean
  /** The one wake-up the controller's last round asked for. */
  wakeUp: ReturnType<typeof setTimeout> | null
}

export class LeaderLoop {
  private readonly state = new Map<string, ControllerState>()
  private timer: ReturnType<typeof setInterval> | null = null
  private stopWatch: (() => void) | null = null
  private scheduled = false
  private stopped = true
  /** The term in which this peer caught up with the log; rounds wait for it in a new term. */
  private caughtUpTerm: number | null = null
  private catchingUp = false

  constructor(private readonly options: LeaderLoopOptions) {
    for (const c of options.controllers) this.state.set(c.name, { running: false, again: false, wakeUp: null })
  }

  start(): void {
    this.stopped = false
    this.timer = setInterval(() => this.poke(), this.options.roundEveryMs ?? 1000)
    this.stopWatch = this.options.store.watches.watchFrom(this.options.store.appliedIndex, () => this.poke())
    this.poke()
  }

  stop(): void {
    this.stopped = true
    this.endLeadership()
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    this.stopWatch?.()
    this.stopWatch = null
  }

  /** Something changed: run every controller soon (once, however many changes arrive meanwhile). */
  poke(): void {
    if (this.scheduled || this.stopped) return
    this.scheduled = true
    setTimeout(() => {
      this.scheduled = false
      const term = this.options.leaderTerm()
      if (term === null) return this.endLeadership()
      if (term !== this.caughtUpTerm) return void this.catchUp(term)
      for (const c of this.options.controllers) void this.run(c)
    }, this.options.coalesceMs ?? coalesceMsDefault)
  }

  private async catchUp(term: number): Promise<void> {
    if (this.catchingUp) return
    this.catchingUp = true
    try {
      await (this.options.caughtUp?.() ?? Promise.resolve())
      if (this.options.leaderTerm() === term) {
        this.endLeadership()
        this.caughtUpTerm = term
        for (const c of this.options.controllers) c.leadershipStarted?.()
      }
    } catch {
      // Not leading any more, or no quorum yet: the next poke tries again.
    } finally {
      this.catchingUp = false
    }
    this.poke()
  }

  /** Run `c` (alone) at `atMs`, replacing the wake-up it asked for before. */
  private wakeAt(c: Controller, s: ControllerState, atMs: number | undefined): void {
    if (s.wakeUp !== null) clearTimeout(s.wakeUp)
    s.wakeUp = null
    if (atMs === undefined || this.stopped) return
    const delayMs = Math.min(wakeUpMaxMs, Math.max(0, atMs - (this.options.nowMs ?? Date.now)()))
    s.wakeUp = setTimeout(() => {
      s.wakeUp = null
      const term = this.options.leaderTerm()
      if (term !== null && term === this.caughtUpTerm) void this.run(c)
    }, delayMs)
  }

  private endLeadership(): void {
    for (const s of this.state.values()) {
      if (s.wakeUp !== null) clearTimeout(s.wakeUp)
      s.wakeUp = null
    }
    if (this.caughtUpTerm === null) return
    this.caughtUpTerm = null
    for (const c of this.options.controllers) c.leadershipEnded?.()
  }

  private async run(c: Controller): Promise<void> {
    const s = this.state.get(c.name)!
    if (s.running) {
      s.again = true
      return
    }
    s.running = true
    try {
      do {
        s.again = false
        if (this.stopped || this.options.leaderTerm() === null) break
        try {
          const result = await c.round()
          this.wakeAt(c, s, result?.nextRoundAtMs)
        } catch (err) {
          this.options.onError?.(c.name, err as Error)
        }
      } while (s.again)
    } finally {
      s.running = false
    }
  }
}
