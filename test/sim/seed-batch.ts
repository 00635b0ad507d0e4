// Shared by the simulation test files: each runs a contiguous range of seeds,
// so vitest spreads them across cores. A failure names the replay command.
import { expect, it } from 'vitest'
import { runSeed } from './run.js'

export function itRunsSeeds(from: number, count: number): void {
  it(`seeds ${from}..${from + count - 1}: safe, live after healing, linearizable`, () => {
    const failures: string[] = []
    let operations = 0
    for (let seed = from; seed < from + count; seed++) {
      const result = runSeed({ seed })
      operations += result.operations
      if (!result.ok) failures.push(`seed ${seed} (${result.nodeCount} nodes): ${result.failure}\n  replay: ${result.replay}`)
    }
    expect(failures, failures.join('\n')).toEqual([])
    // The workload must actually exercise the cluster.
    expect(operations).toBeGreaterThan(count * 100)
  })
}
