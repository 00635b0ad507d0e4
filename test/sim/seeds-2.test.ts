import { describe } from 'vitest'
import { itRunsSeeds } from './seed-batch.js'

describe('deterministic simulation', () => {
  itRunsSeeds(251, 250)
})
