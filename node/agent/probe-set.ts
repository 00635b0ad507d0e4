// A container run's probes together: the startup probe gates liveness and
// readiness (they do not check until it has passed), and the run's `started`
// and `ready` as the container status reports them.
import { probeFromSpec, type ProbeJson, type ProbeOutcome, type ProbeSpec, type ProbeTarget, type ProbeType } from './probes.js'
import { Prober, type ProbeResultListener } from './prober.js'
import type { PortSpec } from './runtime.js'

export type ContainerProbeSpecs = Partial<Record<ProbeType, ProbeSpec>>

/** The probes a pod spec container declares, converted (`probeFromSpec`) against its ports. */
export function containerProbeSpecs(container: { livenessProbe?: ProbeJson; readinessProbe?: ProbeJson; startupProbe?: ProbeJson }, ports: PortSpec[]): ContainerProbeSpecs {
  const specs: ContainerProbeSpecs = {}
  if (container.livenessProbe !== undefined) specs.liveness = probeFromSpec(container.livenessProbe, ports)
  if (container.readinessProbe !== undefined) specs.readiness = probeFromSpec(container.readinessProbe, ports)
  if (container.startupProbe !== undefined) specs.startup = probeFromSpec(container.startupProbe, ports)
  return specs
}

export interface ContainerProbersOptions {
  specs: ContainerProbeSpecs
  target: ProbeTarget
  /** When the run started (ms since the epoch). */
  startedAtMs: number
  /**
   * Told when a probe's state flips. `liveness`/`startup` `failure`: restart the
   * container (then stop these probers and start new ones for the new run).
   * `readiness` either way, or `startup` `success`: `ready`/`started` changed.
   */
  onResult: ProbeResultListener
  onCheck?: (type: ProbeType, outcome: ProbeOutcome) => void
}

export class ContainerProbers {
  private readonly probers = new Map<ProbeType, Prober>()

  constructor(options: ContainerProbersOptions) {
    const startupDone = (): boolean => this.started
    const onResult: ProbeResultListener = (type, result, message) => {
      options.onResult(type, result, message)
      // The startup probe just passed: liveness and readiness check at once rather than a period later.
      if (type === 'startup' && result === 'success') for (const t of ['readiness', 'liveness'] as const) this.probers.get(t)?.trigger()
    }
    for (const type of ['startup', 'readiness', 'liveness'] as const) {
      const spec = options.specs[type]
      if (spec === undefined) continue
      const gate = type === 'startup' ? undefined : startupDone
      this.probers.set(type, new Prober({ type, spec, target: options.target, startedAtMs: options.startedAtMs, onResult, onCheck: options.onCheck, gate }))
    }
  }

  /** Kubernetes' `started`: the startup probe has passed, or there is none. */
  get started(): boolean {
    const startup = this.probers.get('startup')
    return startup === undefined || startup.result === 'success'
  }

  /** Kubernetes' `ready` for a running container: started, and the readiness probe passes (or there is none). */
  get ready(): boolean {
    const readiness = this.probers.get('readiness')
    return this.started && (readiness === undefined || readiness.result === 'success')
  }

  /** One probe's state now; undefined when the container has no such probe. */
  resultOf(type: ProbeType): 'success' | 'failure' | 'unknown' | undefined {
    return this.probers.get(type)?.result
  }

  start(): void {
    for (const prober of this.probers.values()) prober.start()
  }

  stop(): void {
    for (const prober of this.probers.values()) prober.stop()
  }
}
