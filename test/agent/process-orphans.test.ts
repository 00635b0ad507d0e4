// A run started by an agent that was SIGKILLed before it wrote the run's
// record: no record names the process, so the restarted runtime cannot adopt
// it. It must kill it (and only it), or the container's next start finds the
// pod's port taken and crash-loops.
import { spawn } from 'node:child_process'
import { mkdtemp, rm, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runMarker, runMarkerEnv, runtimeIdOf } from '../../node/agent/process-orphans.js'
import { runBase, runFiles } from '../../node/agent/process-records.js'
import { ProcessRuntime } from '../../node/agent/process-runtime.js'
import { processStartTime } from '../../node/agent/process-tree.js'
import type { ContainerSpec, SandboxSpec } from '../../node/agent/runtime.js'

let root: string | undefined
const runtimes: ProcessRuntime[] = []

afterAll(async () => {
  // The last runtime is the live one: it stops what the pod still runs. The first was closed already.
  await runtimes.at(-1)?.removePod('uid-orphan', 0).catch(() => {})
  await runtimes.at(-1)?.close()
  if (root !== undefined) await rm(root, { recursive: true, force: true })
})

const sleeper = (name: string): ContainerSpec => ({ name, image: 'sleep', args: ['765432'], imagePullPolicy: 'IfNotPresent', env: [], ports: [], mounts: [], attempt: 0 })
const pidOf = (containerId: string): number => Number(containerId.replace('process://', ''))
const alive = async (pid: number): Promise<boolean> => (await processStartTime(pid)) !== undefined

async function until(predicate: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!(await predicate())) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 50))
  }
  return true
}

describe('adoption after an agent died between spawn and record', () => {
  it('kills the unrecorded run, keeps the recorded one, and leaves other runtimes\' runs alone', async () => {
    root = await mkdtemp(join(tmpdir(), 'shoal-orphans-'))
    const stateDir = join(root, 'state')
    const options = { nodeName: 'n', stateDir, leaseDir: join(root, 'leases'), log: () => {} }
    const first = new ProcessRuntime(options)
    runtimes.push(first)
    const pod: SandboxSpec = { uid: 'uid-orphan', namespace: 'default', name: 'orphan', ports: [], dnsServers: [], dnsSearches: [], terminationGracePeriodMs: 1000 }
    const kept = pidOf((await first.startContainer(pod, sleeper('kept'))).containerId)
    const lost = pidOf((await first.startContainer(pod, sleeper('lost'))).containerId)
    // As if the agent died before writing the second run's record.
    await unlink(runFiles(runBase(stateDir, pod.uid, 'lost', 0)).record)
    // A run of another runtime on this host (another peer): same pod uid and container, another state dir.
    const foreignMarker = runMarker(runtimeIdOf(join(root, 'other-state')), pod.uid, 'lost', 0)
    const foreign = spawn('sleep', ['765433'], { detached: true, stdio: 'ignore', env: { ...process.env, [runMarkerEnv]: foreignMarker } })
    foreign.unref()
    await first.close()

    const restarted = new ProcessRuntime(options)
    runtimes.push(restarted)
    await restarted.listPods()
    expect(await until(async () => !(await alive(lost)), 5000)).toBe(true)
    expect(await alive(kept)).toBe(true)
    expect(await alive(foreign.pid!)).toBe(true)
    process.kill(-foreign.pid!, 'SIGKILL')
  })
})
