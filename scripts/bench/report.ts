// Shared by the benches: print one JSON object per line, and latency percentiles.

export function report(fields: Record<string, unknown>): void {
  console.log(JSON.stringify(fields))
}

/** Percentile (0..100) of a list of samples, in the samples' unit. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}
