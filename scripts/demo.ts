// npm run demo: three peers on this machine (process runtime, userspace service
// proxy, data under one folder), an example app on them (the guestbook when
// redis-server is installed, else a Node-only app), a progress display until
// it is ready, then what to do next. Ctrl-C deletes the app, stops the peers
// and ends any pod process a killed peer left behind.
//
//   npm run demo [-- --dir DIR] [--peers N] [--example guestbook|hello] [--from-source]
//                   [--service-cidr CIDR] [--ready-timeout SECONDS] [--exit-when-ready]
import '../net/polyfill.js'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { allReady, appStatus, controllersLine, placementLine } from './demo/app-status.js'
import { defaultExample, exampleByName, exampleNames, peerPath, runShoal, type DemoExample, type ExampleName } from './demo/examples.js'
import { LocalPeers, claimDataFolder, describeExit, logTail, releaseDataFolder, portIsFree, shoalCli, until, type LocalPeer, type ShoalCli } from './demo/local-peers.js'
import { endLiveRuns, liveRuns } from './demo/pod-sweep.js'
import { Progress } from './demo/progress.js'
import { printSummary } from './demo/summary.js'

const nodePort = 30001
/** How often the pods' placement is checked once the app is ready. */
const placementPollMs = 1000
/** How long Ctrl-C waits for the agents to stop the app's pods before stopping the peers anyway. */
const podsGoneWaitMs = 20_000
/** A second Ctrl-C at least this long after the first skips the orderly shutdown (a closer one is the same keypress relayed by npm or tsx). */
const forceStopAfterMs = 1000

interface DemoOptions {
  dir: string
  peerCount: number
  example: DemoExample
  cli: ShoalCli
  serviceCidr: string | undefined
  readyTimeoutMs: number
  exitWhenReady: boolean
}

async function parseOptions(): Promise<DemoOptions> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string', default: join(tmpdir(), 'shoal-demo') },
      peers: { type: 'string', default: '3' },
      example: { type: 'string' },
      'from-source': { type: 'boolean', default: false },
      'service-cidr': { type: 'string' },
      'ready-timeout': { type: 'string', default: '180' },
      'exit-when-ready': { type: 'boolean', default: false },
    },
  })
  const peerCount = Number(values.peers)
  if (!Number.isInteger(peerCount) || peerCount < 1 || peerCount > 9) throw new Error('--peers wants a number from 1 to 9')
  if (values.example !== undefined && !exampleNames.includes(values.example as ExampleName)) throw new Error(`--example wants one of ${exampleNames.join(', ')}`)
  return {
    dir: resolve(values.dir),
    peerCount,
    example: values.example === undefined ? defaultExample() : exampleByName(values.example as ExampleName),
    cli: await shoalCli(values['from-source']),
    serviceCidr: values['service-cidr'],
    readyTimeoutMs: Number(values['ready-timeout']) * 1000,
    exitWhenReady: values['exit-when-ready'],
  }
}

function indent(text: string): string {
  return text.trimEnd().replace(/^/gm, '  ')
}

class Demo {
  private peers: LocalPeers | undefined
  private progress: Progress | undefined
  private stopping: Promise<number> | undefined
  private stopRequestedAt = 0
  private lastPlacement = ''
  private ready = false
  /** Set once the data folder is ours: only then may stopping end the processes recorded in it. */
  private ownsDir = false

  constructor(private readonly o: DemoOptions) {}

  async run(): Promise<number> {
    const { o } = this
    claimDataFolder(o.dir)
    this.ownsDir = true
    process.on('SIGINT', () => this.onSignal())
    process.on('SIGTERM', () => this.onSignal())
    if (!(await portIsFree(nodePort))) console.log(`warning: 127.0.0.1:${nodePort} is in use: the app's NodePort will not answer there until it is free`)
    console.log(`Starting ${o.peerCount} peers with ${o.example.title}`)
    console.log(`  data and logs in ${o.dir}; shoal is ${o.cli.display}${o.cli.sourceReason === undefined ? '' : ` (${o.cli.sourceReason})`}\n`)
    this.progress = new Progress()
    this.peers = await LocalPeers.start({
      root: o.dir,
      count: o.peerCount,
      upArgs: ['--runtime', 'process', '--proxy-mode', 'userspace'],
      firstPeerArgs: o.serviceCidr === undefined ? [] : ['--service-cidr', o.serviceCidr],
      env: { ...process.env, PATH: peerPath(o.example) },
      cli: o.cli,
      onUnexpectedExit: (peer) => this.onPeerExit(peer),
    })
    await this.waitForPeers()
    if (this.stopping !== undefined) return this.stopping
    await this.createApp()
    const url = `http://127.0.0.1:${nodePort}`
    const proof = await this.waitForApp(url)
    if (this.stopping !== undefined) return this.stopping
    this.ready = true
    await printSummary({ peers: this.peers, example: o.example, cli: o.cli, url, dir: o.dir, proof })
    if (o.exitWhenReady) return this.stop('ready; --exit-when-ready')
    this.watchPlacement()
    return new Promise<number>(() => {})
  }

  private onPeerExit(peer: LocalPeer): void {
    if (!this.ready) return this.note(`${peer.name} exited during startup (${describeExit(peer)}); its log: ${peer.logPath}\n${logTail(peer.logPath)}`)
    this.note(`\n${peer.name} (pid ${peer.child?.pid}) stopped: ${describeExit(peer)}. Its Node turns Unknown within a second; after the 5 s eviction timeout its pods are replaced on the other peers.`)
  }

  private note(line: string): void {
    if (this.progress !== undefined) this.progress.note(line)
    else console.log(line)
  }

  private async waitForPeers(): Promise<void> {
    const peers = this.peers!
    const progress = this.progress!
    await until(async () => {
      if (this.stopping !== undefined) return true
      const exited = peers.peers.find((p) => p.exit !== null)
      if (exited !== undefined) return exited
      const view = await peers.view()
      const alive = view?.peers.filter((p) => p.gossipState === 'alive').length ?? 0
      const ready = (await peers.readyNodes()) ?? 0
      progress.update(`peers: ${peers.alive().length}/${this.o.peerCount} running, ${alive} alive in gossip, ${view?.leaderId ? 'a leader' : 'no leader yet'}, ${ready}/${this.o.peerCount} Nodes Ready`)
      return ready === this.o.peerCount && alive === this.o.peerCount && view?.leaderId ? true : undefined
    }, this.o.readyTimeoutMs, 'the peers to form a cluster', 250).then((outcome) => {
      if (outcome !== true) throw new Error(`${outcome.name} exited before the cluster formed (${describeExit(outcome)})`)
    })
    progress.finish(`${this.o.peerCount} peers form a cluster`)
  }

  private async createApp(): Promise<void> {
    const kubeconfig = this.peers!.peers[0]!.kubeconfig
    const args = ['create', '--kubeconfig', kubeconfig, ...this.o.example.files.flatMap((f) => ['-f', f])]
    console.log(`$ shoal create ${this.o.example.files.map((f) => `-f ${relative(process.cwd(), f)}`).join(' ')}`)
    // The API answers once the cluster CA exists; a create right after the first election may still see it starting.
    const result = await until(async () => {
      const r = await runShoal(this.o.cli, args)
      return r.code === 0 ? r : r.stderr.includes('already exists') ? r : undefined
    }, 30_000, 'shoal create to succeed', 1000)
    console.log(indent(result.stdout))
  }

  private async waitForApp(url: string): Promise<string> {
    const progress = new Progress()
    this.progress = progress
    let proof = ''
    let pageState = 'not asked yet'
    await until(async () => {
      if (this.stopping !== undefined) return true
      const status = await appStatus(this.peers!)
      if (status === undefined) return undefined
      if (allReady(status)) {
        try {
          proof = await this.o.example.check(url)
          return true
        } catch (err) {
          pageState = (err as Error).message
        }
      }
      progress.update(`pods ready: ${controllersLine(status)} · page ${url}/: ${allReady(status) ? pageState : 'waiting for the pods'}`)
      return undefined
    }, this.o.readyTimeoutMs, `${this.o.example.name} to be ready`, 500)
    progress.finish(`${this.o.example.name} is ready: ${proof}`)
    return proof
  }

  /** Prints where the pods run whenever that changes (a killed peer's pods moving). */
  private watchPlacement(): void {
    const timer = setInterval(() => {
      void appStatus(this.peers!).then((status) => {
        if (status === undefined || this.stopping !== undefined) return
        const line = placementLine(status)
        if (this.lastPlacement !== '' && line !== this.lastPlacement) console.log(`pods now: ${line}`)
        this.lastPlacement = line
      })
    }, placementPollMs)
    timer.unref()
  }

  private onSignal(): void {
    if (this.stopping === undefined) {
      this.stopRequestedAt = Date.now()
      void this.stop('Ctrl-C').then((code) => process.exit(code))
    } else if (Date.now() - this.stopRequestedAt > forceStopAfterMs) {
      console.log('\nstopping at once: SIGKILL to the peers')
      this.peers?.killAllSync()
    }
  }

  stop(why: string): Promise<number> {
    this.stopping ??= this.stopNow(why)
    return this.stopping
  }

  private async stopNow(why: string): Promise<number> {
    if (!this.ownsDir) return 1
    this.progress?.cancel()
    console.log(`\nStopping (${why}):`)
    const peers = this.peers
    if (peers !== undefined && peers.alive().length > 0) {
      const deleted = await runShoal(this.o.cli, ['delete', '--kubeconfig', peers.alive()[0]!.kubeconfig, '--ignore-not-found', ...this.o.example.files.flatMap((f) => ['-f', f])], 30_000)
      console.log(indent(deleted.stdout))
      // The agents of live peers stop their pods' processes; those a killed peer left are ended below, from its records.
      const live = new Set(peers.alive().map((p) => p.name))
      const allStopped = async () => (await appStatus(peers))?.pods.length === 0 && (await liveRuns(this.o.dir)).every((r) => !live.has(r.peer))
      await until(async () => ((await allStopped()) ? true : undefined), podsGoneWaitMs, 'the pods to stop').catch(() => console.log('  some pods did not stop in time; ending their processes directly'))
    }
    await peers?.stop()
    console.log(`  peers stopped`)
    const swept = await endLiveRuns(this.o.dir)
    for (const run of swept) console.log(`  ended ${run.what} (pid ${run.pid}), left running by a peer that was killed`)
    const left = await liveRuns(this.o.dir)
    releaseDataFolder(this.o.dir)
    if (left.length > 0 || (peers?.alive().length ?? 0) > 0) {
      console.log(`  still running: ${left.map((r) => `${r.what} (pid ${r.pid})`).join(', ')}`)
      return 1
    }
    console.log(`Stopped: no peer and no pod process left running. Data and logs stay in ${this.o.dir}.`)
    return 0
  }
}

let demo: Demo | undefined
try {
  demo = new Demo(await parseOptions())
  process.exit(await demo.run())
} catch (err) {
  console.error(`\ndemo: ${(err as Error).message}`)
  // Whatever started must not outlive the demo.
  await demo?.stop('an error').catch(() => undefined)
  process.exit(1)
}
