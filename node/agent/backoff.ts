// Restart and image-pull back-off, as the kubelet keeps it (client-go's
// flowcontrol.Backoff): the first failure is retried at once, later ones wait
// initial, 2x, 4x ... up to max after the failure; an entry untouched for
// longer than max starts over (a container that ran fine for a while is not
// punished for an old crash loop).

export interface BackoffOptions {
  initialMs: number
  maxMs: number
}

interface Entry {
  delayMs: number
  lastUpdateMs: number
}

/** Entries kept: one per container of the pods on this peer, bounded so a churn of pods cannot grow it. */
export const backoffEntriesMax = 10_000

export class Backoff {
  private readonly entries = new Map<string, Entry>()

  constructor(private readonly options: BackoffOptions) {}

  /** How long until `key` may be retried after a failure at `failedAtMs`; 0 when it may now. */
  remainingMs(key: string, failedAtMs: number, nowMs: number): number {
    const e = this.entries.get(key)
    if (e === undefined || this.expired(e, nowMs)) return 0
    return Math.max(0, failedAtMs + e.delayMs - nowMs)
  }

  /** The delay the next wait of `key` will use (for messages: "back-off 20s restarting ..."). */
  currentDelayMs(key: string): number {
    return this.entries.get(key)?.delayMs ?? 0
  }

  /** A retry of `key` is happening now: the next failure waits longer. */
  next(key: string, nowMs: number): void {
    const e = this.entries.get(key)
    const delayMs = e === undefined || this.expired(e, nowMs) ? this.options.initialMs : Math.min(e.delayMs * 2, this.options.maxMs)
    this.entries.delete(key)
    this.entries.set(key, { delayMs, lastUpdateMs: nowMs })
    if (this.entries.size > backoffEntriesMax) this.entries.delete(this.entries.keys().next().value!)
  }

  /** Forget every key starting with `prefix` (a pod that is gone). */
  forgetPrefix(prefix: string): void {
    for (const k of [...this.entries.keys()]) if (k.startsWith(prefix)) this.entries.delete(k)
  }

  private expired(e: Entry, nowMs: number): boolean {
    return nowMs - e.lastUpdateMs > 2 * this.options.maxMs
  }
}

/** `20s`, `5m0s`: Go's duration format, which kubelet messages use. */
export function goDuration(ms: number): string {
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  return `${m}m${s % 60}s`
}
