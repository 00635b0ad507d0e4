// npm run jepsen -- [--minutes N] [--seed S] [--dir DIR] [--kinds kill,pause,...] [--strict]
// One round of the fault test (test/jepsen/): 5 peers in network namespaces
// (root, iproute2, iptables), a workload through random peers, a nemesis, then
// the checks. A failure prints the seed and the history file.
import '../net/polyfill.js'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { checkNetnsAvailable } from '../test/hosts/netns.js'
import { faultKinds, type FaultKind } from '../test/jepsen/nemesis.js'
import { runRound } from '../test/jepsen/round.js'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    seed: { type: 'string' },
    dir: { type: 'string' },
    kinds: { type: 'string' },
    strict: { type: 'boolean', default: false },
  },
})

const availability = await checkNetnsAvailable()
if (!availability.ok || !availability.iptables) {
  console.error(`npm run jepsen needs network namespaces and iptables: ${availability.reason}`)
  process.exit(2)
}
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 1_000_000)
const kinds = values.kinds?.split(',').map((k) => k.trim()) as FaultKind[] | undefined
const unknown = kinds?.filter((k) => !faultKinds.includes(k))
if (unknown !== undefined && unknown.length > 0) {
  console.error(`unknown fault kinds: ${unknown.join(', ')} (known: ${faultKinds.join(', ')})`)
  process.exit(2)
}
const dir = values.dir ?? (await mkdtemp(join(tmpdir(), `shoal-jepsen-${seed}-`)))
const started = Date.now()
const result = await runRound({
  seed,
  durationMs: Number(values.minutes) * 60_000,
  dir,
  strictRejections: values.strict,
  ...(kinds === undefined ? {} : { nemesis: { kinds } }),
  log: (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${line}`),
})
console.log(`faults injected: ${JSON.stringify(result.faults)}`)
console.log(result.check.summary)
if (!result.check.ok) {
  console.log(`\nFAILED: seed ${seed}; history ${result.historyPath}\n  replay the schedule: npm run jepsen -- --minutes ${values.minutes} --seed ${seed}`)
  process.exit(1)
}
console.log(`\nOK: seed ${seed}; history ${result.historyPath}`)
process.exit(0)
