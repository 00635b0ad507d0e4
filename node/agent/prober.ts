// The worker that probes one run of one container for one probe type, with
// the kubelet's semantics (pkg/kubelet/prober/worker.go): the first check
// once `initialDelay` has passed since the run started, then one a period;
// the state flips only after `successThreshold` successes or
// `failureThreshold` failures in a row; readiness starts failed, liveness
// starts passed, startup starts unknown. A liveness or startup failure ends
// the worker (the agent restarts the container and probes the new run with
// new workers), and so does a startup success (the container has started).
import { runProbe, type ProbeOutcome, type ProbeResult, type ProbeSpec, type ProbeTarget, type ProbeType } from './probes.js'

/** Told when a probe's state flips; `message` is the deciding check's (why it failed). Must not throw. */
export type ProbeResultListener = (type: ProbeType, result: ProbeResult, message: string) => void

export interface ProberOptions {
  type: ProbeType
  spec: ProbeSpec
  target: ProbeTarget
  /** When the container's run started (ms since the epoch): the initial delay counts from it. */
  startedAtMs: number
  onResult: ProbeResultListener
  /** Told of every check, flip or not (for `Unhealthy` events). Must not throw. */
  onCheck?: (type: ProbeType, outcome: ProbeOutcome) => void
  /** Checks wait while this says false: liveness and readiness wait for the startup probe. */
  gate?: () => boolean
}

export class Prober {
  readonly type: ProbeType
  private readonly options: ProberOptions
  private state: ProbeResult | 'unknown'
  private lastResult: ProbeResult | undefined
  /** Checks in a row that gave `lastResult`. */
  private resultRun = 0
  private firstTimer: NodeJS.Timeout | undefined
  private periodTimer: NodeJS.Timeout | undefined
  private delayPassed = false
  /** The one check in flight (never more than one: a tick that finds one running is skipped). */
  private inFlight: AbortController | undefined
  private stopped = false
  private started = false

  constructor(options: ProberOptions) {
    this.options = options
    this.type = options.type
    this.state = options.type === 'readiness' ? 'failure' : options.type === 'liveness' ? 'success' : 'unknown'
  }

  /** The probe's state: readiness `failure` and startup `unknown` until they pass, liveness `success` until it fails. */
  get result(): ProbeResult | 'unknown' {
    return this.state
  }

  /** Whether the worker still checks (false after `stop()`, a liveness or startup failure, or a startup success). */
  get running(): boolean {
    return this.started && !this.stopped
  }

  start(): void {
    if (this.started || this.stopped) return
    this.started = true
    const delayMs = Math.max(0, this.options.startedAtMs + this.options.spec.initialDelayMs - Date.now())
    this.firstTimer = setTimeout(() => {
      this.firstTimer = undefined
      this.delayPassed = true
      this.periodTimer = setInterval(() => this.tick(), this.options.spec.periodMs)
      this.periodTimer.unref()
      this.tick()
    }, delayMs)
    this.firstTimer.unref()
  }

  /** Checks now rather than at the next period, once the initial delay has passed (the startup probe just passed). */
  trigger(): void {
    if (this.delayPassed) this.tick()
  }

  /** Stops the timers and cancels the check in flight; no result is reported after this. */
  stop(): void {
    this.stopped = true
    clearTimeout(this.firstTimer)
    clearInterval(this.periodTimer)
    this.inFlight?.abort()
    this.inFlight = undefined
  }

  private tick(): void {
    if (this.stopped || this.inFlight !== undefined) return
    if (this.options.gate !== undefined && !this.options.gate()) return
    const controller = new AbortController()
    this.inFlight = controller
    void runProbe(this.options.spec, this.options.target, controller.signal).then((outcome) => {
      if (this.inFlight === controller) this.inFlight = undefined
      if (this.stopped || controller.signal.aborted) return
      this.record(outcome)
    })
  }

  private record(outcome: ProbeOutcome): void {
    const { type, spec } = this.options
    this.options.onCheck?.(type, outcome)
    if (outcome.result === this.lastResult) this.resultRun++
    else {
      this.lastResult = outcome.result
      this.resultRun = 1
    }
    // Kubernetes only allows successThreshold 1 for liveness and startup.
    const threshold = outcome.result === 'failure' ? spec.failureThreshold : type === 'readiness' ? spec.successThreshold : 1
    if (this.resultRun < threshold) return
    const flipped = this.state !== outcome.result
    this.state = outcome.result
    // Nothing more to learn about this run: it has started, or it is to be restarted.
    if (type === 'startup' || (type === 'liveness' && outcome.result === 'failure')) this.stop()
    if (flipped) this.options.onResult(type, outcome.result, outcome.message)
  }
}
