// Cluster DNS for Docker-runtime pods, on a real engine (Podman here): a peer
// with services and the Docker runtime gives its pods the engine bridge's
// gateway as nameserver (a relay on port 53 to the peer's cluster DNS), with
// Kubernetes' search list and ndots, and a pod resolves a Service by its full
// name and by its short name to the cluster IP. Skipped, saying why, when no
// engine answers (never in CI: .ci/run starts Podman).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ContainerDns } from '../../node/agent/docker-dns.js'
import type { PodJson } from '../../node/agent/pod-types.js'
import { startLocalPeer, type LocalPeer } from '../node/local-peer.js'
import { createObject, createPod, podNamed, podUntil, stopLocalPeerAndPods } from './agent-helpers.js'
import { busyboxImage, findEngine, removeNodeContainers } from './podman.js'

const lookup = await findEngine()
if (lookup.skipReason !== undefined) console.warn(`Docker cluster DNS tests skipped: ${lookup.skipReason}`)
const nodeName = `docker-dns-${process.pid}`
const isRoot = process.getuid?.() === 0
/** Random, so that a VIP:port this test's userspace proxy listens on meets no other test's. */
const clusterIp = `127.77.${200 + Math.floor(Math.random() * 50)}.${1 + Math.floor(Math.random() * 250)}`
const servicePort = 20_000 + Math.floor(Math.random() * 9_000)

describe.skipIf(lookup.engine === undefined)('cluster DNS for Docker-runtime pods', () => {
  let lp: LocalPeer
  const logged: string[] = []

  beforeAll(async () => {
    if (process.env.DOCKER_HOST === undefined || process.env.DOCKER_HOST === '') process.env.DOCKER_HOST = lookup.engine!.address
    const stderr = console.error.bind(console)
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
      logged.push(args.map(String).join(' '))
      stderr(...args)
    })
    lp = await startLocalPeer(nodeName, {
      agent: { runtime: 'docker', restartBackoffInitialMs: 300, restartBackoffMaxMs: 4000 },
      services: { proxyMode: 'userspace', dnsHost: '127.0.0.1', dnsPort: 0 },
    })
  }, 60_000)

  afterAll(async () => {
    await stopLocalPeerAndPods(lp, 20_000)
    await removeNodeContainers(lookup.engine!.docker, [nodeName])
    vi.restoreAllMocks()
  })

  async function inPod(pod: PodJson, container: string, command: string[]): Promise<string> {
    const result = await lp.peer.agent!.runtime.exec(pod.metadata.uid!, container, command, 10_000)
    return result.output
  }

  it('resolves a Service by NAME.NAMESPACE.svc.cluster.local and by its short NAME to the cluster IP', async () => {
    await createObject(lp.peer, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { clusterIP: clusterIp, selector: { app: 'web' }, ports: [{ port: servicePort, protocol: 'TCP' }] } })
    await createPod(lp.peer, 'client', {
      containers: [
        { name: 'sandboxed', image: busyboxImage, imagePullPolicy: 'Never', command: ['sleep', '3600'] },
        { name: 'sidecar', image: busyboxImage, imagePullPolicy: 'Never', command: ['sleep', '3600'] },
      ],
    })
    const pod = await podUntil(lp.peer, 'client', (p) => p.status?.phase === 'Running', 'Running', 30_000)
    if (!isRoot) {
      // Port 53 on the bridge gateway needs root: the pod keeps the engine's resolver, and the log says why.
      expect(logged.join('\n')).toMatch(/Docker pods get the engine's default resolver, not cluster DNS: .*needs root/)
      return
    }
    const resolvConf = await inPod(pod, 'sandboxed', ['cat', '/etc/resolv.conf'])
    const gateway = /^nameserver (\S+)$/m.exec(resolvConf)?.[1]
    expect(resolvConf).toMatch(/^search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local$/m)
    expect(resolvConf).toMatch(/^options .*ndots:5/m)
    expect(logged.join('\n')).toContain(`cluster DNS for Docker pods: ${gateway}:53 (UDP and TCP), relayed to ${lp.peer.services!.dnsAddress}`)
    // The second container joined the sandbox's network namespace: same resolver.
    expect(await inPod(pod, 'sidecar', ['cat', '/etc/resolv.conf'])).toBe(resolvConf)

    const full = await inPod(pod, 'sandboxed', ['nslookup', 'web.default.svc.cluster.local'])
    expect(full).toMatch(new RegExp(`Name:\\s+web\\.default\\.svc\\.cluster\\.local\\s+Address:\\s+${clusterIp.replace(/\./g, '\\.')}`))
    const short = await inPod(pod, 'sidecar', ['nslookup', 'web'])
    expect(short).toMatch(new RegExp(`Name:\\s+web\\.default\\.svc\\.cluster\\.local\\s+Address:\\s+${clusterIp.replace(/\./g, '\\.')}`))
    // A name nobody has is NXDOMAIN from the cluster DNS, not a timeout.
    expect(await inPod(pod, 'sandboxed', ['nslookup', 'nobody.default.svc.cluster.local'])).toMatch(/NXDOMAIN/)
    expect(podNamed(lp.peer, 'client')?.status?.phase).toBe('Running')
  }, 60_000)

  it('gives the engine\'s default resolver, saying why once, when port 53 on the gateway is taken', async ({ skip }) => {
    if (!isRoot) skip('port 53 is only taken by the peer above when it runs as root')
    // The peer above relays on the gateway's port 53 now: as Podman's aardvark-dns would, it holds it.
    const lines: string[] = []
    const second = new ContainerDns({ docker: lookup.engine!.docker, clusterDns: lp.peer.services!.dnsAddress, log: (line) => lines.push(line) })
    expect(await second.resolverIp()).toBeNull()
    expect(await second.resolverIp()).toBeNull()
    await second.close()
    expect(lines).toEqual([expect.stringMatching(/^Docker pods get the engine's default resolver, not cluster DNS: port 53 on \S+ is taken \(Podman's aardvark-dns/)])
  })
})
