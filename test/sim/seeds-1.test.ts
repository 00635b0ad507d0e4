import { describe } from 'vitest'
import { itRunsSeeds } from './seed-batch.js'

describe('deterministic simulation', () => {
  itRunsSeeds(1, 250)
})
