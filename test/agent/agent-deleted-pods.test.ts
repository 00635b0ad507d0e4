// Pods deleted while the agent is busy starting them, on one in-process peer
// with the process runtime: whatever was started for a deleted pod is stopped
// within its grace period, never left running.
import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ContainerSpec, SandboxSpec } from '../../node/agent/runtime.js'
import { startAgent } from '../../node/agent/start.js'
import { startLocalPeer, type LocalPeer } from '../node/local-peer.js'
import { until } from '../node/process-cluster.js'
import { createPod, deletePod } from './agent-helpers.js'

/** The `sleep` argument of every container of this file. */
const marker = '765432'

let lp: LocalPeer

beforeAll(async () => {
  lp = await startLocalPeer('agent-del', { agent: { runtime: 'process', restartBackoffInitialMs: 300, restartBackoffMaxMs: 4000 } })
}, 60_000)

afterAll(async () => {
  await lp?.stop()
  for (const pid of sleepers().keys()) process.kill(pid, 'SIGKILL')
})

/** pid -> pod name (HOSTNAME) of every live `sleep 765432...` on this machine. */
function sleepers(): Map<number, string> {
  let pids: number[]
  try {
    pids = execFileSync('pgrep', ['-f', `sleep ${marker}`], { encoding: 'utf8' }).trim().split('\n').filter((l) => l !== '').map(Number)
  } catch {
    return new Map()
  }
  const found = new Map<number, string>()
  for (const pid of pids) {
    try {
      const host = execFileSync('cat', [`/proc/${pid}/environ`], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'] }).split('\0').find((kv) => kv.startsWith('HOSTNAME='))
      if (host !== undefined) found.set(pid, host.slice('HOSTNAME='.length))
    } catch {
      // gone meanwhile
    }
  }
  return found
}

const runningFor = (pod: string): number[] => [...sleepers()].filter(([, name]) => name === pod).map(([pid]) => pid)

/** Lets the test act while the runtime is inside startContainer for `container` of `pod`. */
function holdStart(pod: string, container: string): { reached: Promise<void>; release: () => void; restore: () => void } {
  const runtime = lp.peer.agent!.runtime
  const start = runtime.startContainer.bind(runtime)
  let reached = (): void => undefined
  let release = (): void => undefined
  const reachedP = new Promise<void>((r) => (reached = r))
  const released = new Promise<void>((r) => (release = r))
  runtime.startContainer = async (p: SandboxSpec, c: ContainerSpec) => {
    if (p.name === pod && c.name === container) {
      reached()
      await released
    }
    return start(p, c)
  }
  return { reached: reachedP, release, restore: () => (runtime.startContainer = start) }
}

describe('pods deleted while the agent starts them', () => {
  it('a pod deleted between the starts of its two containers is stopped, both containers', async () => {
    const hold = holdStart('two', 'second')
    try {
      await createPod(lp.peer, 'two', { terminationGracePeriodSeconds: 5, containers: [{ name: 'first', image: 'sleep', args: [`${marker}1`] }, { name: 'second', image: 'sleep', args: [`${marker}2`] }] })
      await hold.reached
      expect(runningFor('two')).toHaveLength(1)
      await deletePod(lp.peer, 'two')
      const deletedAt = Date.now()
      hold.release()
      await until(() => runningFor('two').length === 0, 10_000, 'no process of the deleted pod left')
      expect(Date.now() - deletedAt).toBeLessThan(5000)
      await until(async () => (await lp.peer.agent!.runtime.listPods()).every((p) => p.name !== 'two'), 5000, 'the runtime forgot the pod')
    } finally {
      hold.release()
      hold.restore()
    }
  })

  it('a pod deleted right after it was bound is stopped', async () => {
    for (let k = 0; k < 5; k++) {
      await createPod(lp.peer, `brief-${k}`, { terminationGracePeriodSeconds: 5, containers: [{ name: 'c', image: 'sleep', args: [`${marker}3`] }] })
      await deletePod(lp.peer, `brief-${k}`)
    }
    const deletedAt = Date.now()
    await new Promise((r) => setTimeout(r, 300))
    await until(() => [...sleepers().values()].every((name) => !name.startsWith('brief-')), 10_000, 'no process of the deleted pods left')
    expect(Date.now() - deletedAt).toBeLessThan(5000)
  })
})

describe('a pod deleted while its agent was down', () => {
  it('is stopped by the next agent with the pod\'s own grace period, not a 30 s default', async () => {
    // Ignores SIGTERM, so only the grace period decides when it ends.
    await createPod(lp.peer, 'stubborn', { terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: 'sh', command: ['sh', '-c', `trap "" TERM; sleep ${marker}4`] }] })
    await until(() => runningFor('stubborn').length >= 1, 10_000, 'the pod running')
    await lp.peer.agent!.stop()
    await deletePod(lp.peer, 'stubborn')
    const next = await startAgent({ runtime: 'process', restartBackoffInitialMs: 300, restartBackoffMaxMs: 4000, nodeName: lp.peer.identity.name, dataDir: lp.dataDir, store: lp.peer.state.store, submitter: lp.peer.submitter, node: () => null, log: () => undefined })
    try {
      const startedAt = Date.now()
      await until(() => runningFor('stubborn').length === 0, 40_000, 'the deleted pod\'s processes gone')
      expect(Date.now() - startedAt).toBeLessThan(5000)
    } finally {
      await next!.stop()
    }
  }, 60_000)
})
