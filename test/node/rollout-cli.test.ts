// What users run to ship and take back versions, against a real peer process
// with the process runtime (pods really run and get ready): kubectl 1.32
// (whose `create deployment` sends protobuf) and 1.27, and shoal's own
// `create deployment`, `set image`, `rollout status|history|undo|pause|resume`,
// `scale`, `describe`; and `shoal rolling-update` of a ReplicationController,
// one pod at a time gated on readiness, renamed at the end without restarting
// a pod, and `--rollback` of an update that cannot progress.
import { execFile, execFileSync, spawn } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiRequest, type ApiTarget } from '../../node/cli/client.js'
import { startVotingCluster, until, type PeerProcess, type ProcessCluster } from './process-cluster.js'

const entry = new URL('../../node/cli/main.ts', import.meta.url).pathname
/** Every pod this file starts carries it in its command line, so none can outlive the tests unnoticed. */
const sleepSeconds = '3617'
const marker = 'shoal-rollout-cli-test'
const kubectl132 = 'kubectl'
const kubectl127 = '/usr/lib/google-cloud-sdk/bin/kubectl.1.27'

interface Run {
  code: number
  stdout: string
  stderr: string
}

let cluster: ProcessCluster
let peer: PeerProcess
let target: ApiTarget

beforeAll(async () => {
  ;({ cluster, leader: peer } = await startVotingCluster(['ro1'], ['--runtime', 'process', '--proxy-mode', 'off']))
  target = await cluster.target(peer)
}, 60_000)

afterAll(async () => {
  await cluster?.destroy()
  for (const pattern of [`sleep ${sleepSeconds}$`, marker]) {
    try {
      for (const pid of execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim().split('\n').filter((l) => l !== '')) process.kill(Number(pid), 'SIGKILL')
    } catch {
      // none left
    }
  }
})

function run(command: string, args: string[], timeoutMs = 60_000, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, encoding: 'utf8', env: { ...process.env, ...env } }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }))
  })
}

const kubeconfig = (): string => join(peer.dataDir, 'kubeconfig')
const shoal = (args: string[]): Promise<Run> => run(process.execPath, ['--import', 'tsx', entry, ...args], 60_000, { KUBECONFIG: kubeconfig() })
const kubectlWith = (binary: string) => (args: string[]): Promise<Run> => run(binary, ['--kubeconfig', kubeconfig(), '--cache-dir', join(cluster.root, `cache-${binary.length}`), ...args])

async function ok(runner: (args: string[]) => Promise<Run>, args: string[]): Promise<string> {
  const r = await runner(args)
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0)
  return r.stdout
}

async function json<T>(path: string): Promise<T> {
  const r = await apiRequest(target, 'GET', path, { timeoutMs: 5000 })
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.text}`)
  return JSON.parse(r.text) as T
}

interface DeploymentView {
  spec: { replicas: number; paused?: boolean; template: { spec: { containers: { image: string }[] } } }
  status?: { replicas?: number; readyReplicas?: number; updatedReplicas?: number }
}

const deploymentImage = async (ns: string, name: string): Promise<string> => (await json<DeploymentView>(`/apis/apps/v1/namespaces/${ns}/deployments/${name}`)).spec.template.spec.containers[0]!.image
const replicaSetNames = async (ns: string): Promise<string[]> => (await json<{ items: { metadata: { name: string } }[] }>(`/apis/apps/v1/namespaces/${ns}/replicasets`)).items.map((r) => r.metadata.name).sort()

/** REVISION column of `rollout history`. */
const revisionsIn = (history: string): string[] => history.split('\n').filter((l) => /^\d+\s/.test(l)).map((l) => l.split(/\s+/)[0]!)

describe.each([
  { name: 'kubectl v1.32', ns: 'k132', cli: kubectlWith(kubectl132), full: true },
  { name: 'kubectl v1.27', ns: 'k127', cli: kubectlWith(kubectl127), full: false },
  { name: 'shoal', ns: 'shoal', cli: shoal, full: true },
])('$name', ({ ns, cli, full }) => {
  it('creates a deployment, rolls a new image out, shows the history, undoes it, pauses, resumes and scales', async () => {
    await ok(kubectlWith(kubectl132), ['create', 'namespace', ns])
    expect(await ok(cli, ['create', 'deployment', 'web', '-n', ns, '--image=sleep', '--replicas=3', '--', 'sleep', sleepSeconds])).toBe('deployment.apps/web created\n')
    expect(await ok(cli, ['rollout', 'status', 'deployment/web', '--timeout=40s', '-n', ns])).toContain('deployment "web" successfully rolled out')
    const created = await json<{ metadata: { labels: Record<string, string> } }>(`/apis/apps/v1/namespaces/${ns}/deployments/web`)
    expect(created.metadata.labels).toEqual({ app: 'web' })

    // shoal has no annotate: the change cause is kubectl's part of the story.
    if (cli !== shoal) await ok(cli, ['annotate', 'deployment/web', 'kubernetes.io/change-cause=v2 please', '-n', ns])
    expect(await ok(cli, ['set', 'image', 'deployment/web', 'sleep=sleep:v2', '-n', ns])).toBe('deployment.apps/web image updated\n')
    expect(await ok(cli, ['rollout', 'status', 'deployment/web', '--timeout=40s', '-n', ns])).toMatch(/deployment "web" successfully rolled out\n$/)
    expect(await deploymentImage(ns, 'web')).toBe('sleep:v2')
    const history = await ok(cli, ['rollout', 'history', 'deployment/web', '-n', ns])
    expect(history).toMatch(/^deployment\.apps\/web \nREVISION +CHANGE-CAUSE\n/)
    expect(revisionsIn(history)).toEqual(['1', '2'])
    if (cli !== shoal) expect(history).toMatch(/\n2 +v2 please\n/)
    expect(await ok(cli, ['rollout', 'history', 'deployment/web', '--revision=1', '-n', ns])).toMatch(/with revision #1\nPod Template:[\s\S]*Image:\s+sleep\n/)

    expect(await ok(cli, ['rollout', 'undo', 'deployment/web', '-n', ns])).toBe('deployment.apps/web rolled back\n')
    expect(await deploymentImage(ns, 'web')).toBe('sleep')
    await ok(cli, ['rollout', 'status', 'deployment/web', '--timeout=40s', '-n', ns])
    expect(revisionsIn(await ok(cli, ['rollout', 'history', 'deployment/web', '-n', ns]))).toEqual(['2', '3'])
    // The rest speaks the same requests in every kubectl version: once is enough.
    if (!full) return

    expect(await ok(cli, ['rollout', 'pause', 'deployment/web', '-n', ns])).toBe('deployment.apps/web paused\n')
    const again = await cli(['rollout', 'pause', 'deployment/web', '-n', ns])
    expect(again.code).toBe(1)
    expect(again.stderr).toContain('deployments.apps "web" is already paused')
    const setsBefore = await replicaSetNames(ns)
    await ok(cli, ['set', 'image', 'deployment/web', 'sleep=sleep:v3', '-n', ns])
    const blocked = await cli(['rollout', 'undo', 'deployment/web', '-n', ns])
    expect(blocked.code).toBe(1)
    expect(blocked.stderr).toContain('you cannot rollback a paused deployment')
    await new Promise((r) => setTimeout(r, 500))
    expect(await replicaSetNames(ns)).toEqual(setsBefore)
    expect(await ok(cli, ['rollout', 'resume', 'deployment/web', '-n', ns])).toBe('deployment.apps/web resumed\n')
    await ok(cli, ['rollout', 'status', 'deployment/web', '--timeout=40s', '-n', ns])
    expect((await replicaSetNames(ns)).length).toBe(3)

    expect(await ok(cli, ['scale', 'deployment', 'web', '--replicas', '4', '-n', ns])).toBe('deployment.apps/web scaled\n')
    await until(async () => (await json<DeploymentView>(`/apis/apps/v1/namespaces/${ns}/deployments/web`)).status?.readyReplicas === 4 || undefined, 30_000, 'web to have 4 ready replicas')
    const tables = await ok(cli, ['get', 'deploy,rs', '-n', ns])
    expect(tables).toMatch(/deployment\.apps\/web +4\/4 +4 +4 /)
    const described = await ok(cli, ['describe', 'deployment', 'web', '-n', ns])
    expect(described).toMatch(/Replicas: +4 desired \| 4 updated \| 4 total \| 4 available \| 0 unavailable/)
    expect(described).toMatch(/NewReplicaSet: +web-\w+ \(4\/4 replicas created\)/)
    expect(described).toContain('Image:      sleep:v3')
  }, 120_000)
})

it('rollout status reports a rollout past its progress deadline and exits 1, for kubectl and shoal', async () => {
  await ok(shoal, ['create', 'deployment', 'stuck', '--image=sleep', '--replicas=2', '--', 'sleep', sleepSeconds])
  await ok(shoal, ['rollout', 'status', 'deploy/stuck', '--timeout', '40s'])
  const patch = JSON.stringify({ spec: { progressDeadlineSeconds: 2, template: { spec: { containers: [{ name: 'sleep', image: 'no-such-program-here' }] } } } })
  expect((await apiRequest(target, 'PATCH', '/apis/apps/v1/namespaces/default/deployments/stuck', { body: patch, contentType: 'application/strategic-merge-patch+json', timeoutMs: 5000 })).status).toBe(200)
  for (const cli of [shoal, kubectlWith(kubectl132)]) {
    const r = await cli(['rollout', 'status', 'deployment/stuck', '--timeout=30s'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('deployment "stuck" exceeded its progress deadline')
  }
  const d = await json<DeploymentView>('/apis/apps/v1/namespaces/default/deployments/stuck')
  expect(d.status?.readyReplicas).toBeGreaterThanOrEqual(1)
}, 60_000)

/** An app that starts listening a second after it starts: each new pod is Ready only then. */
const slowApp = `setTimeout(() => require('http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), process.env.POD_IP), 1000) // ${marker}`

const frontend = {
  apiVersion: 'v1',
  kind: 'ReplicationController',
  metadata: { name: 'frontend' },
  spec: {
    replicas: 3,
    selector: { app: 'frontend' },
    template: {
      metadata: { labels: { app: 'frontend' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'web', image: 'node', args: ['-e', slowApp], ports: [{ containerPort: 8080 }], readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 } }],
      },
    },
  },
}

interface PodView {
  metadata: { name: string; deletionTimestamp?: string; labels?: Record<string, string>; ownerReferences?: { name: string; uid: string }[] }
  spec: { containers: { image: string }[] }
  status?: { conditions?: { type: string; status: string }[]; containerStatuses?: { restartCount: number }[] }
}

const podsOf = async (): Promise<PodView[]> => (await json<{ items: PodView[] }>('/api/v1/namespaces/default/pods?labelSelector=app%3Dfrontend')).items
const readyCount = (pods: PodView[]): number => pods.filter((p) => p.metadata.deletionTimestamp === undefined && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')).length

/** Runs shoal in the background while sampling ready pods and the controllers' replicas. */
async function watchedShoal(args: string[]): Promise<{ run: Run; minReady: number; maxReplicas: number }> {
  let minReady = Number.POSITIVE_INFINITY
  let maxReplicas = 0
  let running = true
  const sampler = (async () => {
    while (running) {
      const [pods, rcs] = await Promise.all([podsOf(), json<{ items: { spec: { replicas: number } }[] }>('/api/v1/namespaces/default/replicationcontrollers')])
      minReady = Math.min(minReady, readyCount(pods))
      maxReplicas = Math.max(maxReplicas, rcs.items.reduce((sum, rc) => sum + rc.spec.replicas, 0))
      await new Promise((r) => setTimeout(r, 100))
    }
  })()
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: kubeconfig() } })
  const result: Run = { code: -1, stdout: '', stderr: '' }
  child.stdout.on('data', (d: Buffer) => (result.stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (result.stderr += d.toString()))
  result.code = await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)))
  running = false
  await sampler
  return { run: result, minReady, maxReplicas }
}

describe('shoal rolling-update', () => {
  it('replaces the pods one at a time, each step gated on readiness, and renames the new controller without restarting a pod', async () => {
    expect((await apiRequest(target, 'POST', '/api/v1/namespaces/default/replicationcontrollers', { body: JSON.stringify(frontend), timeoutMs: 5000 })).status).toBe(201)
    await until(async () => readyCount(await podsOf()) === 3 || undefined, 30_000, '3 frontend pods ready')
    const { run: r, minReady, maxReplicas } = await watchedShoal(['rolling-update', 'frontend', '--image=node:v2', '--update-period', '300ms', '--poll-interval', '100ms'])
    expect(r.code, r.stderr).toBe(0)
    const newName = /^Created (frontend-[0-9a-f]+)$/m.exec(r.stdout)?.[1]
    expect(newName).toBeDefined()
    expect(r.stdout).toContain(`Scaling up ${newName} from 0 to 3, scaling down frontend from 3 to 0 (keep 3 pods available, don't exceed 4 pods)\n`)
    expect(r.stdout).toContain(`Scaling ${newName} up to 1\nScaling frontend down to 2\n`)
    expect(r.stdout).toMatch(new RegExp(`Update succeeded. Deleting old controller: frontend\nRenaming ${newName} to frontend\nreplicationcontroller/frontend rolling updated\n$`))
    // Readiness gated every step: never fewer than 3 ready pods, never more than 4 replicas.
    expect(minReady).toBeGreaterThanOrEqual(3)
    expect(maxReplicas).toBeLessThanOrEqual(4)
    const rc = await json<{ metadata: { uid: string }; spec: { selector: Record<string, string> } }>('/api/v1/namespaces/default/replicationcontrollers/frontend')
    expect(rc.spec.selector).toEqual({ app: 'frontend', deployment: newName!.slice('frontend-'.length) })
    // The old pods go, and the renamed controller adopts the new ones (its controller round may trail the create).
    const pods = await until(async () => {
      const now = await podsOf()
      return now.length === 3 && now.every((p) => p.metadata.ownerReferences?.[0]?.uid === rc.metadata.uid) ? now : undefined
    }, 20_000, 'the old pods gone and the new ones adopted')
    expect(pods.map((p) => [p.metadata.name.startsWith(`${newName}-`), p.spec.containers[0]!.image])).toEqual([[true, 'node:v2'], [true, 'node:v2'], [true, 'node:v2']])
    // Adopted, not replaced or restarted.
    expect(pods.map((p) => p.status?.containerStatuses?.[0]?.restartCount)).toEqual([0, 0, 0])
    expect(readyCount(pods)).toBe(3)
    const rcs = await json<{ items: { metadata: { name: string } }[] }>('/api/v1/namespaces/default/replicationcontrollers')
    expect(rcs.items.map((i) => i.metadata.name)).toEqual(['frontend'])
  }, 60_000)

  it('--rollback takes back an update that cannot progress, leaving the serving pods alone', async () => {
    const before = (await podsOf()).map((p) => p.metadata.name).sort()
    // `sleep` never listens: the new pod never gets ready, so nothing old may go.
    const stuck = await shoal(['rolling-update', 'frontend', '--image=sleep', '--update-period', '300ms', '--poll-interval', '100ms', '--timeout', '3s'])
    expect(stuck.code).toBe(1)
    expect(stuck.stderr).toContain('timed out waiting for any update progress to be made')
    expect(stuck.stdout).not.toContain('Scaling frontend down')
    const { run: r, minReady } = await watchedShoal(['rolling-update', 'frontend', '--rollback', '--update-period', '300ms', '--poll-interval', '100ms'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Setting "frontend" replicas to 3\nContinuing update with existing controller frontend\.\n/)
    expect(r.stdout).toMatch(/Update succeeded\. Deleting frontend-[0-9a-f]+\nreplicationcontroller\/frontend rolling updated\n$/)
    expect(minReady).toBeGreaterThanOrEqual(3)
    const rcs = await json<{ items: { metadata: { name: string } }[] }>('/api/v1/namespaces/default/replicationcontrollers')
    expect(rcs.items.map((i) => i.metadata.name)).toEqual(['frontend'])
    await until(async () => (await podsOf()).length === 3 || undefined, 20_000, 'the abandoned pod gone')
    expect((await podsOf()).map((p) => p.metadata.name).sort()).toEqual(before)
  }, 60_000)
})
