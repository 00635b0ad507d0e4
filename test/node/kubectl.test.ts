// Real kubectl (v1.32, the default, and v1.27, the oldest installed) against a
// 3-peer cluster of real processes, each through a peer's own kubeconfig: the
// guestbook workflow users run, tables, YAML, apply, scale, describe, delete,
// get -w, server-side strict validation and errors.
import { execFile, spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { startVotingCluster, until, type PeerProcess, type ProcessCluster } from './process-cluster.js'

const guestbook = new URL('../../examples/guestbook/', import.meta.url).pathname
const kubectlTimeoutMs = 20_000

interface Run {
  code: number
  stdout: string
  stderr: string
}

let cluster: ProcessCluster
let leader: PeerProcess
let followers: PeerProcess[]

beforeAll(async () => {
  ;({ cluster, leader, followers } = await startVotingCluster(['kc1', 'kc2', 'kc3']))
  for (const p of [leader, ...followers]) expect((await cluster.target(p)).server).toMatch(/^https:/)
}, 60_000)

afterAll(async () => {
  await cluster?.destroy()
})

/** Table lines split into cells at runs of 2+ spaces. */
function rows(text: string): string[][] {
  return text.trimEnd().split('\n').map((l) => l.trim().split(/ {2,}/))
}

const versions = [
  { name: 'v1.32', binary: 'kubectl', namespace: 'kubectl-132', peer: (): PeerProcess => followers[0]!, other: (): PeerProcess => leader },
  { name: 'v1.27', binary: '/usr/lib/google-cloud-sdk/bin/kubectl.1.27', namespace: 'kubectl-127', peer: (): PeerProcess => leader, other: (): PeerProcess => followers[1]! },
]

describe.each(versions)('kubectl $name', (version) => {
  /** kubectl with a peer's kubeconfig and a discovery cache of its own (nothing from ~/.kube). */
  const argsFor = (peer: PeerProcess, args: string[]): string[] => ['--kubeconfig', join(peer.dataDir, 'kubeconfig'), '--cache-dir', join(cluster.root, `kube-cache-${version.namespace}`), '-n', version.namespace, ...args]
  const kubectl = (args: string[], peer = version.peer()): Promise<Run> =>
    new Promise((resolve) => {
      execFile(version.binary, argsFor(peer, args), { timeout: kubectlTimeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
      })
    })
  const ok = async (args: string[], peer?: PeerProcess): Promise<string> => {
    const run = await kubectl(args, peer)
    expect(run.code, `kubectl ${args.join(' ')}: ${run.stderr}`).toBe(0)
    return run.stdout
  }

  it('creates the guestbook (validation on) and shows it in the tables and YAML users know', async () => {
    expect(await ok(['create', 'namespace', version.namespace])).toContain(`namespace/${version.namespace} created`)
    expect((await ok(['create', '-f', guestbook])).trim().split('\n')).toEqual([
      'replicationcontroller/frontend created',
      'service/frontend created',
      'replicationcontroller/redis-master created',
      'service/redis-master created',
      'replicationcontroller/redis-slave created',
      'service/redis-slave created',
    ])
    await ok(['run', 'solo', '--image=busybox', '--restart=Never'])
    const tables = (await ok(['get', 'rc,svc,pods'])).split('\n\n').map(rows)
    const [rcTable, svcTable, podTable] = tables
    expect(rcTable![0]).toEqual(['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE'])
    expect(rcTable!.slice(1).map((r) => [r[0], r[1]])).toEqual([
      ['replicationcontroller/frontend', '3'],
      ['replicationcontroller/redis-master', '1'],
      ['replicationcontroller/redis-slave', '2'],
    ])
    expect(svcTable![0]).toEqual(['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE'])
    expect(svcTable!.slice(1).map((r) => [r[0], r[1], r[4]])).toEqual([
      ['service/frontend', 'NodePort', '80:30001/TCP'],
      ['service/redis-master', 'ClusterIP', '6379/TCP'],
      ['service/redis-slave', 'ClusterIP', '6379/TCP'],
    ])
    expect(podTable![0]).toEqual(['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE'])
    expect(podTable!.find((r) => r[0] === 'pod/solo')?.[1]).toMatch(/^[01]\/1$/)

    const rc = parseYaml(await ok(['get', 'rc', 'redis-master', '-o', 'yaml'])) as Record<string, unknown>
    expect(rc).toMatchObject({
      apiVersion: 'v1',
      kind: 'ReplicationController',
      metadata: { name: 'redis-master', namespace: version.namespace, labels: { name: 'redis-master' } },
      spec: { replicas: 1, selector: { name: 'redis-master' }, template: { spec: { containers: [{ name: 'master', image: 'localhost/shoal/redis:latest', ports: [{ containerPort: 6379, protocol: 'TCP' }] }] } } },
    })
    // RFC 3339 in whole seconds, as Kubernetes writes it.
    expect((rc.metadata as { creationTimestamp: string }).creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
  })

  it('applies: unchanged on re-apply, configured after an edit; scales; describes', async () => {
    // The objects came from `create`, so the first apply adds its annotation (and kubectl warns about that).
    await ok(['apply', '-f', guestbook])
    expect((await ok(['apply', '-f', guestbook])).trim().split('\n')).toEqual([
      'replicationcontroller/frontend unchanged',
      'service/frontend unchanged',
      'replicationcontroller/redis-master unchanged',
      'service/redis-master unchanged',
      'replicationcontroller/redis-slave unchanged',
      'service/redis-slave unchanged',
    ])
    const edited = join(cluster.root, `frontend-${version.namespace}.yaml`)
    await writeFile(edited, (await readFile(join(guestbook, 'frontend.yaml'), 'utf8')).replace('replicas: 3', 'replicas: 4'))
    expect((await ok(['apply', '-f', edited])).trim().split('\n')).toEqual(['replicationcontroller/frontend configured', 'service/frontend unchanged'])
    expect(await ok(['get', 'rc', 'frontend', '-o', 'jsonpath={.spec.replicas}'], version.other())).toBe('4')

    expect(await ok(['scale', 'rc', 'frontend', '--replicas=5'])).toContain('replicationcontroller/frontend scaled')
    expect(await ok(['get', 'rc', 'frontend', '-o', 'jsonpath={.spec.replicas}'])).toBe('5')
    expect(await ok(['get', 'rc', 'frontend', '-o', 'jsonpath={.spec.replicas}'], version.other())).toBe('5')

    const rcText = await ok(['describe', 'rc', 'frontend'])
    expect(rcText).toMatch(/^Name:\s+frontend$/m)
    expect(rcText).toMatch(new RegExp(`^Namespace:\\s+${version.namespace}$`, 'm'))
    expect(rcText).toMatch(/^Selector:\s+name=frontend$/m)
    expect(rcText).toMatch(/^Replicas:\s+\d+ current \/ 5 desired$/m)
    expect(rcText).toMatch(/^\s+Image:\s+localhost\/shoal\/guestbook-frontend:latest$/m)
    expect(rcText).toMatch(/^\s+GET_HOSTS_FROM:\s+env$/m)
    const svcText = await ok(['describe', 'svc', 'frontend'])
    expect(svcText).toMatch(/^Type:\s+NodePort$/m)
    expect(svcText).toMatch(/^Port:\s+<unset>\s+80\/TCP$/m)
    expect(svcText).toMatch(/^NodePort:\s+<unset>\s+30001\/TCP$/m)
    expect(svcText).toMatch(/^Selector:\s+name=frontend$/m)
  })

  it('streams a new pod with get -w', async () => {
    const watcher = spawn(version.binary, argsFor(version.peer(), ['get', 'pods', '-w', '--output-watch-events']), { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    watcher.stdout.on('data', (d: Buffer) => (out += d.toString()))
    watcher.stderr.on('data', (d: Buffer) => (out += d.toString()))
    try {
      // The pre-existing pod arrives first (kubectl lists, then watches from the list's resourceVersion).
      await until(() => /^ADDED\s+solo\s/m.test(out) || undefined, kubectlTimeoutMs, `kubectl get -w to list the existing pod (output so far: ${out})`)
      await ok(['run', 'watched', '--image=busybox', '--restart=Never'], version.other())
      await until(() => /^ADDED\s+watched\s+[01]\/1\s/m.test(out) || undefined, kubectlTimeoutMs, `the new pod's line (output so far: ${out})`)
      await ok(['delete', 'pod', 'watched'], version.other())
      await until(() => /^DELETED\s+watched\s/m.test(out) || undefined, kubectlTimeoutMs, `the deleted pod's line (output so far: ${out})`)
      expect(out.split('\n')[0]).toMatch(/^EVENT\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/)
    } finally {
      watcher.kill()
    }
  })

  it('creates services with `kubectl create service` (typed clients send protobuf)', async () => {
    expect(await ok(['create', 'service', 'nodeport', 'np', '--tcp=80:8080', '--node-port=30080'])).toContain('service/np created')
    const np = JSON.parse(await ok(['get', 'svc', 'np', '-o', 'json'], version.other())) as { metadata: { labels: Record<string, string> }; spec: Record<string, unknown> }
    expect(np.metadata.labels).toEqual({ app: 'np' })
    expect(np.spec).toMatchObject({ type: 'NodePort', selector: { app: 'np' }, ports: [{ name: '80-8080', port: 80, targetPort: 8080, nodePort: 30080, protocol: 'TCP' }] })
    expect(await ok(['create', 'service', 'externalname', 'ext', '--external-name=db.example.com'])).toContain('service/ext created')
    expect(await ok(['get', 'svc', 'ext', '-o', 'jsonpath={.spec.type} {.spec.externalName}'])).toBe('ExternalName db.example.com')
    expect(await ok(['delete', 'svc', 'np', 'ext'])).toContain('service "ext" deleted')
  })

  it('refuses an unknown field on the server (strict validation) and says NotFound for a missing pod', async () => {
    const bad = join(cluster.root, `bad-${version.namespace}.yaml`)
    await writeFile(bad, ['apiVersion: v1', 'kind: Pod', 'metadata:', '  name: bad', 'spec:', '  containers:', '  - name: c', '    image: busybox', '    bogusField: 1', ''].join('\n'))
    const refused = await kubectl(['create', '-f', bad])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain('Error from server (BadRequest)')
    expect(refused.stderr).toContain('strict decoding error: unknown field "spec.containers[0].bogusField"')

    const missing = await kubectl(['get', 'pod', 'nonexistent'])
    expect(missing.code).toBe(1)
    expect(missing.stderr.trim()).toBe('Error from server (NotFound): pods "nonexistent" not found')
    // The refused pod was not created either.
    expect((await kubectl(['get', 'pod', 'bad'])).stderr).toContain('(NotFound)')
  })

  it('deletes the guestbook with delete -f', async () => {
    expect((await ok(['delete', '-f', guestbook])).trim().split('\n')).toEqual([
      'replicationcontroller "frontend" deleted',
      'service "frontend" deleted',
      'replicationcontroller "redis-master" deleted',
      'service "redis-master" deleted',
      'replicationcontroller "redis-slave" deleted',
      'service "redis-slave" deleted',
    ])
    const after = await kubectl(['get', 'rc,svc'], version.other())
    expect(after).toMatchObject({ code: 0, stdout: '' })
    expect(after.stderr.trim()).toBe(`No resources found in ${version.namespace} namespace.`)
  })
})
