// The agent on one in-process peer with the process runtime: real child
// processes, real probes, the real store and endpoints controller. Back-off
// starts at 300 ms here (10 s by default) so growing delays show in seconds.
import { execFileSync } from 'node:child_process'
import { writeFile, rm, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLocalPeer, type LocalPeer } from '../node/local-peer.js'
import { until } from '../node/process-cluster.js'
import { containerState, createObject, createPod, deletePod, isReady, podNamed, podUntil, stopLocalPeerAndPods } from './agent-helpers.js'

interface EventView {
  involvedObject: { name: string }
  reason: string
  message: string
  source?: { component?: string; host?: string }
}

/** Events about one pod, as `describe` would show them. */
function eventsOf(name: string): EventView[] {
  return lp.peer.state.store.allObjects().filter((o) => o.kind === 'Event' && (o as unknown as EventView).involvedObject.name === name) as unknown as EventView[]
}

let lp: LocalPeer
let scratch: string
const node = process.execPath

/** A tiny HTTP server on the pod's IP and first port, answering with $POD_NAME; /healthz follows a file. */
const server = `
const http = require('node:http'); const fs = require('node:fs')
http.createServer((req, res) => {
  if (req.url === '/healthz') { const ok = !fs.existsSync(process.env.SICK_FILE || '/nonexistent'); res.writeHead(ok ? 200 : 500); return res.end() }
  res.end(process.env.POD_NAME + ' ' + process.env.GREETING)
}).listen(Number(process.env.PORT), process.env.POD_IP)`

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'shoal-agent-test-'))
  lp = await startLocalPeer('agent-a', { agent: { runtime: 'process', restartBackoffInitialMs: 300, restartBackoffMaxMs: 4000 } })
}, 60_000)

afterAll(async () => {
  await stopLocalPeerAndPods(lp)
  await rm(scratch, { recursive: true, force: true })
})

describe('the agent with the process runtime', () => {
  it('starts a pod that reports Running and Ready with its own IP, where it answers', async () => {
    await createPod(lp.peer, 'web', {
      containers: [{ name: 'web', image: node, args: ['-e', server], ports: [{ name: 'http', containerPort: 8080 }], env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }, { name: 'GREETING', value: 'hi from $(POD_NAME)' }], readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 } }],
    })
    const pod = await podUntil(lp.peer, 'web', (p) => p.status?.phase === 'Running' && isReady(p), 'Running and Ready')
    expect(pod.status?.podIP).toMatch(/^127\./)
    expect(pod.status?.hostIP).toBeTruthy()
    expect(containerState(pod)).toMatchObject({ ready: true, started: true, restartCount: 0, state: { running: {} } })
    const body = await (await fetch(`http://${pod.status!.podIP}:8080/`)).text()
    expect(body).toBe('web hi from web')
  })

  it('restarts a crashing container with growing delays and shows CrashLoopBackOff', async () => {
    await createPod(lp.peer, 'crasher', { containers: [{ name: 'c', image: 'sh', command: ['sh', '-c', 'echo crashing; exit 3'] }] })
    const restartsAt: number[] = []
    let sawBackOff = false
    await until(() => {
      const c = containerState(podNamed(lp.peer, 'crasher')!)
      if (c?.state.waiting?.reason === 'CrashLoopBackOff') sawBackOff = true
      if (c !== undefined && c.restartCount > restartsAt.length) restartsAt.push(Date.now())
      return restartsAt.length >= 4
    }, 20_000, 'four restarts')
    expect(sawBackOff).toBe(true)
    const gaps = restartsAt.slice(1).map((t, k) => t - restartsAt[k]!)
    // 300 ms, 600 ms, 1.2 s: each wait about twice the one before.
    expect(gaps[1]!).toBeGreaterThan(gaps[0]! * 1.4)
    const pod = podNamed(lp.peer, 'crasher')!
    expect(pod.status?.phase).toBe('Running')
    expect(containerState(pod)?.lastState.terminated).toMatchObject({ exitCode: 3, reason: 'Error' })
    await until(() => eventsOf('crasher').some((e) => e.reason === 'BackOff'), 5000, 'a BackOff event')
    expect(eventsOf('crasher').find((e) => e.reason === 'BackOff')).toMatchObject({ message: expect.stringMatching(/^Back-off restarting failed container c in pod crasher_default/), source: { component: 'kubelet', host: 'agent-a' } })
    expect(eventsOf('crasher').some((e) => e.reason === 'Started' && e.message === 'Started container c')).toBe(true)
  })

  it('a missing program waits in ErrImagePull, then ImagePullBackOff, without a retry storm', async () => {
    const runtime = lp.peer.agent!.runtime
    const start = runtime.startContainer.bind(runtime)
    let attempts = 0
    runtime.startContainer = (pod, c) => {
      if (pod.name === 'missing') attempts++
      return start(pod, c)
    }
    await createPod(lp.peer, 'missing', { containers: [{ name: 'm', image: 'no-such-program-shoal' }] })
    // ErrImagePull shows only until the next pass (as in Kubernetes); the back-off that follows stays.
    const waiting = await podUntil(lp.peer, 'missing', (p) => containerState(p)?.state.waiting?.reason === 'ImagePullBackOff', 'ImagePullBackOff')
    expect(containerState(waiting)?.state.waiting?.message).toMatch(/^Back-off pulling image "no-such-program-shoal": program "no-such-program-shoal" not found on PATH/)
    await until(() => eventsOf('missing').some((e) => e.reason === 'Failed'), 5000, 'a Failed event')
    expect(eventsOf('missing').find((e) => e.reason === 'Failed')?.message).toMatch(/^Failed to pull image "no-such-program-shoal": program "no-such-program-shoal" not found/)
    await new Promise((r) => setTimeout(r, 2500))
    // 300 ms, 600 ms, 1.2 s, 2.4 s apart: at most five tries in about three seconds.
    expect(attempts).toBeLessThanOrEqual(5)
    expect(podNamed(lp.peer, 'missing')?.status?.phase).toBe('Pending')
    runtime.startContainer = start
  })

  it('a failing liveness probe restarts the container', async () => {
    const sick = join(scratch, 'sick')
    await createPod(lp.peer, 'live', {
      containers: [{ name: 'web', image: node, args: ['-e', server], ports: [{ containerPort: 8081 }], env: [{ name: 'SICK_FILE', value: sick }], livenessProbe: { httpGet: { path: '/healthz', port: 8081 }, initialDelaySeconds: 1, periodSeconds: 1, failureThreshold: 1 } }],
    })
    await podUntil(lp.peer, 'live', (p) => p.status?.phase === 'Running' && isReady(p), 'Running')
    await writeFile(sick, '')
    const restarted = await podUntil(lp.peer, 'live', (p) => (containerState(p)?.restartCount ?? 0) >= 1, 'restarted')
    await rm(sick)
    const again = await podUntil(lp.peer, 'live', (p) => containerState(p)?.state.running !== undefined && isReady(p), 'running again')
    expect(containerState(restarted)?.lastState.terminated).toBeDefined()
    expect(containerState(again)?.restartCount).toBe(1)
    await until(() => eventsOf('live').some((e) => e.reason === 'Killing'), 5000, 'a Killing event')
    expect(eventsOf('live').find((e) => e.reason === 'Unhealthy')?.message).toBe('Liveness probe failed: HTTP probe failed with statuscode: 500')
  })

  it('readiness takes a pod out of its service endpoints and back', async () => {
    const notReady = join(scratch, 'not-ready')
    await writeFile(notReady, '')
    await createObject(lp.peer, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'ready-svc' }, spec: { selector: { app: 'ready' }, ports: [{ port: 80, targetPort: 8082 }] } })
    await createPod(lp.peer, 'ready-pod', { containers: [{ name: 'c', image: 'sleep', args: ['1000'], readinessProbe: { exec: { command: ['sh', '-c', `test ! -f ${notReady}`] }, periodSeconds: 1 } }] }, { app: 'ready' })
    type Endpoints = { subsets?: { addresses?: { ip: string }[]; notReadyAddresses?: { ip: string }[] }[] }
    const endpoints = (): Endpoints | undefined => lp.peer.state.store.get({ apiVersion: 'v1', kind: 'Endpoints', namespace: 'default', name: 'ready-svc' }) as Endpoints | undefined
    const ready = (): number => (endpoints()?.subsets ?? []).flatMap((s) => s.addresses ?? []).length
    const unready = (): number => (endpoints()?.subsets ?? []).flatMap((s) => s.notReadyAddresses ?? []).length
    await until(() => unready() === 1 && ready() === 0, 10_000, 'the pod listed not ready')
    await rm(notReady)
    await until(() => ready() === 1 && unready() === 0, 10_000, 'the pod listed ready')
    await writeFile(notReady, '')
    await until(() => unready() === 1 && ready() === 0, 10_000, 'the pod listed not ready again')
  })

  it('gives containers the variables of the services that exist when the pod starts', async () => {
    await createObject(lp.peer, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'redis-master' }, spec: { clusterIP: '127.77.0.10', selector: { app: 'redis' }, ports: [{ port: 6379 }] } })
    const created = await createPod(lp.peer, 'env-reader', { containers: [{ name: 'c', image: 'sh', command: ['sh', '-c', 'echo "$REDIS_MASTER_SERVICE_HOST:$REDIS_MASTER_SERVICE_PORT $REDIS_MASTER_PORT"; sleep 1000'] }] })
    await podUntil(lp.peer, 'env-reader', (p) => p.status?.phase === 'Running', 'Running')
    const lines: string[] = []
    await until(async () => {
      lines.length = 0
      for await (const line of lp.peer.agent!.runtime.logs(created.metadata.uid ?? '', 'c', { follow: false, previous: false }, new AbortController().signal)) lines.push(line.text)
      return lines.length > 0
    }, 5000, 'the line the container printed')
    expect(lines[0]).toBe('127.77.0.10:6379 tcp://127.77.0.10:6379')
  })

  it('writes the statuses of pods starting together in a few Raft entries, not one each', async () => {
    const writer = lp.peer.agent!.agent.statusWriter
    const before = { written: writer.written, entries: writer.entries }
    const names = Array.from({ length: 24 }, (_, k) => `many-${k}`)
    await Promise.all(names.map((name) => createPod(lp.peer, name, { containers: [{ name: 'c', image: 'sleep', args: ['1000'] }] }, { group: 'many' })))
    await until(() => names.every((n) => { const p = podNamed(lp.peer, n); return p !== undefined && isReady(p) }), 20_000, '24 pods Running and Ready')
    const written = writer.written - before.written
    const entries = writer.entries - before.entries
    expect(written).toBeGreaterThanOrEqual(24)
    expect(entries).toBeLessThan(written / 3)
    for (const name of names) await deletePod(lp.peer, name)
  })

  it('deleting a pod kills its whole process tree', async () => {
    await createPod(lp.peer, 'tree', { containers: [{ name: 'c', image: 'sh', command: ['sh', '-c', 'sleep 987654 & sleep 987655; wait'] }] })
    await podUntil(lp.peer, 'tree', (p) => p.status?.phase === 'Running', 'Running')
    const running = (): string => {
      try {
        return execFileSync('pgrep', ['-f', 'sleep 98765[45]'], { encoding: 'utf8' })
      } catch {
        return ''
      }
    }
    // The shell's own command line names both too.
    await until(() => running().trim().split('\n').length >= 2, 5000, 'both sleeps running')
    await deletePod(lp.peer, 'tree')
    await until(() => running() === '', 10_000, 'no sleep left')
  })
})
