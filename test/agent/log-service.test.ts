// GET pods/NAME/log served by a peer that does not run the pod: two real peers
// in this process (one cluster, real libp2p, real Raft), the pod's containers
// real processes of peer B's process runtime, and the HTTP API of peer A with
// the log service, read like kubectl reads it.
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { Writable } from 'node:stream'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { logChunkBytesMax, logStreamWindowBytes } from '../../net/log-stream.js'
import { PodLogService, chooseRun } from '../../node/agent/log-service.js'
import { ProcessRuntime } from '../../node/agent/process-runtime.js'
import type { ContainerObservation, ContainerSpec, LogLine, LogOptions, SandboxSpec } from '../../node/agent/runtime.js'
import { ApiMetrics } from '../../node/api/metrics.js'
import { durationSeconds } from '../../node/cli/write-commands.js'
import { servePodLog } from '../../node/api/pod-log.js'
import { prepareCreate } from '../../node/api/prepare.js'
import { startApiServer } from '../../node/api/server.js'
import { submit } from '../../node/api/submit.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import { Peer, defaultPeerOptions } from '../../node/peer.js'
import { refOf } from '../../node/store/commands.js'
import { until } from '../node/process-cluster.js'

let root = ''
let a: Peer
let b: Peer
let runtimeB: ProcessRuntime
let serviceA: PodLogService
let serviceB: PodLogService
let api: Server
let apiUrl = ''
/** Log readers open on peer B's runtime right now. */
let openReaders = 0
/** Bytes of log text peer B's runtime has handed out. */
let pulledBytes = 0
const streamsServedMax = 2
const pods: ApiObject[] = []

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'shoal-logs-'))
  const options = (name: string) => ({ ...defaultPeerOptions, dataDir: join(root, name), name, listen: ['/ip4/127.0.0.1/tcp/0'], apiHost: '127.0.0.1', apiPort: 0 })
  a = await Peer.start(options('log-a'))
  await a.api
  b = await Peer.start({ ...options('log-b'), join: a.joinToken })
  await until(() => a.registry.peerByName('log-b') !== undefined && a.state.store.get({ apiVersion: 'v1', kind: 'Namespace', name: 'default' }) !== undefined, 30_000, 'peer B registered and the default namespace')
  runtimeB = new ProcessRuntime({ nodeName: 'log-b', stateDir: join(root, 'runtime-b'), leaseDir: join(root, 'leases') })
  const logs = runtimeB.logs.bind(runtimeB)
  runtimeB.logs = async function* (uid: string, name: string, o: LogOptions, signal: AbortSignal): AsyncGenerator<LogLine> {
    openReaders++
    try {
      for await (const line of logs(uid, name, o, signal)) {
        pulledBytes += line.text.length + 1
        yield line
      }
    } finally {
      openReaders--
    }
  }
  const peerIdOf = (peer: Peer) => (name: string) => peer.registry.peerByName(name)?.peerId
  // The peers' own log services give way to the ones under test (one handler per protocol on a host).
  await a.podLogs?.stop()
  await b.podLogs?.stop()
  serviceA = new PodLogService({ runtime: null, nodeName: 'log-a', host: a.host, peerIdOfNode: peerIdOf(a) })
  serviceB = new PodLogService({ runtime: runtimeB, nodeName: 'log-b', host: b.host, peerIdOfNode: peerIdOf(b), streamsServedMax })
  await serviceA.start()
  await serviceB.start()
  const started = await startApiServer({
    host: '127.0.0.1',
    port: 0,
    tls: null,
    adminToken: () => null,
    kinds: a.state.store.kinds,
    resources: { ...a.resourceContext(), podLogs: serviceA },
    metrics: new ApiMetrics(a.driver, null),
    shoalVersion: 'test',
    ready: () => true,
    shoalRoutes: async () => false,
  })
  api = started.server
  apiUrl = `http://${started.address}`
})

afterAll(async () => {
  for (const pod of pods) await runtimeB?.removePod(pod.metadata.uid ?? '', 100).catch(() => undefined)
  await runtimeB?.close()
  await new Promise<void>((resolve) => (api === undefined ? resolve() : api.close(() => resolve())))
  await serviceA?.stop()
  await serviceB?.stop()
  await b?.stop()
  await a?.stop()
  await rm(root, { recursive: true, force: true })
})

async function createPod(name: string, nodeName: string | undefined, containers = ['app']): Promise<ApiObject> {
  const def = a.state.store.kinds.byKind('v1', 'Pod')!
  const spec = { schedulerName: 'log-test', ...(nodeName === undefined ? {} : { nodeName }), containers: containers.map((c) => ({ name: c, image: 'sh' })) }
  const prepared = prepareCreate(def, { metadata: { name }, spec }, 'default', 'Strict', new Date().toISOString()).object
  const outcome = (await submit(a.submitter, { op: 'obj.create', object: prepared })).outcomes[0]!
  if (!outcome.ok) throw new Error(JSON.stringify(outcome.failure))
  pods.push(outcome.object!)
  return outcome.object!
}

async function setContainerStatuses(pod: ApiObject, containerStatuses: unknown[]): Promise<void> {
  const current = a.state.store.get(refOf(pod))!
  const outcome = (await submit(a.submitter, { op: 'obj.update', subresource: 'status', object: { ...current, status: { ...(current as { status?: object }).status, containerStatuses } } as ApiObject })).outcomes[0]!
  if (!outcome.ok) throw new Error(JSON.stringify(outcome.failure))
}

/** One run of `script` (sh -c) as container `name` of the pod on peer B, in `dir`. */
async function run(pod: ApiObject, name: string, attempt: number, script: string, dir: string): Promise<ContainerObservation> {
  const sandbox: SandboxSpec = { uid: pod.metadata.uid ?? '', namespace: 'default', name: pod.metadata.name ?? '', ports: [], dnsServers: [], dnsSearches: [] }
  const container: ContainerSpec = { name, image: 'sh', imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', script], env: [], ports: [], mounts: [], attempt, workingDir: dir }
  await mkdir(dir, { recursive: true })
  return runtimeB.startContainer(sandbox, container)
}

async function runState(pod: ApiObject, name: string, attempt: number): Promise<string | undefined> {
  const observed = (await runtimeB.listPods()).find((p) => p.uid === pod.metadata.uid)
  return observed?.containers.find((c) => c.name === name && c.attempt === attempt)?.state
}

const logPath = (pod: string, query = ''): string => `/api/v1/namespaces/default/pods/${pod}/log${query === '' ? '' : `?${query}`}`

async function get(path: string): Promise<{ status: number; text: string; contentType: string | null }> {
  const res = await fetch(`${apiUrl}${path}`)
  return { status: res.status, text: await res.text(), contentType: res.headers.get('content-type') }
}

async function message(path: string): Promise<{ status: number; message: string }> {
  const answer = await get(path)
  return { status: answer.status, message: (JSON.parse(answer.text) as { message: string }).message }
}

/** A streamed answer, read as it arrives. */
async function open(path: string, signal?: AbortSignal): Promise<{ status: number; readUntil: (want: (text: string) => boolean) => Promise<string>; rest: () => Promise<string> }> {
  const res = await fetch(`${apiUrl}${path}`, signal === undefined ? {} : { signal })
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let text = ''
  return {
    status: res.status,
    readUntil: async (want) => {
      while (!want(text)) {
        const { value, done } = await reader.read()
        if (done) throw new Error(`the answer ended with ${JSON.stringify(text)}`)
        text += decoder.decode(value, { stream: true })
      }
      return text
    },
    rest: async () => {
      for (let r = await reader.read(); !r.done; r = await reader.read()) text += decoder.decode(r.value, { stream: true })
      return text
    },
  }
}

describe('pod logs from any peer', () => {
  it('follows a pod that runs on peer B, asked on peer A, including a line written after the request', async () => {
    const pod = await createPod('follow', 'log-b')
    const dir = join(root, 'follow')
    await run(pod, 'app', 0, 'echo one; echo two; while [ ! -e go ]; do sleep 0.02; done; echo three; sleep 0.3', dir)
    const log = await open(logPath('follow', 'follow=true'))
    expect(log.status).toBe(200)
    expect(await log.readUntil((t) => t === 'one\ntwo\n')).toBe('one\ntwo\n')
    await new Promise((r) => setTimeout(r, 100))
    const writtenMs = Date.now()
    await writeFile(join(dir, 'go'), '')
    expect(await log.readUntil((t) => t.endsWith('three\n'))).toBe('one\ntwo\nthree\n')
    expect(Date.now() - writtenMs).toBeLessThan(1500)
    // The answer ends when the container's run does.
    expect(await log.rest()).toBe('one\ntwo\nthree\n')
    await until(() => openReaders === 0 && serviceB.servedStreams === 0, 5000, 'the readers on peer B to close')
  })

  it('applies tailLines, timestamps, limitBytes and since on the pod\'s peer', async () => {
    const pod = await createPod('lines', 'log-b')
    await run(pod, 'app', 0, 'for i in 1 2 3 4 5; do echo line$i; done', join(root, 'lines'))
    await until(async () => (await runState(pod, 'app', 0)) === 'exited', 10_000, 'the run to exit')
    const all = await get(logPath('lines'))
    expect(all).toMatchObject({ status: 200, text: 'line1\nline2\nline3\nline4\nline5\n', contentType: 'text/plain' })
    expect((await get(logPath('lines', 'tailLines=2'))).text).toBe('line4\nline5\n')
    expect((await get(logPath('lines', 'tailLines=0'))).text).toBe('')
    const stamped = (await get(logPath('lines', 'timestamps=true&tailLines=2'))).text.split('\n')
    expect(stamped[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line4$/)
    expect(stamped[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line5$/)
    expect((await get(logPath('lines', 'limitBytes=8'))).text).toBe('line1\nli')
    expect((await get(logPath('lines', 'sinceSeconds=600'))).text).toBe('line1\nline2\nline3\nline4\nline5\n')
    expect((await get(logPath('lines', `sinceTime=${new Date(Date.now() + 60_000).toISOString()}`))).text).toBe('')
    // Following a run that has ended gives its log and ends.
    expect((await get(logPath('lines', 'follow=true&tailLines=1'))).text).toBe('line5\n')
  })

  it('refuses bad options as Kubernetes does', async () => {
    await createPod('options', 'log-b')
    expect(await message(logPath('options', 'tailLines=-1'))).toEqual({ status: 422, message: 'PodLogOptions "options" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0' })
    expect(await message(logPath('options', 'limitBytes=0'))).toEqual({ status: 422, message: 'PodLogOptions "options" is invalid: limitBytes: Invalid value: 0: must be greater than 0' })
    expect(await message(logPath('options', 'sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z'))).toEqual({ status: 422, message: 'PodLogOptions "options" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified' })
    expect(await message(logPath('options', 'tailLines=abc'))).toEqual({ status: 400, message: 'strconv.ParseInt: parsing "abc": invalid syntax' })
    expect((await message(logPath('options', 'sinceTime=yesterday'))).status).toBe(400)
  })

  it('reads the previous run as the container status names it, and words missing runs as the kubelet does', async () => {
    const pod = await createPod('restarts', 'log-b')
    const dir = join(root, 'restarts')
    const first = await run(pod, 'app', 0, 'echo first run', dir)
    await until(async () => (await runState(pod, 'app', 0)) === 'exited', 10_000, 'the first run to exit')
    const second = await run(pod, 'app', 1, 'echo second run; exec sleep 60', dir)
    await setContainerStatuses(pod, [{ name: 'app', containerID: second.containerId, state: { running: {} }, lastState: { terminated: { exitCode: 0, containerID: first.containerId } }, ready: true, restartCount: 1, image: 'sh', imageID: '' }])
    await until(async () => (await get(logPath('restarts'))).text === 'second run\n', 10_000, 'the second run\'s line')
    expect((await get(logPath('restarts', 'previous=true'))).text).toBe('first run\n')

    await createPod('fresh', 'log-b')
    expect(await message(logPath('fresh'))).toEqual({ status: 400, message: 'container "app" in pod "fresh" is waiting to start: ContainerCreating' })
    expect(await message(logPath('fresh', 'previous=true'))).toEqual({ status: 400, message: 'previous terminated container "app" in pod "fresh" not found' })
    await createPod('pulling', 'log-b')
    await setContainerStatuses(pods.at(-1)!, [{ name: 'app', state: { waiting: { reason: 'ErrImagePull' } }, lastState: {}, ready: false, restartCount: 0, image: 'sh', imageID: '' }])
    expect(await message(logPath('pulling'))).toEqual({ status: 400, message: 'container "app" in pod "pulling" is waiting to start: image can\'t be pulled' })
    await createPod('two', 'log-b', ['a', 'b'])
    expect(await message(logPath('two'))).toEqual({ status: 400, message: 'a container name must be specified for pod two, choose one of: [a b]' })
  })

  it('says why when the pod has no node or its node is gone', async () => {
    await createPod('nohost', undefined)
    expect(await message(logPath('nohost'))).toEqual({ status: 400, message: 'pod nohost does not have a host assigned' })
    await createPod('orphan', 'gone')
    expect(await message(logPath('orphan'))).toEqual({ status: 503, message: 'node "gone", which runs pod "orphan", is no longer a peer of this cluster: its logs cannot be read' })
  })

  it('stops reading on the pod\'s peer when the client goes away', async () => {
    await until(() => openReaders === 0, 5000, 'no reader open before')
    const abort = new AbortController()
    const log = await open(logPath('restarts', 'follow=true'), abort.signal)
    expect(await log.readUntil((t) => t === 'second run\n')).toBe('second run\n')
    expect(openReaders).toBe(1)
    expect(serviceB.servedStreams).toBe(1)
    abort.abort()
    await until(() => openReaders === 0 && serviceB.servedStreams === 0, 5000, 'peer B to stop reading the log')
  })

  it('reads on the pod\'s peer only as fast as the HTTP client takes the answer', async () => {
    const pod = await createPod('chatty', 'log-b')
    const lineCount = 12_000
    const line = 'x'.repeat(999)
    await run(pod, 'app', 0, `yes ${line} | head -n ${lineCount}`, join(root, 'chatty'))
    await until(async () => (await runState(pod, 'app', 0)) === 'exited', 20_000, 'the chatty run to exit')
    pulledBytes = 0
    // An HTTP answer whose client never reads (a socket's buffers would hide megabytes): it takes 16 KiB, then waits.
    let writtenBytes = 0
    const res = Object.assign(new Writable({ highWaterMark: 16 * 1024, write: (chunk: Buffer) => void (writtenBytes += chunk.byteLength) }), { writeHead: () => undefined, flushHeaders: () => undefined })
    const req = { url: logPath('chatty') } as IncomingMessage
    const serving = servePodLog(serviceA, a.state.store.get(refOf(pod))!, new URLSearchParams('follow=true'), req, res as unknown as ServerResponse)
    await until(async () => {
      const before = pulledBytes
      await new Promise((r) => setTimeout(r, 300))
      return pulledBytes > 0 && pulledBytes === before
    }, 10_000, 'peer B to stop reading')
    // What peer B read is what the answer took, plus peer A's credit window and a chunk or two in flight.
    expect(writtenBytes).toBeGreaterThan(0)
    expect(pulledBytes).toBeLessThan(writtenBytes + logStreamWindowBytes + 4 * logChunkBytesMax)
    expect(pulledBytes).toBeLessThan(lineCount * (line.length + 1))
    res.destroy()
    await serving
    await until(() => openReaders === 0 && serviceB.servedStreams === 0, 5000, 'peer B to stop reading the log')
  })

  it(`serves at most ${streamsServedMax} log streams to other peers at once, and says so to the next`, async () => {
    const aborts = Array.from({ length: streamsServedMax }, () => new AbortController())
    for (const abort of aborts) {
      const log = await open(logPath('restarts', 'follow=true'), abort.signal)
      await log.readUntil((t) => t === 'second run\n')
    }
    expect(await message(logPath('restarts', 'follow=true'))).toEqual({ status: 429, message: `node "log-b": this peer already serves ${streamsServedMax} log streams, its limit; try again later` })
    // Peer B's own readers are not bounded by what it serves to others.
    const local = await serviceB.open(a.state.store.get(refOf(pods.find((p) => p.metadata.name === 'restarts')!))!, 'app', { follow: false, previous: false, timestamps: false }, new AbortController().signal)
    const chunks: Uint8Array[] = []
    for await (const c of local) chunks.push(c)
    expect(Buffer.concat(chunks).toString()).toBe('second run\n')
    aborts[0]!.abort()
    await until(() => serviceB.servedStreams === streamsServedMax - 1, 5000, 'a stream slot to free')
    const again = new AbortController()
    const log = await open(logPath('restarts', 'follow=true'), again.signal)
    expect(await log.readUntil((t) => t === 'second run\n')).toBe('second run\n')
    for (const abort of [...aborts, again]) abort.abort()
    await until(() => openReaders === 0 && serviceB.servedStreams === 0, 5000, 'every reader closed')
  })
})

describe('shoal logs -f and kubectl logs -f', () => {
  it('follow a pod on peer B through peer A until its container ends', async () => {
    const pod = await createPod('follow-cli', 'log-b')
    const dir = join(root, 'follow-cli')
    await run(pod, 'app', 0, 'echo hello; while [ ! -e go ]; do sleep 0.02; done; echo world; sleep 0.3', dir)
    const kubeconfig = join(root, 'kubeconfig')
    await writeFile(kubeconfig, [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: logs, cluster: {server: "' + apiUrl + '"}}]',
      'users: [{name: admin, user: {}}]',
      'contexts: [{name: logs, context: {cluster: logs, user: admin, namespace: default}}]',
      'current-context: logs',
      '',
    ].join('\n'))
    const clients = [
      spawnClient(process.execPath, ['--import', 'tsx', cliPath, 'logs', '-f', '--kubeconfig', kubeconfig, 'follow-cli']),
      spawnClient('kubectl', ['--kubeconfig', kubeconfig, 'logs', '-f', 'pod/follow-cli']),
    ]
    await until(() => clients.every((c) => c.stdout === 'hello\n') || clients.find((c) => c.exitCode !== null)?.stderr, 30_000, 'both clients to print the first line')
    expect(clients.map((c) => c.stdout)).toEqual(['hello\n', 'hello\n'])
    await writeFile(join(dir, 'go'), '')
    const codes = await Promise.all(clients.map((c) => c.exited))
    expect(clients.map((c) => [c.stdout, c.stderr])).toEqual([['hello\nworld\n', ''], ['hello\nworld\n', '']])
    expect(codes).toEqual([0, 0])
  })
})

describe('shoal logs --since', () => {
  it('takes Go durations, rounded up to whole seconds as kubectl sends them', () => {
    expect(durationSeconds('30s')).toBe(30)
    expect(durationSeconds('1h30m')).toBe(5400)
    expect(durationSeconds('1.5h')).toBe(5400)
    expect(durationSeconds('1500ms')).toBe(2)
    expect(() => durationSeconds('5')).toThrow('--since wants a duration such as 30s, 5m or 1h30m, not "5"')
    expect(() => durationSeconds('5 m')).toThrow('not "5 m"')
  })
})

const cliPath = new URL('../../node/cli/main.ts', import.meta.url).pathname

function spawnClient(command: string, args: string[]): { stdout: string; stderr: string; exitCode: number | null; exited: Promise<number> } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const client = { stdout: '', stderr: '', exitCode: null as number | null, exited: Promise.resolve(0) }
  child.stdout.on('data', (d: Buffer) => (client.stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (client.stderr += d.toString()))
  client.exited = new Promise((resolve) => child.on('close', (code) => resolve((client.exitCode = code ?? -1))))
  return client
}

describe('chooseRun', () => {
  const runOf = (attempt: number, state: ContainerObservation['state']): ContainerObservation => ({ name: 'app', containerId: `process://${attempt}`, attempt, image: 'sh', imageId: 'sh', state })
  const terminated = (attempt: number) => ({ terminated: { containerID: `process://${attempt}` } })

  it('reads the last terminated run while a container waits in CrashLoopBackOff, and the one before for previous', () => {
    const runs = [runOf(3, 'exited'), runOf(4, 'exited')]
    const status = { name: 'app', containerID: 'process://4', state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: terminated(4) }
    expect(chooseRun('p', 'app', status, runs, false)).toEqual({ previous: false })
    expect(chooseRun('p', 'app', status, runs, true)).toEqual({ previous: false })
    const running = { name: 'app', containerID: 'process://4', state: { running: {} }, lastState: terminated(3) }
    expect(chooseRun('p', 'app', running, runs.map((r) => (r.attempt === 4 ? { ...r, state: 'running' as const } : r)), true)).toEqual({ previous: true })
  })

  it('trusts a running run over a status that is behind, and refuses runs the runtime no longer keeps', () => {
    expect(chooseRun('p', 'app', undefined, [runOf(0, 'running')], false)).toEqual({ previous: false })
    expect(() => chooseRun('p', 'app', undefined, [runOf(0, 'created')], false)).toThrow('container "app" in pod "p" is waiting to start: ContainerCreating')
    const status = { name: 'app', state: { running: {} }, containerID: 'process://5', lastState: terminated(2) }
    expect(() => chooseRun('p', 'app', status, [runOf(2, 'exited'), runOf(4, 'exited'), runOf(5, 'running')], true)).toThrow('previous terminated container "app" in pod "p" not found')
    expect(() => chooseRun('p', 'app', { name: 'app', state: { waiting: { reason: 'ImagePullBackOff' } } }, [], false)).toThrow('is waiting to start: trying and failing to pull image')
  })
})
