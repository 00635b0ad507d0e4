import { describe } from 'vitest'
import { itRunsSeeds } from './seed-batch.js'

describe('deterministic simulation', () => {
  itRunsSeeds(501, 250)
})
