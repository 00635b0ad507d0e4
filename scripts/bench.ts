// npm run bench -- NAME [--profile] [--seconds N]: one JSON object per line.
import { parseArgs } from 'node:util'

const benches: Record<string, (args: BenchArgs) => Promise<void>> = {
  raft: async (args) => (await import('./bench/raft.js')).benchRaft(args),
  codec: async (args) => (await import('./bench/codec.js')).benchCodec(args),
  cluster: async (args) => (await import('./bench/cluster.js')).benchCluster(args),
  api: async (args) => (await import('./bench/api.js')).benchApi(args),
  scheduler: async (args) => (await import('./bench/scheduler.js')).benchScheduler(args),
  pods: async (args) => (await import('./bench/pods.js')).benchPods(args),
  proxy: async (args) => (await import('./bench/proxy.js')).benchProxy(args),
  rollout: async (args) => (await import('./bench/rollout.js')).benchRollout(args),
}

export interface BenchArgs {
  seconds: number
  /** Sample the CPU during the bench's main measurement and print where the time went. */
  profile: boolean
  /** Run only this part of a bench. */
  only?: string
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { profile: { type: 'boolean', default: false }, seconds: { type: 'string', default: '5' }, only: { type: 'string' } },
})
const name = positionals[0]
const bench = name === undefined ? undefined : benches[name]
if (bench === undefined) {
  console.error(`usage: npm run bench -- ${Object.keys(benches).join('|')} [--profile] [--seconds N]`)
  process.exit(2)
}
await bench({ seconds: Number(values.seconds), profile: values.profile, ...(values.only === undefined ? {} : { only: values.only }) })
