// Removing a pod from the process runtime while one of its containers is
// still starting: whatever that start spawns is stopped too, never left
// running outside the runtime's view.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ProcessRuntime } from '../../node/agent/process-runtime.js'
import { processStartTime } from '../../node/agent/process-tree.js'
import type { ContainerSpec, SandboxSpec } from '../../node/agent/runtime.js'

let root: string
let runtime: ProcessRuntime

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'shoal-runtime-removal-'))
  runtime = new ProcessRuntime({ nodeName: 'test-node', stateDir: join(root, 'state'), leaseDir: join(root, 'leases') })
})

afterAll(async () => {
  await runtime?.close()
  await rm(root, { recursive: true, force: true })
})

const sleeper = (name: string, attempt = 0): ContainerSpec => ({ name, image: 'sleep', args: ['654321'], imagePullPolicy: 'IfNotPresent', env: [], ports: [], mounts: [], attempt })

async function alive(pid: number): Promise<boolean> {
  return (await processStartTime(pid)) !== undefined
}

describe('removing a pod while a container starts', () => {
  it('stops the container whose start was in progress, and that start fails', async () => {
    const pod: SandboxSpec = { uid: 'uid-racing', namespace: 'default', name: 'racing', ports: [], dnsServers: [], dnsSearches: [], terminationGracePeriodMs: 1000 }
    const first = await runtime.startContainer(pod, sleeper('first'))
    const starting = runtime.startContainer(pod, sleeper('second')).then(
      (run) => ({ run, error: undefined }),
      (error: Error) => ({ run: undefined, error }),
    )
    await runtime.removePod(pod.uid, 1000)
    const second = await starting
    expect(await alive(Number(first.containerId.replace('process://', '')))).toBe(false)
    if (second.run !== undefined) expect(await alive(Number(second.run.containerId.replace('process://', '')))).toBe(false)
    else expect(second.error?.message).toMatch(/removed/)
    // Nothing of the pod is left for the agent to find either.
    expect((await runtime.listPods()).filter((p) => p.uid === pod.uid)).toEqual([])
  })
})
