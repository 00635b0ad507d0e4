import { describe, expect, it } from 'vitest'
import { podStatus } from '../../node/agent/pod-status.js'
import { Backoff, goDuration } from '../../node/agent/backoff.js'
import type { ContainerTrack } from '../../node/agent/pod-status.js'
import type { PodJson } from '../../node/agent/pod-types.js'
import type { ContainerObservation, PodObservation } from '../../node/agent/runtime.js'

const now = '2026-11-22T10:00:00Z'

function pod(restartPolicy: 'Always' | 'OnFailure' | 'Never' = 'Always', containers = ['app']): PodJson {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', uid: 'u' }, spec: { restartPolicy, containers: containers.map((name) => ({ name, image: 'img' })) } }
}

function run(name: string, attempt: number, state: ContainerObservation['state'], exitCode?: number): ContainerObservation {
  const r: ContainerObservation = { name, attempt, state, containerId: `process://${100 + attempt}`, image: 'img', imageId: '/bin/img', startedAt: '2026-11-22T09:59:00.123Z' }
  if (state === 'exited') Object.assign(r, { exitCode, finishedAt: '2026-11-22T09:59:30.456Z', reason: exitCode === 0 ? 'Completed' : 'Error' })
  return r
}

function observe(...containers: ContainerObservation[]): PodObservation {
  return { uid: 'u', namespace: 'default', name: 'p', sandbox: { uid: 'u', podIp: '127.88.0.2' }, containers }
}

function status(p: PodJson, o: PodObservation | undefined, tracks: Record<string, ContainerTrack> = {}) {
  return podStatus({ pod: p, observation: o, tracks: new Map(Object.entries(tracks)), hostIp: '10.0.0.1', nowIso: now })
}

describe('pod status', () => {
  it('a pod whose container has not started is Pending, ContainerCreating, not ready', () => {
    const s = status(pod(), undefined)
    expect(s.phase).toBe('Pending')
    expect(s.containerStatuses![0]!.state).toEqual({ waiting: { reason: 'ContainerCreating' } })
    expect(s.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [app]' })
    expect(s.podIP).toBeUndefined()
  })

  it('a running, ready container makes the pod Running and Ready with its IP and times to the second', () => {
    const s = status(pod(), observe(run('app', 0, 'running')), { app: { ready: true, started: true } })
    expect(s.phase).toBe('Running')
    expect(s.podIP).toBe('127.88.0.2')
    expect(s.hostIP).toBe('10.0.0.1')
    expect(s.containerStatuses![0]).toMatchObject({ ready: true, started: true, restartCount: 0, state: { running: { startedAt: '2026-11-22T09:59:00Z' } } })
    expect(s.conditions!.map((c) => `${c.type}=${c.status}`)).toEqual(['Initialized=True', 'Ready=True', 'ContainersReady=True', 'PodScheduled=True'])
    expect(s.qosClass).toBe('BestEffort')
  })

  it('a crash-looping container waits in CrashLoopBackOff with its last termination; the pod stays Running', () => {
    const tracks = { app: { ready: false, started: false, waiting: { reason: 'CrashLoopBackOff', message: 'back-off 20s restarting failed container=app pod=p_default(u)' } } }
    const s = status(pod(), observe(run('app', 1, 'exited', 1), run('app', 2, 'exited', 1)), tracks)
    expect(s.phase).toBe('Running')
    const c = s.containerStatuses![0]!
    expect(c.restartCount).toBe(2)
    expect(c.state.waiting?.reason).toBe('CrashLoopBackOff')
    expect(c.lastState.terminated).toMatchObject({ exitCode: 1, reason: 'Error', finishedAt: '2026-11-22T09:59:30Z' })
  })

  it('restartPolicy decides the phase once containers exit', () => {
    expect(status(pod('Never'), observe(run('app', 0, 'exited', 0))).phase).toBe('Succeeded')
    expect(status(pod('Never'), observe(run('app', 0, 'exited', 2))).phase).toBe('Failed')
    expect(status(pod('OnFailure'), observe(run('app', 0, 'exited', 0))).phase).toBe('Succeeded')
    const done = status(pod('Never'), observe(run('app', 0, 'exited', 0)))
    expect(done.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'PodCompleted' })
  })

  it('an image that cannot be pulled keeps the pod Pending with the reason', () => {
    const s = status(pod(), undefined, { app: { ready: false, started: false, waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "img"' } } })
    expect(s.phase).toBe('Pending')
    expect(s.containerStatuses![0]!.state.waiting).toEqual({ reason: 'ImagePullBackOff', message: 'Back-off pulling image "img"' })
  })

  it('keeps transition times while a condition holds', () => {
    const first = status(pod(), observe(run('app', 0, 'running')), { app: { ready: true, started: true } })
    const p = { ...pod(), status: { ...first, conditions: first.conditions!.map((c) => ({ ...c, lastTransitionTime: '2026-01-01T00:00:00Z' })) } }
    const again = podStatus({ pod: p, observation: observe(run('app', 0, 'running')), tracks: new Map([['app', { ready: true, started: true }]]), hostIp: '10.0.0.1', nowIso: '2026-11-22T11:00:00Z' })
    expect(again.conditions!.every((c) => c.lastTransitionTime === '2026-01-01T00:00:00Z')).toBe(true)
    expect(JSON.stringify(again)).toBe(JSON.stringify(p.status))
  })
})

describe('back-off', () => {
  it('retries the first failure at once, then waits 10s, 20s, 40s ... up to the cap', () => {
    const b = new Backoff({ initialMs: 10_000, maxMs: 40_000 })
    let t = 0
    expect(b.remainingMs('k', t, t)).toBe(0)
    const waits: number[] = []
    for (let k = 0; k < 5; k++) {
      b.next('k', t)
      waits.push(b.currentDelayMs('k'))
      t += 1000
      expect(b.remainingMs('k', t, t)).toBe(b.currentDelayMs('k'))
      t += b.currentDelayMs('k')
    }
    expect(waits).toEqual([10_000, 20_000, 40_000, 40_000, 40_000])
    expect(goDuration(20_000)).toBe('20s')
    expect(goDuration(300_000)).toBe('5m0s')
  })

  it('starts over after a long quiet time', () => {
    const b = new Backoff({ initialMs: 10_000, maxMs: 40_000 })
    b.next('k', 0)
    b.next('k', 1000)
    expect(b.currentDelayMs('k')).toBe(20_000)
    expect(b.remainingMs('k', 200_000, 200_000)).toBe(0)
    b.next('k', 200_000)
    expect(b.currentDelayMs('k')).toBe(10_000)
  })
})
