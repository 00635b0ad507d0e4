// The agent with the Docker runtime on a real engine (Podman here): a pod of
// two containers reports Running and Ready with its IP, where it answers;
// a missing image waits in ImagePullBackOff with the engine's words; a
// crashing container loops with CrashLoopBackOff. Skipped, saying why, when
// no engine answers (never in CI: .ci/run starts Podman).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLocalPeer, type LocalPeer } from '../node/local-peer.js'
import { until } from '../node/process-cluster.js'
import { containerState, createPod, isReady, podUntil, stopLocalPeerAndPods } from './agent-helpers.js'
import { busyboxImage, findEngine, removeNodeContainers } from './podman.js'

const lookup = await findEngine()
if (lookup.skipReason !== undefined) console.warn(`Docker agent tests skipped: ${lookup.skipReason}`)
const nodeName = `agent-docker-${process.pid}`

describe.skipIf(lookup.engine === undefined)('the agent with the Docker runtime', () => {
  let lp: LocalPeer

  beforeAll(async () => {
    if (process.env.DOCKER_HOST === undefined || process.env.DOCKER_HOST === '') process.env.DOCKER_HOST = lookup.engine!.address
    lp = await startLocalPeer(nodeName, { agent: { runtime: 'docker', restartBackoffInitialMs: 300, restartBackoffMaxMs: 4000 } })
  }, 60_000)

  afterAll(async () => {
    await stopLocalPeerAndPods(lp, 20_000)
    await removeNodeContainers(lookup.engine!.docker, [nodeName])
  })

  it('runs a pod of two containers sharing one IP, Running and Ready, answering on it', async () => {
    expect(lp.peer.agent!.version).toMatch(/^docker:\/\//)
    await createPod(lp.peer, 'web', {
      containers: [
        { name: 'httpd', image: busyboxImage, imagePullPolicy: 'Never', command: ['sh', '-c', 'mkdir -p /www && echo "hello from $POD_NAME" > /www/index.html && exec httpd -f -p 8080 -h /www'], ports: [{ containerPort: 8080 }], env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }], readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 } },
        // The sidecar reaches the web server on localhost: the pod's containers share its network.
        { name: 'sidecar', image: busyboxImage, imagePullPolicy: 'Never', command: ['sh', '-c', 'sleep 1000'], readinessProbe: { exec: { command: ['wget', '-qO-', 'http://127.0.0.1:8080/'] }, periodSeconds: 1 } },
      ],
    })
    const pod = await podUntil(lp.peer, 'web', (p) => p.status?.phase === 'Running' && isReady(p), 'Running and Ready', 30_000)
    expect(pod.status?.podIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
    expect(containerState(pod, 'httpd')?.containerID).toMatch(/^docker:\/\//)
    const body = await until(async () => (await fetch(`http://${pod.status!.podIP}:8080/`).catch(() => undefined))?.text(), 10_000, 'an answer on the pod IP')
    expect(body.trim()).toBe('hello from web')
  })

  it('waits in ImagePullBackOff with the engine\'s words when the image cannot be pulled', async () => {
    await createPod(lp.peer, 'nowhere', { containers: [{ name: 'c', image: 'registry.invalid/shoal/none:1', imagePullPolicy: 'IfNotPresent' }] })
    const pod = await podUntil(lp.peer, 'nowhere', (p) => containerState(p)?.state.waiting?.reason === 'ImagePullBackOff', 'ImagePullBackOff', 30_000)
    expect(containerState(pod)?.state.waiting?.message).toMatch(/^Back-off pulling image "registry.invalid\/shoal\/none:1": .+/)
    expect(pod.status?.phase).toBe('Pending')
  })

  it('restarts a crashing container with CrashLoopBackOff', async () => {
    await createPod(lp.peer, 'crasher', { containers: [{ name: 'c', image: busyboxImage, imagePullPolicy: 'Never', command: ['sh', '-c', 'exit 7'] }] })
    const pod = await podUntil(lp.peer, 'crasher', (p) => (containerState(p)?.restartCount ?? 0) >= 2 && containerState(p)?.state.waiting?.reason === 'CrashLoopBackOff', 'two restarts in CrashLoopBackOff', 30_000)
    expect(containerState(pod)?.lastState.terminated).toMatchObject({ exitCode: 7, reason: 'Error' })
  })
})
