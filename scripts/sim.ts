// npm run sim -- [--seeds N] [--from S] [--seed S] [--nodes 3|5|7] [--fault-ms MS] [--verbose]
// Runs the deterministic Raft simulation over many seeds; a failure prints
// the one-line command that replays it exactly.
import { parseArgs } from 'node:util'
import { runSeed, type SimRunOptions } from '../test/sim/run.js'

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '100' },
    from: { type: 'string', default: '1' },
    seed: { type: 'string' },
    nodes: { type: 'string' },
    'fault-ms': { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
})

function options(seed: number): SimRunOptions {
  const o: SimRunOptions = { seed }
  if (values.nodes !== undefined) o.nodeCount = Number(values.nodes)
  if (values['fault-ms'] !== undefined) o.faultMs = Number(values['fault-ms'])
  return o
}

const seeds = values.seed !== undefined ? [Number(values.seed)] : Array.from({ length: Number(values.seeds) }, (_, k) => Number(values.from) + k)
const started = performance.now()
let failures = 0
let operations = 0
for (const seed of seeds) {
  const result = runSeed(options(seed))
  operations += result.operations
  if (values.verbose || seeds.length === 1) console.log(JSON.stringify(result))
  if (!result.ok) {
    failures++
    console.log(`seed ${seed} FAILED (${result.nodeCount} nodes): ${result.failure}\n  replay: ${result.replay}`)
  }
}
const seconds = (performance.now() - started) / 1000
console.log(JSON.stringify({ seeds: seeds.length, failures, operations, seconds: Number(seconds.toFixed(1)) }))
process.exit(failures === 0 ? 0 : 1)
