// The process runtime against real processes: pods get their own loopback
// IP and ports, exits are reported with codes and at once, logs are served
// (tail, since, previous, follow, rotation), a missing program says what was
// looked for, deleting a pod leaves no process behind, and a runtime whose
// process was SIGKILLed is adopted by the next one on the same state dir.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ProcessRuntime } from '../../node/agent/process-runtime.js'
import { processGroupMembers, processStartTime } from '../../node/agent/process-tree.js'
import type { ContainerObservation, ContainerSpec, LogLine, LogOptions, SandboxSpec } from '../../node/agent/runtime.js'

let root: string
let leaseDir: string
const runtimes: ProcessRuntime[] = []
const children: ChildProcess[] = []
let podCount = 0

function newRuntime(stateDir: string, extra: Partial<ConstructorParameters<typeof ProcessRuntime>[0]> = {}): ProcessRuntime {
  const runtime = new ProcessRuntime({ nodeName: 'test-node', stateDir, leaseDir, ...extra })
  runtimes.push(runtime)
  return runtime
}

function pod(name: string, ports: SandboxSpec['ports'] = []): SandboxSpec {
  podCount++
  return { uid: `uid-${podCount}-${name}`, namespace: 'default', name, ports, dnsServers: [], dnsSearches: [] }
}

function container(fields: Partial<ContainerSpec> & { image: string }): ContainerSpec {
  return { name: 'main', imagePullPolicy: 'IfNotPresent', env: [], ports: [], mounts: [], attempt: 0, ...fields }
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

async function observed(runtime: ProcessRuntime, uid: string, name = 'main'): Promise<ContainerObservation | undefined> {
  const found = (await runtime.listPods()).find((p) => p.uid === uid)
  return found?.containers.filter((c) => c.name === name).at(-1)
}

const exited = (runtime: ProcessRuntime, uid: string, name = 'main') =>
  waitFor(`${name} of ${uid} to exit`, async () => {
    const c = await observed(runtime, uid, name)
    return c?.state === 'exited' ? c : undefined
  })

async function collect(runtime: ProcessRuntime, uid: string, options: Partial<LogOptions>, name = 'main'): Promise<LogLine[]> {
  const lines: LogLine[] = []
  for await (const line of runtime.logs(uid, name, { follow: false, previous: false, ...options }, new AbortController().signal)) lines.push(line)
  return lines
}

const pidOf = (c: ContainerObservation): number => Number(c.containerId.replace('process://', ''))

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'shoal-process-runtime-'))
  leaseDir = join(root, 'leases')
})

afterAll(async () => {
  for (const runtime of runtimes) {
    for (const p of await runtime.listPods()) await runtime.removePod(p.uid, 0)
    await runtime.close()
  }
  for (const child of children) child.kill('SIGKILL')
  await rm(root, { recursive: true, force: true })
})

describe('ProcessRuntime', () => {
  it('gives each pod its own loopback IP, exports POD_IP and PORT, and the pod serves on them', async () => {
    const runtime = newRuntime(join(root, 'peer-a'))
    const web = pod('web', [{ name: 'http-alt', containerPort: 18080, protocol: 'TCP' }])
    const other = pod('other')
    const [a, b] = await Promise.all([runtime.ensureSandbox(web), runtime.ensureSandbox(other)])
    expect(a.podIp).toMatch(/^127\.88\.\d+\.\d+$/)
    expect(b.podIp).not.toBe(a.podIp)
    const server = `require('http').createServer((q, s) => s.end(JSON.stringify({ ip: process.env.POD_IP, port: process.env.PORT, named: process.env.PORT_HTTP_ALT, host: process.env.HOSTNAME, cwd: process.cwd() }))).listen(+process.env.PORT, process.env.POD_IP)`
    await runtime.startContainer(web, container({ image: process.execPath, args: ['-e', server], ports: web.ports }))
    const body = await waitFor('the pod to answer', async () => {
      try {
        return (await (await fetch(`http://${a.podIp}:18080/`)).json()) as Record<string, string>
      } catch {
        return undefined
      }
    })
    expect(body).toEqual({ ip: a.podIp, port: '18080', named: '18080', host: 'web', cwd: join(root, 'peer-a', 'pods', web.uid, 'work') })
    expect((await observed(runtime, web.uid))?.state).toBe('running')
  })

  it('reports exit codes and reasons, and tells onChange within a second', async () => {
    const runtime = newRuntime(join(root, 'peer-exits'))
    const changes: { uid: string; at: number }[] = []
    runtime.onChange((uid) => changes.push({ uid, at: Date.now() }))
    const failing = pod('failing')
    const started = Date.now()
    await runtime.startContainer(failing, container({ image: 'sh', args: ['-c', 'sleep 0.2; exit 3'] }))
    expect(await exited(runtime, failing.uid)).toMatchObject({ exitCode: 3, reason: 'Error' })
    const change = changes.find((c) => c.uid === failing.uid)
    expect(change).toBeDefined()
    expect(change!.at - started).toBeLessThan(1_200)
    const ok = pod('ok')
    await runtime.startContainer(ok, container({ image: 'docker.io/library/true:latest' }))
    expect(await exited(runtime, ok.uid)).toMatchObject({ exitCode: 0, reason: 'Completed' })
    const killed = pod('killed')
    await runtime.startContainer(killed, container({ image: 'sh', args: ['-c', 'kill -9 $$'] }))
    expect(await exited(runtime, killed.uid)).toMatchObject({ exitCode: 137, reason: 'Error' })
  })

  it('says which program is missing and where it looked', async () => {
    const runtime = newRuntime(join(root, 'peer-errors'), { searchPath: '/usr/bin:/bin' })
    const p = pod('missing')
    for (const imagePullPolicy of ['IfNotPresent', 'Never'] as const) {
      const error = await runtime.startContainer(p, container({ image: 'docker.io/kubeguide/redis-master:v1', imagePullPolicy })).catch((e: Error) => e)
      expect(error).toMatchObject({ name: 'ImagePullError', waitingReason: 'ErrImagePull' })
      expect((error as Error).message).toContain('program "redis-master" not found on PATH (/usr/bin:/bin)')
      expect((error as Error).message).toContain('absolute path')
    }
    const notExecutable = join(root, 'not-executable.sh')
    await writeFile(notExecutable, '#!/bin/sh\necho hi\n')
    await chmod(notExecutable, 0o644)
    const error = await runtime.startContainer(p, container({ image: notExecutable })).catch((e: Error) => e)
    expect(error).toMatchObject({ name: 'RunContainerError' })
    const missingCommand = await runtime.startContainer(p, container({ image: 'sh', command: ['no-such-program-here'] })).catch((e: Error) => e)
    expect(missingCommand).toMatchObject({ name: 'RunContainerError' })
    expect((missingCommand as Error).message).toContain('"no-such-program-here" not found on PATH')
  })

  it('serves logs with tailLines, sinceMs and previous', async () => {
    const runtime = newRuntime(join(root, 'peer-logs'))
    const p = pod('logs')
    await runtime.startContainer(p, container({ image: 'sh', args: ['-c', 'echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three; sleep 0.4; echo four'] }))
    await exited(runtime, p.uid)
    const all = await collect(runtime, p.uid, {})
    expect(all.map((l) => `${l.stream}:${l.text}`)).toEqual(['stdout:one', 'stderr:two', 'stdout:three', 'stdout:four'])
    expect(all[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/)
    expect((await collect(runtime, p.uid, { tailLines: 2 })).map((l) => l.text)).toEqual(['three', 'four'])
    // stdout and stderr are separate pipes: their lines are in order across streams only when apart in time (as with Docker).
    const sinceMs = Date.parse(all[2]!.time) + 200
    expect((await collect(runtime, p.uid, { sinceMs })).map((l) => l.text)).toEqual(['four'])
    await runtime.startContainer(p, container({ image: 'sh', args: ['-c', 'echo second run'], attempt: 1 }))
    await waitFor('the second run to exit', async () => ((await observed(runtime, p.uid))?.attempt === 1 && (await observed(runtime, p.uid))?.state === 'exited' ? true : undefined))
    expect((await collect(runtime, p.uid, {})).map((l) => l.text)).toEqual(['second run'])
    expect((await collect(runtime, p.uid, { previous: true })).map((l) => l.text)).toEqual(['one', 'two', 'three', 'four'])
  })

  it('follows a run: yields lines printed after the call and ends when the run exits', async () => {
    const runtime = newRuntime(join(root, 'peer-follow'))
    const p = pod('follow')
    await runtime.startContainer(p, container({ image: 'sh', args: ['-c', 'echo early; sleep 0.5; echo late; sleep 0.2'] }))
    const called = Date.now()
    const seen: { text: string; at: number }[] = []
    for await (const line of runtime.logs(p.uid, 'main', { follow: true, previous: false }, new AbortController().signal)) seen.push({ text: line.text, at: Date.now() })
    expect(seen.map((s) => s.text)).toEqual(['early', 'late'])
    expect(seen[1]!.at - called).toBeGreaterThanOrEqual(300)
    expect((await observed(runtime, p.uid))?.state).toBe('exited')
  })

  it('caps and rotates log files, keeping the newest lines', async () => {
    const stateDir = join(root, 'peer-rotate')
    const runtime = newRuntime(stateDir, { logFileBounds: { fileBytesMax: 8 * 1024, filesMax: 2 } })
    const p = pod('chatty')
    const script = "for (let i = 0; i < 3000; i++) console.log('line ' + String(i).padStart(5, '0'))"
    await runtime.startContainer(p, container({ image: process.execPath, args: ['-e', script] }))
    await exited(runtime, p.uid)
    const runs = join(stateDir, 'pods', p.uid, 'runs')
    const logs = readdirSync(runs).filter((n) => n.includes('.log'))
    expect(logs.sort()).toEqual(['main.0.log', 'main.0.log.1'])
    for (const name of logs) expect(statSync(join(runs, name)).size).toBeLessThanOrEqual(8 * 1024)
    const lines = await collect(runtime, p.uid, {})
    expect(lines.at(-1)!.text).toBe('line 02999')
    expect(lines.length).toBeLessThan(3000)
    // What is kept is a contiguous run of the newest lines.
    const first = Number(lines[0]!.text.slice(5))
    expect(lines.map((l) => l.text)).toEqual(Array.from({ length: 3000 - first }, (_, i) => `line ${String(first + i).padStart(5, '0')}`))
  })

  it('exec runs with the container env and a timeout', async () => {
    const runtime = newRuntime(join(root, 'peer-exec'))
    const p = pod('exec')
    const { podIp } = await runtime.ensureSandbox(p)
    await runtime.startContainer(p, container({ image: 'sleep', args: ['30'], env: [{ name: 'GREETING', value: 'hello' }] }))
    expect(await runtime.exec(p.uid, 'main', ['sh', '-c', 'echo $GREETING $POD_IP; exit 4'], 5_000)).toEqual({ exitCode: 4, output: `hello ${podIp}\n` })
    await expect(runtime.exec(p.uid, 'main', ['sleep', '10'], 200)).rejects.toMatchObject({ name: 'ExecTimeoutError' })
    expect((await runtime.exec(p.uid, 'main', ['no-such-command'], 1_000)).exitCode).toBe(127)
  })

  it('removePod stops the whole process tree, deletes the files and frees the IP', async () => {
    const stateDir = join(root, 'peer-remove')
    const runtime = newRuntime(stateDir)
    const p = pod('tree')
    const { podIp } = await runtime.ensureSandbox(p)
    const started = await runtime.startContainer(p, container({ image: 'sh', args: ['-c', 'sleep 1000 & sleep 1000'] }))
    const members = await waitFor('both sleeps', async () => {
      const pids = await processGroupMembers(pidOf(started))
      return pids.length >= 3 ? pids : undefined
    })
    expect(existsSync(join(leaseDir, podIp))).toBe(true)
    await runtime.removePod(p.uid, 2_000)
    for (const pid of members) expect(await processStartTime(pid)).toBeUndefined()
    expect(existsSync(join(stateDir, 'pods', p.uid))).toBe(false)
    expect(existsSync(join(leaseDir, podIp))).toBe(false)
    expect(await runtime.listPods()).toEqual([])
  })

  it('adopts the pods of a SIGKILLed runtime: same pid and IP, logs still captured, stoppable; no other runtime gets that IP', async () => {
    const stateDir = join(root, 'peer-adopt')
    const uid = 'uid-adopted'
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'process-runtime-child.ts'), stateDir, leaseDir, uid], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(child)
    const [firstLine] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string]
    const before = JSON.parse(firstLine) as { podIp: string; containerId: string }
    child.kill('SIGKILL')
    await once(child, 'exit')
    // Output written while no agent runs waits in the FIFO.
    await new Promise((resolve) => setTimeout(resolve, 300))
    const runtime = newRuntime(stateDir)
    const [adopted] = await runtime.listPods()
    expect(adopted).toMatchObject({ uid, sandbox: { podIp: before.podIp } })
    expect(adopted!.containers).toMatchObject([{ name: 'ticker', containerId: before.containerId, state: 'running' }])
    const abort = new AbortController()
    const ticks: number[] = []
    for await (const line of runtime.logs(uid, 'ticker', { follow: true, previous: false }, abort.signal)) {
      ticks.push(Number(line.text.replace('tick ', '')))
      if (ticks.length >= 8) abort.abort()
    }
    expect(ticks.slice(0, 8)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    const other = newRuntime(join(root, 'peer-other'))
    const ips = await Promise.all(Array.from({ length: 20 }, (_, i) => other.ensureSandbox(pod(`other-${i}`)).then((s) => s.podIp)))
    expect(new Set(ips).size).toBe(20)
    expect(ips).not.toContain(before.podIp)
    const pid = Number(before.containerId.replace('process://', ''))
    await runtime.stopContainer(uid, 'ticker', 1_000)
    expect(await processStartTime(pid)).toBeUndefined()
    expect(await observed(runtime, uid, 'ticker')).toMatchObject({ state: 'exited', exitCode: 137, reason: 'ContainerStatusUnknown' })
  })
})
