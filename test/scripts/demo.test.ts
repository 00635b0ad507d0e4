// `npm run demo` as a user runs it: three peers come up, the example app
// (the guestbook when redis-server is installed, else hello) becomes ready,
// its page answers through NodePort 30001; then a peer is SIGKILLed (its pod
// processes live on, as they do for a killed peer) and Ctrl-C stops
// everything: no peer and no pod process is left running.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { liveRuns } from '../../scripts/demo/pod-sweep.js'
import { portIsFree } from '../../scripts/demo/local-peers.js'
import { until } from '../node/process-cluster.js'

const demoScript = new URL('../../scripts/demo.ts', import.meta.url).pathname
const nodePort = 30001
const portFree = await portIsFree(nodePort)
if (!portFree) console.warn(`[test/scripts/demo] skipping: 127.0.0.1:${nodePort} is in use (another demo?)`)

function httpCall(url: string, method = 'GET', body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, timeout: 3000, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end(body)
  })
}

/** Processes whose command line names `dir` or whose working directory is inside it: the peers and their pods. */
function processesUnder(dir: string): string[] {
  const found: string[] = []
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid)) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')
      const cwd = readlinkSync(`/proc/${pid}/cwd`)
      if (cmdline.includes(dir) || cwd.startsWith(dir)) found.push(`${pid} ${cmdline}`)
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found
}

describe.skipIf(!portFree || process.platform !== 'linux')('npm run demo', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-demo-test-'))
  let demo: ChildProcess | undefined
  let output = ''

  afterAll(() => {
    demo?.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  it('starts three peers and the app, answers on NodePort 30001, and Ctrl-C leaves nothing running', async () => {
    const startedAt = Date.now()
    // A service CIDR of its own: other clusters on this machine may serve 127.77/16 VIPs.
    demo = spawn(process.execPath, ['--import', 'tsx', demoScript, '--dir', dir, '--service-cidr', '127.79.0.0/16'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise<number | null>((resolve) => demo!.once('exit', (code) => resolve(code)))
    demo.stdout!.on('data', (d: Buffer) => (output += d.toString()))
    demo.stderr!.on('data', (d: Buffer) => (output += d.toString()))
    await Promise.race([
      until(() => output.includes('Ctrl-C stops everything') || undefined, 60_000, 'the demo to say it is ready'),
      exited.then((code) => Promise.reject(new Error(`the demo exited (${code}) before it was ready:\n${output}`))),
    ])
    expect(output).toMatch(/✓ 3 peers form a cluster/)
    expect(output).toContain(`Open http://127.0.0.1:${nodePort}/`)
    expect(output).toMatch(/export KUBECONFIG=\S+\/peer1\/kubeconfig/)
    expect(output).toMatch(/kill -9 \d+/)

    const page = await httpCall(`http://127.0.0.1:${nodePort}/`)
    expect(page.status).toBe(200)
    if (output.includes('the guestbook')) {
      expect(page.body).toContain('Guestbook')
      expect((await httpCall(`http://127.0.0.1:${nodePort}/messages`, 'POST', JSON.stringify({ message: 'from the smoke test' }))).status).toBe(201)
      await until(async () => ((JSON.parse((await httpCall(`http://127.0.0.1:${nodePort}/messages`)).body) as { messages: string[] }).messages.includes('from the smoke test') ? true : undefined), 5000, 'the message listed')
    } else {
      expect(page.body).toContain('Hello from')
    }

    // A killed peer leaves its pods' processes running; Ctrl-C must end them too.
    const peer3 = Number(/peer3 +pid (\d+)/.exec(output)?.[1])
    const runsOfPeer3 = (await liveRuns(dir)).filter((r) => r.peer === 'peer3')
    expect(runsOfPeer3.length).toBeGreaterThan(0)
    process.kill(peer3, 'SIGKILL')
    demo.kill('SIGINT')
    expect(await exited).toBe(0)
    expect(output).toContain('Stopped: no peer and no pod process left running.')
    for (const run of runsOfPeer3) expect(output).toContain(`ended ${run.what} (pid ${run.pid})`)
    expect(await liveRuns(dir)).toEqual([])
    expect(processesUnder(dir)).toEqual([])
    expect(Date.now() - startedAt).toBeLessThan(60_000)
  }, 90_000)
})
