import { describe, expect, it } from 'vitest'
import { runSeed } from './run.js'

describe('simulation determinism', () => {
  it('replays a seed exactly: same operations, messages and virtual time', () => {
    for (const seed of [7, 8, 9]) {
      expect(runSeed({ seed })).toEqual(runSeed({ seed }))
    }
  })

  it('different seeds explore different schedules', () => {
    const messages = new Set([1, 2, 3, 4, 5, 6].map((seed) => runSeed({ seed }).messages))
    expect(messages.size).toBeGreaterThan(4)
  })

  it('prints the command that replays a run', () => {
    expect(runSeed({ seed: 42, nodeCount: 5 }).replay).toBe('npm run sim -- --seed 42 --nodes 5')
  })
})
