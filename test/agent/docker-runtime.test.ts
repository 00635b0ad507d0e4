// The Docker runtime against a real engine (Podman's Docker API on our
// machines, see scripts/setup-podman.sh) with the local busybox image: pods
// sharing a network namespace, exits, limits, pulls, logs, adoption by a
// second instance, events, and removal leaving nothing behind.
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { DockerRuntime } from '../../node/agent/docker-runtime.js'
import type { ContainerObservation, ContainerSpec, LogLine, LogOptions, PodObservation, SandboxSpec } from '../../node/agent/runtime.js'
import { busyboxImage, countNodeContainers, findEngine, removeNodeContainers } from './podman.js'

const lookup = await findEngine()
if (lookup.skipReason !== undefined) console.log(`Docker runtime tests skipped: ${lookup.skipReason}`)
const engine = lookup.engine

// Unique per run: runs on a shared engine never see each other's containers.
const nodeName = `test-${process.pid}-${Date.now().toString(36)}`
const otherNodeName = `${nodeName}-other`
const hostDir = mkdtempSync(path.join(tmpdir(), 'shoal-docker-test-'))
const runtimes: DockerRuntime[] = []

function newRuntime(name = nodeName): DockerRuntime {
  const runtime = new DockerRuntime({ nodeName: name, stateDir: hostDir, docker: engine?.docker })
  runtimes.push(runtime)
  return runtime
}

function podSpec(name: string, extra: Partial<SandboxSpec> = {}): SandboxSpec {
  return { uid: randomUUID(), namespace: 'default', name, ports: [], dnsServers: [], dnsSearches: [], ...extra }
}

function containerSpec(name: string, args: string[], extra: Partial<ContainerSpec> = {}): ContainerSpec {
  return { name, image: busyboxImage, imagePullPolicy: 'IfNotPresent', args, env: [], ports: [], mounts: [], attempt: 0, ...extra }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

async function observed(runtime: DockerRuntime, uid: string): Promise<PodObservation | undefined> {
  return (await runtime.listPods()).find((pod) => pod.uid === uid)
}

async function exitedRun(runtime: DockerRuntime, uid: string, containerName: string, attempt = 0): Promise<ContainerObservation> {
  return waitFor(`${containerName} to exit`, async () => {
    const run = (await observed(runtime, uid))?.containers.find((c) => c.name === containerName && c.attempt === attempt)
    return run?.state === 'exited' ? run : undefined
  })
}

async function collectLogs(runtime: DockerRuntime, uid: string, containerName: string, options: Partial<LogOptions>): Promise<LogLine[]> {
  const lines: LogLine[] = []
  const all: LogOptions = { follow: false, previous: false, ...options }
  for await (const line of runtime.logs(uid, containerName, all, new AbortController().signal)) lines.push(line)
  return lines
}

afterAll(async () => {
  for (const runtime of runtimes) await runtime.close()
  if (engine !== undefined) await removeNodeContainers(engine.docker, [nodeName, otherNodeName])
  rmSync(hostDir, { recursive: true, force: true })
})

describe.skipIf(engine === undefined)('Docker runtime on a real engine', () => {
  const runtime = newRuntime()
  const pods: SandboxSpec[] = []

  it('reports the engine version', async () => {
    expect(await runtime.version()).toMatch(/^docker:\/\/\d+\.\d+/)
  })

  it('runs a pod of two containers that share the pod IP, its DNS settings and hostname', async () => {
    const pod = podSpec('web', { dnsServers: ['10.96.0.10'], dnsSearches: ['default.svc.cluster.local', 'svc.cluster.local'] })
    pods.push(pod)
    const sandbox = await runtime.ensureSandbox(pod)
    expect(sandbox.podIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
    expect(await runtime.ensureSandbox(pod)).toEqual(sandbox) // idempotent: the same infrastructure container

    const server = containerSpec('server', ['sh', '-c', 'echo hello-from-server > /www/index.html; exec httpd -f -p 8080 -h /www'])
    const started = await runtime.startContainer(pod, server)
    expect(started).toMatchObject({ name: 'server', attempt: 0, state: 'running', image: busyboxImage })
    expect(started.containerId).toMatch(/^docker:\/\/[0-9a-f]{64}$/)
    expect(started.imageId).toMatch(/^docker(-pullable)?:\/\/.+/)
    await runtime.startContainer(pod, containerSpec('client', ['sleep', '3600']))

    const fetched = await waitFor('the server to answer the client on 127.0.0.1', async () => {
      const result = await runtime.exec(pod.uid, 'client', ['wget', '-qO-', 'http://127.0.0.1:8080/'], 5_000)
      return result.exitCode === 0 ? result.output : undefined
    })
    expect(fetched).toBe('hello-from-server\n')
    const resolvConf = await runtime.exec(pod.uid, 'client', ['cat', '/etc/resolv.conf'], 5_000)
    expect(resolvConf.output).toContain('nameserver 10.96.0.10')
    expect(resolvConf.output).toMatch(/search default\.svc\.cluster\.local svc\.cluster\.local/)
    const addresses = await runtime.exec(pod.uid, 'client', ['ip', '-4', 'addr'], 5_000)
    expect(addresses.output).toContain(`inet ${sandbox.podIp}/`)

    const listed = await observed(runtime, pod.uid)
    expect(listed).toMatchObject({ namespace: 'default', name: 'web', sandbox: { uid: pod.uid, podIp: sandbox.podIp } })
    expect(listed?.containers.map((c) => [c.name, c.state])).toEqual([['client', 'running'], ['server', 'running']])
  })

  it('shares the pod name as hostname on Podman', async ({ skip }) => {
    const version = await engine!.docker.version()
    if (!(version.Components ?? []).some((component) => /podman/i.test(component.Name))) skip('Docker cannot share a UTS namespace')
    const hostname = await runtime.exec(pods[0]!.uid, 'client', ['hostname'], 5_000)
    expect(hostname.output.trim()).toBe('web')
  })

  it('execs with exit code and both streams, and times out clearly', async () => {
    const uid = pods[0]!.uid
    const result = await runtime.exec(uid, 'client', ['sh', '-c', 'echo out; echo err >&2; exit 4'], 5_000)
    expect(result.exitCode).toBe(4)
    expect(result.output).toContain('out\n')
    expect(result.output).toContain('err\n')
    const startedMs = Date.now()
    await expect(runtime.exec(uid, 'client', ['sleep', '5'], 300)).rejects.toMatchObject({ name: 'ExecTimeoutError' })
    expect(Date.now() - startedMs).toBeLessThan(2_000)
    await expect(runtime.exec(uid, 'nobody', ['true'], 1_000)).rejects.toMatchObject({ name: 'ContainerNotFoundError' })
  })

  it('reports exits with code and reason, and tells onChange within 1 s', async () => {
    const pod = podSpec('exits')
    pods.push(pod)
    const changes: { uid: string; containerName: string; atMs: number }[] = []
    runtime.onChange((uid, containerName) => changes.push({ uid, containerName, atMs: Date.now() }))
    await sleep(200) // the event subscription is made
    await runtime.startContainer(pod, containerSpec('fails', ['sh', '-c', 'sleep 1; exit 3']))
    await runtime.startContainer(pod, containerSpec('succeeds', ['true']))

    const failed = await exitedRun(runtime, pod.uid, 'fails')
    expect(failed).toMatchObject({ state: 'exited', exitCode: 3, reason: 'Error' })
    const succeeded = await exitedRun(runtime, pod.uid, 'succeeds')
    expect(succeeded).toMatchObject({ state: 'exited', exitCode: 0, reason: 'Completed' })
    expect(Date.parse(failed.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(failed.startedAt!) + 900)

    const told = await waitFor('onChange for the exit', async () => changes.find((c) => c.uid === pod.uid && c.containerName === 'fails' && c.atMs >= Date.parse(failed.finishedAt!)), 2_000)
    expect(told.atMs - Date.parse(failed.finishedAt!)).toBeLessThan(1_000)
  })

  it('enforces the memory limit and sets the CPU limit', async () => {
    const pod = podSpec('limits')
    pods.push(pod)
    const limitBytes = 16 * 1024 * 1024
    // dd allocates its whole block: 64 MiB cannot fit in 16 MiB, 4 MiB can.
    await runtime.startContainer(pod, containerSpec('hog', ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'], { memoryLimitBytes: limitBytes, cpuLimitMillis: 500 }))
    await runtime.startContainer(pod, containerSpec('modest', ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=4M', 'count=1'], { memoryLimitBytes: limitBytes }))
    const hog = await exitedRun(runtime, pod.uid, 'hog')
    // Killed by the kernel (SIGKILL). Podman 4.3 on cgroup v1 does not set OOMKilled, so the reason is Error there.
    expect(hog.exitCode).toBe(137)
    expect(['OOMKilled', 'Error']).toContain(hog.reason)
    expect(await exitedRun(runtime, pod.uid, 'modest')).toMatchObject({ exitCode: 0, reason: 'Completed' })
    const inspected = await engine!.docker.getContainer(hog.containerId.replace('docker://', '')).inspect()
    expect(inspected.HostConfig.Memory).toBe(limitBytes)
    expect(inspected.HostConfig.NanoCpus).toBe(500_000_000)
  })

  it('gives the image errors their waiting reasons, quickly', async () => {
    const pod = podSpec('images')
    pods.push(pod)
    const missing = 'localhost/shoal/does-not-exist:1'
    const startedMs = Date.now()
    const pullError = await runtime.startContainer(pod, containerSpec('missing', ['true'], { image: missing })).catch((err: unknown) => err)
    expect(pullError).toMatchObject({ name: 'ImagePullError', waitingReason: 'ErrImagePull' })
    // The engine's own words, not just ours.
    expect((pullError as Error).message).toMatch(new RegExp(`failed to pull image "${missing}": .*(registry|connect|refused|not found|unknown)`, 'i'))
    expect(Date.now() - startedMs).toBeLessThan(15_000)
    await expect(runtime.startContainer(pod, containerSpec('never', ['true'], { image: missing, imagePullPolicy: 'Never' }))).rejects.toMatchObject({ name: 'ImageNeverPullError', waitingReason: 'ErrImageNeverPull' })
    await expect(runtime.startContainer(pod, containerSpec('bad', ['true'], { image: 'Not A Valid/Image!' }))).rejects.toMatchObject({ name: 'InvalidImageNameError', waitingReason: 'InvalidImageName' })
    await expect(runtime.startContainer(pod, containerSpec('nocommand', ['no-such-program']))).rejects.toMatchObject({ name: 'RunContainerError' })
    // A local-only image (localhost/) with policy Always runs the local copy: no registry could serve it.
    const always = await runtime.startContainer(pod, containerSpec('always', ['sleep', '3600'], { imagePullPolicy: 'Always' }))
    expect(always.state).toBe('running')
  })

  it('applies command, args, env, workingDir and hostPath mounts', async () => {
    const pod = podSpec('spec')
    pods.push(pod)
    const writable = path.join(hostDir, 'data')
    const readOnly = path.join(hostDir, 'config')
    for (const dir of [writable, readOnly]) rmSync(dir, { recursive: true, force: true })
    await import('node:fs/promises').then((fs) => Promise.all([fs.mkdir(writable), fs.mkdir(readOnly)]))
    writeFileSync(path.join(readOnly, 'settings'), 'from-host\n')
    await runtime.startContainer(pod, containerSpec('main', ['sleep', '3600'], {
      env: [{ name: 'A', value: '1' }, { name: 'B', value: 'two words' }, { name: 'A', value: '3' }],
      workingDir: '/data',
      mounts: [
        { name: 'data', mountPath: '/data', hostPath: writable, readOnly: false },
        { name: 'config', mountPath: '/config', hostPath: readOnly, readOnly: true },
      ],
    }))
    const script = 'echo "$A|$B"; pwd; cat /config/settings; echo written > out.txt; touch /config/x 2>/dev/null || echo read-only'
    const result = await runtime.exec(pod.uid, 'main', ['sh', '-c', script], 5_000)
    expect(result.output).toBe('3|two words\n/data\nfrom-host\nread-only\n')
    expect(readFileSync(path.join(writable, 'out.txt'), 'utf8')).toBe('written\n')

    // `command` replaces the image's entrypoint and its default arguments (the image's CMD is `sh`).
    await runtime.startContainer(pod, containerSpec('commanded', [], { command: ['echo', 'from-command'], args: undefined }))
    await exitedRun(runtime, pod.uid, 'commanded')
    expect((await collectLogs(runtime, pod.uid, 'commanded', {})).map((l) => l.text)).toEqual(['from-command'])
  })

  it('serves logs with tailLines, previous and follow', async () => {
    const pod = podSpec('logs')
    pods.push(pod)
    const run = (attempt: number, script: string): ContainerSpec => containerSpec('app', ['sh', '-c', script], { attempt })
    await runtime.startContainer(pod, run(0, 'for i in 1 2 3 4 5; do echo first-$i; done; echo oops >&2'))
    await exitedRun(runtime, pod.uid, 'app', 0)
    const lines = await collectLogs(runtime, pod.uid, 'app', {})
    expect(lines.map((l) => `${l.stream}:${l.text}`)).toEqual(['stdout:first-1', 'stdout:first-2', 'stdout:first-3', 'stdout:first-4', 'stdout:first-5', 'stderr:oops'])
    expect(lines[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/)
    expect((await collectLogs(runtime, pod.uid, 'app', { tailLines: 2 })).map((l) => l.text)).toEqual(['first-5', 'oops'])

    await runtime.startContainer(pod, run(1, 'echo second; sleep 3600'))
    const previous = await collectLogs(runtime, pod.uid, 'app', { previous: true })
    expect(previous.map((l) => l.text)).toContain('first-5')
    expect(previous.map((l) => l.text)).not.toContain('second')

    // Attempt 2 keeps attempt 1 (its `previous`) and removes attempt 0.
    const followedRun = await runtime.startContainer(pod, run(2, 'echo before; sleep 1; echo after-call; sleep 3600'))
    expect(followedRun.attempt).toBe(2)
    expect((await observed(runtime, pod.uid))?.containers.map((c) => c.attempt)).toEqual([1, 2])

    const abort = new AbortController()
    const followed: { text: string; atMs: number }[] = []
    const calledMs = Date.now()
    for await (const line of runtime.logs(pod.uid, 'app', { follow: true, previous: false }, abort.signal)) {
      followed.push({ text: line.text, atMs: Date.now() })
      if (line.text === 'after-call') abort.abort()
    }
    expect(followed.map((l) => l.text)).toEqual(['before', 'after-call'])
    expect(followed[1]!.atMs - calledMs).toBeGreaterThan(500) // written after the call, and still delivered
  })

  it('stops with SIGTERM, then SIGKILL after the grace period', async () => {
    const pod = podSpec('stops')
    pods.push(pod)
    await runtime.startContainer(pod, containerSpec('polite', ['sh', '-c', 'trap "echo got-term; exit 0" TERM; while true; do sleep 0.1; done']))
    await runtime.startContainer(pod, containerSpec('stubborn', ['sleep', '3600'])) // PID 1 without a handler ignores SIGTERM
    await sleep(300)
    let startedMs = Date.now()
    await runtime.stopContainer(pod.uid, 'polite', 10_000)
    expect(Date.now() - startedMs).toBeLessThan(3_000)
    expect(await exitedRun(runtime, pod.uid, 'polite')).toMatchObject({ exitCode: 0 })
    expect((await collectLogs(runtime, pod.uid, 'polite', {})).map((l) => l.text)).toContain('got-term')
    startedMs = Date.now()
    await runtime.stopContainer(pod.uid, 'stubborn', 1_000)
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(900)
    expect(await exitedRun(runtime, pod.uid, 'stubborn')).toMatchObject({ exitCode: 137 })
    await runtime.stopContainer(pod.uid, 'stubborn', 1_000) // already stopped: nothing to do
    await runtime.stopContainer(pod.uid, 'unknown', 1_000)
  })

  it('restarts a dead sandbox and stops the containers stranded in its old namespace', async () => {
    const pod = podSpec('sandbox-dies')
    pods.push(pod)
    await runtime.startContainer(pod, containerSpec('app', ['sleep', '3600']))
    const [infra] = await engine!.docker.listContainers({ all: true, filters: JSON.stringify({ label: [`io.shoal.pod.uid=${pod.uid}`, 'io.shoal.container.name=POD'] }) })
    await engine!.docker.getContainer(infra!.Id).kill()
    await waitFor('the pod to lose its sandbox', async () => ((await observed(runtime, pod.uid))?.sandbox === undefined ? true : undefined))

    const sandbox = await runtime.ensureSandbox(pod)
    expect(sandbox.podIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
    expect(await exitedRun(runtime, pod.uid, 'app', 0)).toMatchObject({ state: 'exited' })
    await runtime.startContainer(pod, containerSpec('app', ['sleep', '3600'], { attempt: 1 }))
    const addresses = await runtime.exec(pod.uid, 'app', ['ip', '-4', 'addr'], 5_000)
    expect(addresses.output).toContain(`inet ${sandbox.podIp}/`)
  })

  it('lets a second instance with the same node name adopt the pods, and no other node see them', async () => {
    const mine = await runtime.listPods()
    const adopting = await newRuntime().listPods()
    const summary = (pods: PodObservation[]): unknown => pods.map((pod) => ({ ...pod, containers: pod.containers.map((c) => [c.name, c.attempt, c.containerId, c.state]) })).sort((a, b) => (a.uid < b.uid ? -1 : 1))
    expect(summary(adopting)).toEqual(summary(mine))
    expect(mine.map((pod) => pod.uid).sort()).toEqual(pods.map((pod) => pod.uid).sort())
    expect(await newRuntime(otherNodeName).listPods()).toEqual([])
  })

  it('removes pods entirely', async () => {
    const before = await countNodeContainers(engine!.docker, nodeName)
    expect(before).toBeGreaterThan(pods.length)
    await Promise.all(pods.map((pod) => runtime.removePod(pod.uid, 1_000)))
    expect(await countNodeContainers(engine!.docker, nodeName)).toBe(0)
    expect(await runtime.listPods()).toEqual([])
    await runtime.removePod(pods[0]!.uid, 1_000) // gone: nothing to do
  })
})
