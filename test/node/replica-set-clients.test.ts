// ReplicaSets as users drive them: real kubectl (v1.32, the default, and v1.27,
// the oldest installed) and the shoal CLI, as processes against one real peer
// over HTTPS: create, get (and -o wide, get all), scale, describe, the 422 for
// a selector that misses the template, and delete taking the pods along.
import { execFile, spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiRequest } from '../../node/cli/client.js'
import { ProcessCluster, until, type PeerProcess } from './process-cluster.js'

const entry = new URL('../../node/cli/main.ts', import.meta.url).pathname
const timeoutMs = 20_000

interface Run {
  code: number
  stdout: string
  stderr: string
}

let cluster: ProcessCluster
let peer: PeerProcess
let kubeconfig: string

beforeAll(async () => {
  cluster = await ProcessCluster.create()
  peer = await cluster.add('rs-solo')
  cluster.start(peer)
  const target = await cluster.target(peer)
  kubeconfig = join(peer.dataDir, 'kubeconfig')
  await until(async () => (await apiRequest(target, 'GET', '/api/v1/namespaces/default', { timeoutMs: 3000 })).status === 200 || undefined, 30_000, 'the API to serve the default namespace')
}, 60_000)

afterAll(async () => {
  await cluster?.destroy()
})

function run(binary: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(binary, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
    })
  })
}

/** Table lines split into cells at runs of 2+ spaces. */
function rows(text: string): string[][] {
  return text.trimEnd().split('\n').map((l) => l.trim().split(/ {2,}/))
}

function manifest(name: string, replicas: number, selectorLabel: string): string {
  return [
    'apiVersion: apps/v1',
    'kind: ReplicaSet',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    `  replicas: ${replicas}`,
    '  selector:',
    '    matchLabels:',
    `      tier: ${selectorLabel}`,
    '    matchExpressions:',
    '    - {key: app, operator: In, values: [guestbook]}',
    '  template:',
    '    metadata:',
    '      labels: {app: guestbook, tier: frontend}',
    '    spec:',
    '      containers:',
    '      - name: php-redis',
    '        image: docker.io/kubeguide/guestbook-php-frontend',
    '',
  ].join('\n')
}

const versions = [
  { name: 'v1.32', binary: 'kubectl', namespace: 'rs-132' },
  { name: 'v1.27', binary: '/usr/lib/google-cloud-sdk/bin/kubectl.1.27', namespace: 'rs-127' },
]

describe.each(versions)('kubectl $name', (version) => {
  const kubectl = (args: string[]): Promise<Run> => run(version.binary, ['--kubeconfig', kubeconfig, '--cache-dir', join(cluster.root, `kube-cache-${version.namespace}`), '-n', version.namespace, ...args])
  const ok = async (args: string[]): Promise<string> => {
    const r = await kubectl(args)
    expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0)
    return r.stdout
  }
  const frontendPods = async (): Promise<number> => (await ok(['get', 'pods', '-l', 'tier=frontend', '-o', 'name'])).trim().split('\n').filter((l) => l !== '').length

  it('creates a ReplicaSet and shows it in get rs, -o wide and get all', async () => {
    await ok(['create', 'namespace', version.namespace])
    const file = join(cluster.root, `frontend-${version.namespace}.yaml`)
    await writeFile(file, manifest('frontend', 3, 'frontend'))
    expect((await ok(['create', '-f', file])).trim()).toBe('replicaset.apps/frontend created')
    await until(async () => (rows(await ok(['get', 'rs']))[1]?.[2] === '3') || undefined, timeoutMs, 'CURRENT 3')
    const table = rows(await ok(['get', 'rs']))
    expect(table[0]).toEqual(['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE'])
    expect(table[1]!.slice(0, 4)).toEqual(['frontend', '3', '3', '0'])
    const wide = rows(await ok(['get', 'rs', '-o', 'wide']))
    expect(wide[0]).toEqual(['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE', 'CONTAINERS', 'IMAGES', 'SELECTOR'])
    expect(wide[1]!.slice(5)).toEqual(['php-redis', 'docker.io/kubeguide/guestbook-php-frontend', 'app in (guestbook),tier=frontend'])
    expect(await ok(['get', 'all', '-o', 'name'])).toContain('replicaset.apps/frontend')
    expect(await frontendPods()).toBe(3)
  })

  it('scales it and describes it', async () => {
    expect((await ok(['scale', 'rs', 'frontend', '--replicas=5'])).trim()).toBe('replicaset.apps/frontend scaled')
    expect(await ok(['get', 'rs', 'frontend', '-o', 'jsonpath={.spec.replicas}'])).toBe('5')
    await until(async () => (await frontendPods()) === 5 || undefined, timeoutMs, '5 frontend pods')
    await until(async () => /^Replicas:\s+5 current \/ 5 desired$/m.test(await ok(['describe', 'rs', 'frontend'])) || undefined, timeoutMs, 'describe to show 5 current')
    const text = await ok(['describe', 'rs', 'frontend'])
    expect(text).toMatch(/^Name:\s+frontend$/m)
    expect(text).toMatch(/^Selector:\s+app in \(guestbook\),tier=frontend$/m)
    expect(text).toMatch(/^Pods Status:\s+0 Running \/ 5 Waiting \/ 0 Succeeded \/ 0 Failed$/m)
    expect(text).toMatch(/^\s+Image:\s+docker\.io\/kubeguide\/guestbook-php-frontend$/m)
    expect(text).toMatch(/SuccessfulCreate/)
  })

  it('refuses a selector that misses the template\'s labels', async () => {
    const file = join(cluster.root, `bad-${version.namespace}.yaml`)
    await writeFile(file, manifest('bad', 1, 'backend'))
    const refused = await kubectl(['create', '-f', file])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain('The ReplicaSet "bad" is invalid: spec.template.metadata.labels: Invalid value')
    expect(refused.stderr).toContain('`selector` does not match template `labels`')
  })

  it('deletes it with its pods', async () => {
    expect((await ok(['delete', 'rs', 'frontend'])).trim()).toBe('replicaset.apps "frontend" deleted')
    await until(async () => (await frontendPods()) === 0 || undefined, timeoutMs, 'the pods gone')
  })
})

describe('the shoal CLI', () => {
  const shoal = (args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args, '--kubeconfig', kubeconfig, '-n', 'rs-shoal'], { stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
    })
  const ok = async (args: string[]): Promise<string> => {
    const r = await shoal(args)
    expect(r.code, `shoal ${args.join(' ')}: ${r.stderr}`).toBe(0)
    return r.stdout
  }

  it('gets, scales and describes a ReplicaSet', async () => {
    const target = await cluster.target(peer)
    const statusReplicas = async (): Promise<number | undefined> => {
      const r = await apiRequest(target, 'GET', '/apis/apps/v1/namespaces/rs-shoal/replicasets/frontend', { timeoutMs: 3000 })
      return (JSON.parse(r.text) as { status?: { replicas?: number } }).status?.replicas
    }
    const namespace = join(cluster.root, 'rs-shoal-ns.yaml')
    const file = join(cluster.root, 'frontend-shoal.yaml')
    await writeFile(namespace, 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: rs-shoal\n')
    await writeFile(file, manifest('frontend', 2, 'frontend'))
    expect((await ok(['create', '-f', namespace, '-f', file])).trim().split('\n')).toEqual(['namespace/rs-shoal created', 'replicaset.apps/frontend created'])
    await until(async () => (await statusReplicas()) === 2 || undefined, timeoutMs, 'status.replicas 2')
    const table = rows(await ok(['get', 'rs']))
    expect(table[0]).toEqual(['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE'])
    expect(table[1]!.slice(0, 4)).toEqual(['frontend', '2', '2', '0'])
    expect((await ok(['scale', 'rs', 'frontend', '--replicas', '4'])).trim()).toBe('replicaset.apps/frontend scaled')
    await until(async () => (await statusReplicas()) === 4 || undefined, timeoutMs, 'status.replicas 4')
    const text = await ok(['describe', 'rs', 'frontend'])
    expect(text).toMatch(/^Replicas:\s+4 current \/ 4 desired$/m)
    expect(text).toMatch(/^Selector:\s+app in \(guestbook\),tier=frontend$/m)
    expect(text).toMatch(/^Pods Status:\s+0 Running \/ 4 Waiting \/ 0 Succeeded \/ 0 Failed$/m)
    expect(text).toMatch(/^Pod Template:$/m)
  })
})
