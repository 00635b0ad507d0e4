// npm run peers: N peers of `shoal up` on this machine for experiments, with
// data dirs and logs under one folder (emptied first). Prints how to reach
// them, then runs until Ctrl-C, which stops the peers and ends the pod
// processes they ran (objects stay in the data dirs until the next start).
//
//   npm run peers [-- --count N] [--dir DIR] [--runtime process|docker|auto|none] [--from-source]
//                    [-- more `shoal up` flags for every peer, e.g. --pod-eviction-timeout 1s]
import '../net/polyfill.js'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { LocalPeers, claimDataFolder, describeExit, releaseDataFolder, shoalCli, until } from './demo/local-peers.js'
import { endLiveRuns } from './demo/pod-sweep.js'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    count: { type: 'string', default: '3' },
    dir: { type: 'string', default: join(tmpdir(), 'shoal-peers') },
    runtime: { type: 'string', default: 'process' },
    'from-source': { type: 'boolean', default: false },
  },
})
const count = Number(values.count)
if (!Number.isInteger(count) || count < 1 || count > 50) {
  console.error('peers: --count wants a number from 1 to 50')
  process.exit(2)
}
const dir = resolve(values.dir)
const upArgs = ['--runtime', values.runtime, ...(positionals.includes('--proxy-mode') ? [] : ['--proxy-mode', 'userspace']), ...positionals]
const cli = await shoalCli(values['from-source'])

claimDataFolder(dir)
console.log(`Starting ${count} peers in ${dir}: shoal up ${upArgs.join(' ')}`)
console.log(`  shoal is ${cli.display}${cli.sourceReason === undefined ? '' : ` (${cli.sourceReason})`}`)
let stopping = false
const peers = await LocalPeers.start({
  root: dir,
  count,
  upArgs,
  env: process.env,
  cli,
  onUnexpectedExit: (peer) => console.log(`${peer.name} stopped: ${describeExit(peer)} (log: ${peer.logPath})`),
})
await until(async () => {
  const view = await peers.view()
  return (await peers.readyNodes()) === count && view?.leaderId ? true : undefined
}, 120_000, `${count} peers with Ready Nodes`, 250)

console.log(`\n${count} peers are up:`)
for (const p of peers.peers) console.log(`  ${p.name}  pid ${String(p.child?.pid).padEnd(7)} API https://${p.api}  kubeconfig ${p.kubeconfig}  log ${p.logPath}`)
console.log(`\n  export KUBECONFIG=${peers.peers[0]!.kubeconfig}\n  alias shoal='${cli.display}'\n  shoal members\n\nCtrl-C stops them all.`)

const stop = async (): Promise<void> => {
  if (stopping) return
  stopping = true
  console.log('\nstopping the peers')
  await peers.stop()
  const swept = await endLiveRuns(dir)
  if (swept.length > 0) console.log(`ended ${swept.length} pod processes: ${swept.map((r) => r.what).join(', ')}`)
  releaseDataFolder(dir)
  process.exit(0)
}
process.on('SIGINT', () => void stop())
process.on('SIGTERM', () => void stop())
