// The resource commands (get, describe, create, apply, delete, scale, logs,
// kubeconfig) as a user runs them: the real CLI as a process against one real
// peer over HTTPS, asserting on what it prints and how it exits.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { apiRequest, type ApiTarget } from '../../node/cli/client.js'
import { parseKubeconfig } from '../../node/security/kubeconfig.js'
import { ProcessCluster, until, type PeerProcess } from './process-cluster.js'

const entry = new URL('../../node/cli/main.ts', import.meta.url).pathname
const guestbook = new URL('../../examples/guestbook/', import.meta.url).pathname

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

let cluster: ProcessCluster
let peer: PeerProcess
let target: ApiTarget
let kubeconfig: string

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', entry, ...args, '--kubeconfig', kubeconfig], { stdio: ['pipe', 'pipe', 'pipe'] })
}

function shoal(args: string[], stdin = ''): Promise<Run> {
  const child = start(args)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  child.stdin!.end(stdin)
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })))
}

async function api(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await apiRequest(target, method, path, { timeoutMs: 10_000, ...(body === undefined ? {} : { body: JSON.stringify(body), contentType }) })
  return { status: r.status, json: JSON.parse(r.text) as Record<string, unknown> }
}

/** Table lines split into cells at runs of 2+ spaces (cells such as "Debian GNU/Linux 12" keep their single spaces). */
function rows(text: string): string[][] {
  return text.trimEnd().split('\n').map((l) => l.trim().split(/ {2,}/))
}

beforeAll(async () => {
  cluster = await ProcessCluster.create()
  peer = await cluster.add('solo')
  cluster.start(peer)
  target = await cluster.target(peer)
  kubeconfig = join(peer.dataDir, 'kubeconfig')
  await until(async () => (await api('GET', '/api/v1/namespaces/default')).status === 200, 30_000, 'the API to serve the default namespace')
}, 60_000)

afterAll(async () => {
  await cluster?.destroy()
})

describe('shoal resource commands against a peer', () => {
  it('creates the guestbook from its directory and lists it in kubectl\'s tables and formats', async () => {
    const created = await shoal(['create', '-f', guestbook])
    expect(created.stderr).toBe('')
    expect(created.status).toBe(0)
    // Files in name order, documents in file order.
    expect(created.stdout.trim().split('\n')).toEqual([
      'replicationcontroller/frontend created',
      'service/frontend created',
      'replicationcontroller/redis-master created',
      'service/redis-master created',
      'replicationcontroller/redis-slave created',
      'service/redis-slave created',
    ])

    const both = await shoal(['get', 'rc,svc'])
    expect(both.status).toBe(0)
    const [rcTable, svcTable] = both.stdout.split('\n\n').map(rows)
    expect(rcTable![0]).toEqual(['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE'])
    expect(rcTable!.slice(1).map((r) => [r[0], r[1]])).toEqual([
      ['replicationcontroller/frontend', '3'],
      ['replicationcontroller/redis-master', '1'],
      ['replicationcontroller/redis-slave', '2'],
    ])
    expect(svcTable![0]).toEqual(['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE'])
    const frontendService = svcTable!.find((r) => r[0] === 'service/frontend')!
    expect([frontendService[1], frontendService[4]]).toEqual(['NodePort', '80:30001/TCP'])
    // Columns are padded with three spaces, as kubectl pads them.
    expect(both.stdout.split('\n')[0]).toMatch(/^NAME {3,}DESIRED {3}CURRENT {3}READY {3}AGE$/)

    const wide = await shoal(['get', 'rc', 'frontend', '-o', 'wide'])
    expect(rows(wide.stdout)[0]).toEqual(['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE', 'CONTAINERS', 'IMAGES', 'SELECTOR'])
    expect(rows(wide.stdout)[1]!.slice(5)).toEqual(['php-redis', 'localhost/shoal/guestbook-frontend:latest', 'name=frontend'])

    const all = await shoal(['get', 'svc', '-A', '-l', 'name=redis-slave'])
    expect(rows(all.stdout)).toEqual([
      ['NAMESPACE', 'NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE'],
      ['default', 'redis-slave', 'ClusterIP', expect.any(String), expect.any(String), '6379/TCP', expect.any(String)],
    ])

    const yaml = await shoal(['get', 'svc', 'frontend', '-o', 'yaml'])
    expect(parseYaml(yaml.stdout)).toMatchObject({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'frontend', namespace: 'default' }, spec: { type: 'NodePort', ports: [{ port: 80, nodePort: 30001 }] } })
    const json = JSON.parse((await shoal(['get', 'rc', '-o', 'json'])).stdout) as { kind: string; items: { kind: string; metadata: { name: string } }[] }
    expect(json.kind).toBe('List')
    expect(json.items.map((i) => `${i.kind}/${i.metadata.name}`)).toEqual(['ReplicationController/frontend', 'ReplicationController/redis-master', 'ReplicationController/redis-slave'])
    expect((await shoal(['get', 'rc,svc', '-l', 'name=frontend', '-o', 'name'])).stdout).toBe('replicationcontroller/frontend\nservice/frontend\n')

    const none = await shoal(['get', 'pods', '-n', 'kube-public'])
    expect(none).toMatchObject({ status: 0, stdout: '', stderr: 'No resources found in kube-public namespace.\n' })
  })

  it('reports errors in one line: not found, unknown types, bad YAML, and a failing document among good ones', async () => {
    expect(await shoal(['get', 'pods', 'nope'])).toMatchObject({ status: 1, stdout: '', stderr: 'shoal get: pods "nope" not found\n' })
    expect(await shoal(['get', 'widgets'])).toMatchObject({ status: 1, stderr: 'shoal get: the server doesn\'t have a resource type "widgets"\n' })
    expect(await shoal(['get', 'pods', '-o', 'table'])).toMatchObject({ status: 2, stderr: 'shoal get: unknown output format "table"; use wide, json, yaml or name\n' })

    const bad = join(cluster.root, 'bad.yaml')
    await writeFile(bad, 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n   oops: [\n')
    const badRun = await shoal(['create', '-f', bad])
    expect(badRun.status).toBe(1)
    expect(badRun.stderr).toMatch(new RegExp(`^shoal create: error parsing ${bad}: .*line 4.*\\n$`))

    // The first document exists already: it fails, the second is still created, and the exit code says something failed.
    const mixed = 'apiVersion: v1\nkind: Service\nmetadata: {name: frontend}\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p1, labels: {app: p}}\nspec:\n  nodeName: host-a\n  containers:\n  - {name: c, image: busybox, resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 200m, memory: 128Mi}}}\n'
    const partial = await shoal(['create', '-f', '-'], mixed)
    expect(partial.status).toBe(1)
    expect(partial.stdout).toBe('pod/p1 created\n')
    expect(partial.stderr).toBe('shoal create: error when creating "STDIN": services "frontend" already exists\n')
  })

  it('applies: configured, then unchanged, then a new replica count reaches the server', async () => {
    const frontend = join(guestbook, 'frontend.yaml')
    const first = await shoal(['apply', '-f', frontend])
    expect(first.status).toBe(0)
    // Made by create, so it has no applied configuration yet.
    expect(first.stdout).toBe('replicationcontroller/frontend configured\nservice/frontend configured\n')
    expect(first.stderr).toContain('has no kubectl.kubernetes.io/last-applied-configuration annotation')
    expect(await shoal(['apply', '-f', frontend])).toMatchObject({ status: 0, stdout: 'replicationcontroller/frontend unchanged\nservice/frontend unchanged\n', stderr: '' })

    const five = join(cluster.root, 'frontend-5.yaml')
    await writeFile(five, (await readFile(frontend, 'utf8')).replace('replicas: 3', 'replicas: 5'))
    expect(await shoal(['apply', '-f', five])).toMatchObject({ status: 0, stdout: 'replicationcontroller/frontend configured\nservice/frontend unchanged\n' })
    expect((await api('GET', '/api/v1/namespaces/default/replicationcontrollers/frontend')).json).toMatchObject({ spec: { replicas: 5 } })

    // A new object is created, with its configuration stored for the next apply.
    const fresh = 'apiVersion: v1\nkind: Service\nmetadata: {name: extra}\nspec: {ports: [{port: 81}], selector: {app: extra}}\n'
    expect(await shoal(['apply', '-f', '-'], fresh)).toMatchObject({ status: 0, stdout: 'service/extra created\n' })
    expect(await shoal(['apply', '-f', '-'], fresh)).toMatchObject({ status: 0, stdout: 'service/extra unchanged\n' })
    // Dropping the selector from the configuration removes it from the object.
    expect(await shoal(['apply', '-f', '-'], fresh.replace(', selector: {app: extra}', ''))).toMatchObject({ status: 0, stdout: 'service/extra configured\n' })
    expect((await api('GET', '/api/v1/namespaces/default/services/extra')).json.spec).not.toHaveProperty('selector')
  })

  it('scales a replication controller through its scale subresource', async () => {
    expect(await shoal(['scale', 'rc', 'redis-slave', '--replicas=4'])).toMatchObject({ status: 0, stdout: 'replicationcontroller/redis-slave scaled\n' })
    expect((await api('GET', '/api/v1/namespaces/default/replicationcontrollers/redis-slave')).json).toMatchObject({ spec: { replicas: 4 } })
    expect(await shoal(['scale', 'svc', 'frontend', '--replicas=2'])).toMatchObject({ status: 2, stderr: 'shoal scale: services cannot be scaled (the server has no scale subresource for them)\n' })
    expect((await shoal(['scale', 'rc', 'redis-slave'])).status).toBe(2)
  })

  it('describes a node with its conditions, addresses, capacity, pods and events', async () => {
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'host-a', labels: { 'kubernetes.io/hostname': 'host-a', 'node-role.kubernetes.io/worker': '' } },
      // Unschedulable and tainted: nothing but the test's own pod lands here.
      spec: { unschedulable: true, taints: [{ key: 'dedicated', value: 'test', effect: 'NoSchedule' }] },
      status: {
        capacity: { cpu: '2', memory: '4Gi', pods: '110' },
        allocatable: { cpu: '1900m', memory: '3800Mi', pods: '110' },
        conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: '2026-01-01T00:00:00Z', lastTransitionTime: '2026-01-01T00:00:00Z', reason: 'PeerReady', message: 'peer is posting ready status' }],
        addresses: [{ type: 'InternalIP', address: '10.0.0.5' }, { type: 'Hostname', address: 'host-a' }],
        nodeInfo: { machineID: 'm1', systemUUID: 's1', bootID: 'b1', kernelVersion: '6.1.0', osImage: 'Debian GNU/Linux 12', containerRuntimeVersion: 'podman://4.3', kubeletVersion: 'v1.32.0', kubeProxyVersion: 'v1.32.0', operatingSystem: 'linux', architecture: 'amd64' },
      },
    }
    expect((await api('POST', '/api/v1/nodes', node)).status).toBe(201)
    const event = { apiVersion: 'v1', kind: 'Event', metadata: { name: 'host-a.ready', namespace: 'default' }, involvedObject: { kind: 'Node', name: 'host-a' }, reason: 'NodeReady', message: 'Node host-a is ready', type: 'Normal', source: { component: 'shoal', host: 'host-a' }, lastTimestamp: new Date().toISOString() }
    expect((await api('POST', '/api/v1/namespaces/default/events', event)).status).toBe(201)

    const d = await shoal(['describe', 'node', 'host-a'])
    expect(d.stderr).toBe('')
    expect(d.status).toBe(0)
    const lines = d.stdout.split('\n')
    expect(lines[0]).toBe('Name:               host-a')
    expect(lines).toContain('Roles:              worker')
    expect(lines).toContain('Taints:             dedicated=test:NoSchedule')
    expect(lines).toContain('Unschedulable:      true')
    expect(d.stdout).toContain('Conditions:\n  Type    Status  LastHeartbeatTime                 LastTransitionTime                Reason      Message\n')
    expect(d.stdout).toContain('  Ready   True    Thu, 01 Jan 2026 00:00:00 +0000   Thu, 01 Jan 2026 00:00:00 +0000   PeerReady   peer is posting ready status\n')
    expect(d.stdout).toContain('Addresses:\n  InternalIP:  10.0.0.5\n  Hostname:    host-a\n')
    expect(d.stdout).toContain('Capacity:\n  cpu:     2\n  memory:  4Gi\n  pods:    110\nAllocatable:\n  cpu:     1900m\n  memory:  3800Mi\n')
    expect(d.stdout).toMatch(/ {2}OS Image: +Debian GNU\/Linux 12\n/)
    expect(d.stdout).toMatch(/Non-terminated Pods: +\(1 in total\)\n/)
    expect(d.stdout).toMatch(/ {2}default +p1 +100m \(5%\) +200m \(10%\) +64Mi \(1%\) +128Mi \(3%\) +\S+\n/)
    expect(d.stdout).toMatch(/ {2}cpu +100m \(5%\) +200m \(10%\)\n {2}memory +64Mi \(1%\) +128Mi \(3%\)\n/)
    expect(d.stdout).toMatch(/Events:\n {2}Type +Reason +Age +From +Message\n.*\n {2}Normal +NodeReady +\S+ +shoal, host-a +Node host-a is ready\n$/)
  })

  it('describes pods, replication controllers and services', async () => {
    const pod = await shoal(['describe', 'pod', 'p1'])
    expect(pod.status).toBe(0)
    expect(pod.stdout).toMatch(/^Name: +p1\nNamespace: +default\nNode: +host-a\/\n/)
    expect(pod.stdout).toMatch(/Labels: +app=p\n/)
    expect(pod.stdout).toMatch(/ {4}Image: +busybox\n/)
    expect(pod.stdout).toMatch(/ {4}Requests:\n {6}cpu: +100m\n {6}memory: +64Mi\n/)
    expect(pod.stdout).toMatch(/Events: +<none>\n$/)

    const rc = await shoal(['describe', 'rc', 'redis-slave'])
    expect(rc.stdout).toMatch(/^Name: +redis-slave\nNamespace: +default\nSelector: +name=redis-slave\n/)
    expect(rc.stdout).toMatch(/Replicas: +\d+ current \/ 4 desired\n/)
    expect(rc.stdout).toMatch(/Pods Status: +\d+ Running \/ \d+ Waiting \/ \d+ Succeeded \/ \d+ Failed\n/)
    expect(rc.stdout).toMatch(/Pod Template:\n {2}Labels: +name=redis-slave\n {2}Containers:\n {3}slave:\n {4}Image: +localhost\/shoal\/guestbook-redis-slave:latest\n {4}Port: +6379\/TCP\n/)
    expect(rc.stdout).toMatch(/ {4}Environment:\n {6}GET_HOSTS_FROM: +env\n/)

    const svc = await shoal(['describe', 'svc', 'frontend'])
    expect(svc.stdout).toMatch(/Type: +NodePort\n/)
    // No frontend pod has an IP (no agent runs them here): the endpoints controller lists none yet.
    expect(svc.stdout).toMatch(/Port: +<unset> {2}80\/TCP\nTargetPort: +80\/TCP\nNodePort: +<unset> {2}30001\/TCP\nEndpoints: +<none>\n/)
    expect(svc.stdout).toMatch(/Selector: +name=frontend\n/)

    // A service without a selector, with the Endpoints a user keeps by hand (an external database, say).
    const external = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'external-db' }, spec: { ports: [{ port: 80 }] } }
    expect((await api('POST', '/api/v1/namespaces/default/services', external)).status).toBe(201)
    const endpoints = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'external-db' }, subsets: [{ addresses: [{ ip: '10.88.0.2' }, { ip: '10.88.0.3' }], ports: [{ port: 80 }] }] }
    expect((await api('POST', '/api/v1/namespaces/default/endpoints', endpoints)).status).toBe(201)
    const manual = await shoal(['describe', 'svc', 'external-db'])
    expect(manual.stdout).toMatch(/Endpoints: +10\.88\.0\.2:80,10\.88\.0\.3:80\n/)

    expect(await shoal(['describe', 'svc', 'nope'])).toMatchObject({ status: 1, stderr: 'shoal describe: services "nope" not found\n' })
  })

  it('prints the table, then a row per change, with get -w', async () => {
    const child = start(['get', 'rc', '-w'])
    let out = ''
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    try {
      await until(() => /redis-slave/.test(out) || undefined, 15_000, 'the first table')
      expect(out.split('\n')[0]).toMatch(/^NAME +DESIRED +CURRENT +READY +AGE$/)
      const patched = await api('PATCH', '/api/v1/namespaces/default/replicationcontrollers/redis-master/scale', { spec: { replicas: 7 } }, 'application/merge-patch+json')
      expect(patched.status).toBe(200)
      await until(() => /\nredis-master +7 /.test(out) || undefined, 15_000, 'a row for the change')
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('deletes by name, by selector and by file, and logs answers with one line', async () => {
    expect(await shoal(['delete', 'rc', 'frontend', 'nope'])).toMatchObject({ status: 1, stdout: 'replicationcontroller "frontend" deleted\n', stderr: 'shoal delete: replicationcontrollers "nope" not found\n' })
    expect(await shoal(['get', 'rc', 'frontend'])).toMatchObject({ status: 1, stderr: 'shoal get: replicationcontrollers "frontend" not found\n' })
    expect(await shoal(['delete', 'svc', '-l', 'name=redis-slave', '--cascade=orphan'])).toMatchObject({ status: 0, stdout: 'service "redis-slave" deleted\n' })
    const byFile = await shoal(['delete', '-f', join(guestbook, 'redis-master.yaml')])
    expect(byFile).toMatchObject({ status: 0, stdout: 'replicationcontroller "redis-master" deleted\nservice "redis-master" deleted\n' })
    expect((await shoal(['delete', 'rc'])).status).toBe(2)

    const logs = await shoal(['logs', 'p1'])
    if (logs.status !== 0) {
      expect(logs.status).toBe(1)
      expect(logs.stderr).toMatch(/^shoal logs: [^\n]+\n$/)
    }
  })

  it('prints a kubeconfig for the peer, or for another server URL', async () => {
    const own = await shoal(['kubeconfig'])
    expect(parseKubeconfig(own.stdout)).toEqual(parseKubeconfig(await readFile(kubeconfig, 'utf8')))
    const elsewhere = await shoal(['kubeconfig', '--server', 'https://10.0.0.9:7947'])
    expect(parseYaml(elsewhere.stdout)).toMatchObject({ clusters: [{ cluster: { server: 'https://10.0.0.9:7947' } }] })
    // --data-dir names a peer's own kubeconfig, and beats $KUBECONFIG.
    const byDir = await new Promise<string>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', entry, 'get', 'ns', 'default', '-o', 'name', '--data-dir', peer.dataDir], { env: { ...process.env, KUBECONFIG: '/nonexistent/kubeconfig' } })
      let text = ''
      child.stdout.on('data', (d: Buffer) => (text += d.toString()))
      child.on('close', () => resolve(text))
    })
    expect(byDir).toBe('namespace/default\n')
  })
})
