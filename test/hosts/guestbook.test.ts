// The guestbook end to end, as its users ran it: three peers on three hosts
// (network namespaces) with the Docker runtime on Podman; the manifests of
// examples/guestbook/ created with kubectl and, once deleted, with shoal; every
// pod Running and Ready; the page opened in headless Chromium through NodePort
// 30001 on each host, a message added and read back through the replicas; the
// peer running the Redis master SIGKILLed: the master is rescheduled and the
// page works again within 10 s; everything deleted and no container left on
// any host.
//
// Each host runs a Podman service of its own inside its namespace (one shared
// store, one bridge per namespace): a pod's address on the engine's bridge is
// only reachable from the namespace that made it, the way a Docker host's pods
// are only reachable on that host. Services use a routed CIDR (10.96.0.0/16,
// added to each host's lo) so containers reach them through their gateway.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCommand } from '../../net/iptables.js'
import { findEngine, countNodeContainers, removeNodeContainers } from '../agent/podman.js'
import { ProcessCluster, until, type PeerProcess } from '../node/process-cluster.js'
import { VirtualNetwork, checkNetnsAvailable, type VirtualHost } from './netns.js'
import { nsFetch, targetOf, targets } from './ns-api.js'

const repo = new URL('../../', import.meta.url).pathname
const guestbook = join(repo, 'examples/guestbook')
const chromiumPath = '/usr/bin/chromium'
const chromiumFlags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
const images = ['busybox', 'redis', 'guestbook-redis-slave', 'guestbook-frontend']
const nodePort = 30001
const peerArgs = ['--runtime', 'docker', '--proxy-mode', 'userspace', '--service-cidr', '10.96.0.0/16', '--pod-eviction-timeout', '1s', '--restart-backoff-initial', '1s']
const controllers = { 'redis-master': 1, 'redis-slave': 2, frontend: 3 }

async function skipReason(): Promise<string | undefined> {
  const netns = await checkNetnsAvailable()
  if (!netns.ok) return netns.reason
  const engine = await findEngine()
  if (engine.skipReason !== undefined) return engine.skipReason
  if (!existsSync(chromiumPath)) return `${chromiumPath} is missing (apt-get install -y chromium)`
  return undefined
}
const skip = await skipReason()
if (skip !== undefined) console.warn(`[test/hosts/guestbook] skipping the guestbook end to end: ${skip}`)

/** A Podman service serving the Docker API inside one host's network namespace. */
interface HostEngine {
  socket: string
  docker: Docker
  service: ChildProcess
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 1000 }, (res) => resolve(res.statusCode === 200))
    req.on('error', () => resolve(false))
    req.on('timeout', () => req.destroy())
    req.end()
  })
}

async function startHostEngine(host: VirtualHost, dir: string): Promise<HostEngine> {
  const socket = join(dir, `podman-${host.name}.sock`)
  const log = openSync(join(dir, `podman-${host.name}.log`), 'a')
  // nsenter enters the network namespace only (ip netns exec would give it a mount namespace of its own too).
  const service = spawn('nsenter', [`--net=/run/netns/${host.namespace}`, 'podman', 'system', 'service', '--time=0', `unix://${socket}`], { cwd: dir, stdio: ['ignore', log, log], detached: true })
  await until(() => ping(socket).then((ok) => ok || undefined), 30_000, `the podman service of ${host.name}`)
  return { socket, docker: new Docker({ socketPath: socket }), service }
}

/** The three hosts, their peers (named as the nodes: gb1, gb2, gb3) and which host each peer lives on. */
interface Hosts {
  vnet: VirtualNetwork
  cluster: ProcessCluster
  peers: PeerProcess[]
  hostOf: Map<string, VirtualHost>
}

describe.skipIf(skip !== undefined)('the guestbook on three hosts with the Docker runtime', () => {
  let ns: Hosts
  let dir: string
  let browser: Browser
  let page: Page
  const engines = new Map<VirtualHost, HostEngine>()
  const nodeNames = ['gb1', 'gb2', 'gb3']
  const hostOf = (peer: PeerProcess): VirtualHost => ns.hostOf.get(peer.name)!
  const urlOf = (host: VirtualHost): string => `http://${host.ip}:${nodePort}/`

  async function api<T>(host: VirtualHost, path: string): Promise<T> {
    const r = await nsFetch(ns.vnet, host, targetOf(host), path, { timeoutMs: 5000 })
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.body}`)
    return JSON.parse(r.body) as T
  }

  interface PodView { metadata: { name: string; labels?: Record<string, string> }; spec: { nodeName?: string }; status?: { phase?: string; conditions?: { type: string; status: string }[] } }
  const podsOf = async (host: VirtualHost, namespace: string) => (await api<{ items: PodView[] }>(host, `/api/v1/namespaces/${namespace}/pods`)).items
  const isReady = (p: PodView) => p.status?.phase === 'Running' && (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')

  /** Every replica of every controller Running and Ready, as `host`'s peer sees it. */
  async function waitForGuestbook(host: VirtualHost, namespace: string, timeoutMs: number): Promise<PodView[]> {
    return until(async () => {
      const pods = await podsOf(host, namespace)
      const ready = (name: string) => pods.filter((p) => p.metadata.labels?.name === name && isReady(p)).length
      return Object.entries(controllers).every(([name, replicas]) => ready(name) === replicas) && pods.length === 6 ? pods : undefined
    }, timeoutMs, `the guestbook's 6 pods Running and Ready in ${namespace}`)
  }

  /** Runs a command inside `host`'s namespace; fails the test on a non-zero exit. */
  async function run(host: VirtualHost, command: string, args: string[]): Promise<string> {
    const r = await ns.vnet.exec(host, command, args, 60_000)
    if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
    return r.stdout
  }
  const kubectl = (host: VirtualHost, args: string[]) => run(host, 'kubectl', ['--kubeconfig', join(peerOf(host).dataDir, 'kubeconfig'), ...args])
  const shoal = (host: VirtualHost, args: string[]) => run(host, process.execPath, ['--import', 'tsx', join(repo, 'node/cli/main.ts'), ...args, '--kubeconfig', join(peerOf(host).dataDir, 'kubeconfig')])
  const peerOf = (host: VirtualHost): PeerProcess => ns.peers.find((p) => hostOf(p) === host)!

  /** Opens the page on `url`, adds `message` through the form and waits until the list (read from the replicas) shows it. */
  async function addAndSee(url: string, message: string, timeoutMs: number): Promise<void> {
    await page.goto(url, { timeout: timeoutMs })
    await page.fill('#message', message)
    await page.click('#add')
    await page.locator('#messages li', { hasText: message }).waitFor({ timeout: timeoutMs })
  }

  async function containersLeft(): Promise<number> {
    let total = 0
    for (const [k, name] of nodeNames.entries()) total += await countNodeContainers(engines.get(ns.vnet.hosts[k]!)!.docker, name)
    return total
  }

  beforeAll(async () => {
    const built = await runCommand([join(repo, 'scripts/build-images.sh'), ...images], undefined, 300_000)
    if (built.code !== 0) throw new Error(`scripts/build-images.sh failed: ${built.stderr}`)
    dir = mkdtempSync(join(tmpdir(), 'shoal-guestbook-'))
    await startHosts()
    // Chromium runs inside the first host's namespace, from where every host's address is reachable.
    const wrapper = join(dir, 'chromium-in-h1')
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns.vnet.hosts[0]!.namespace} ${chromiumPath} "$@"\n`, { mode: 0o755 })
    browser = await chromium.launch({ executablePath: wrapper, args: chromiumFlags })
    page = await browser.newPage()
  }, 180_000)

  /** Three hosts, each with its Podman service and a peer whose DOCKER_HOST names it; the first bootstraps, the others join. */
  async function startHosts(): Promise<void> {
    const vnet = await VirtualNetwork.create({ hosts: 3, label: 'guestbook' })
    ns = { vnet, cluster: await ProcessCluster.create(), peers: [], hostOf: new Map() }
    for (const [k, host] of vnet.hosts.entries()) {
      engines.set(host, await startHostEngine(host, dir))
      ns.peers.push(await ns.cluster.add(nodeNames[k]!, { ip: host.ip }))
      ns.hostOf.set(nodeNames[k]!, host)
    }
    const [first, ...others] = ns.peers as [PeerProcess, ...PeerProcess[]]
    startPeer(first)
    const token = await ns.cluster.tokenOf(first)
    for (const peer of others) startPeer(peer, ['--join', token])
    for (const peer of ns.peers) targets.set(hostOf(peer), await ns.cluster.target(peer))
    await until(async () => ((await api<{ items: unknown[] }>(vnet.hosts[0]!, '/api/v1/nodes')).items.length === 3 ? true : undefined), 60_000, 'three Nodes')
  }

  /** Starts (or restarts) a peer inside its host, with DOCKER_HOST naming that host's Podman service. */
  function startPeer(peer: PeerProcess, extraArgs: string[] = []): void {
    const host = hostOf(peer)
    const env = { DOCKER_HOST: `unix://${engines.get(host)!.socket}` }
    ns.cluster.start(peer, [...peerArgs, ...extraArgs], (command, args) => ns.vnet.spawn(host, command, args, { env }))
  }

  afterAll(async () => {
    await browser?.close().catch(() => undefined)
    await ns?.cluster.destroy()
    for (const [k, engine] of [...engines.values()].entries()) {
      await removeNodeContainers(engine.docker, [nodeNames[k]!]).catch(() => undefined)
      engine.service.kill('SIGTERM')
    }
    await ns?.vnet.destroy()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  }, 60_000)

  it('runs the guestbook created with kubectl: every pod Ready, the page works through NodePort 30001 on every host', async () => {
    const [h1] = ns.vnet.hosts as [VirtualHost]
    const created = await kubectl(h1, ['create', '-f', guestbook])
    expect(created.trim().split('\n').sort()).toEqual(['frontend', 'redis-master', 'redis-slave'].flatMap((n) => [`replicationcontroller/${n} created`, `service/${n} created`]).sort())
    const pods = await waitForGuestbook(h1, 'default', 60_000)
    expect(new Set(pods.map((p) => p.spec.nodeName)).size).toBeGreaterThan(1)
    const table = await kubectl(h1, ['get', 'pods'])
    expect(table.split('\n')[0]).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE/)
    expect(table.match(/\s1\/1\s+Running\s/g)).toHaveLength(6)

    for (const host of ns.vnet.hosts) await addAndSee(urlOf(host), `hello through ${host.name}`, 15_000)
    // Read back through the replicas: every message is listed, whichever host serves the page.
    await page.goto(urlOf(ns.vnet.hosts[2]!))
    for (const host of ns.vnet.hosts) await page.locator('#messages li', { hasText: `hello through ${host.name}` }).waitFor({ timeout: 5000 })

    await kubectl(h1, ['delete', '-f', guestbook])
    await until(async () => ((await podsOf(h1, 'default')).length === 0 && (await containersLeft()) === 0 ? true : undefined), 60_000, 'every pod and container gone after kubectl delete')
  }, 150_000)

  it('runs it created with shoal, survives the SIGKILL of the Redis master\'s peer within 10 s, and leaves nothing behind', async () => {
    const [h1, h2] = ns.vnet.hosts as [VirtualHost, VirtualHost]
    await shoal(h1, ['create', '-f', guestbook])
    const pods = await waitForGuestbook(h1, 'default', 60_000)
    await addAndSee(urlOf(h2), 'before the failover', 15_000)

    const masterNode = pods.find((p) => p.metadata.labels?.name === 'redis-master')!.spec.nodeName!
    const victim = ns.peers.find((p) => p.name === masterNode)!
    const survivor = ns.vnet.hosts.find((h) => h !== hostOf(victim))!
    await ns.cluster.kill(victim)
    const killedAt = Date.now()
    let attempt = 0
    await until(async () => {
      await addAndSee(urlOf(survivor), `after the failover ${++attempt}`, 3000)
      return true
    }, 15_000, 'the page to add and list a message after the failover')
    const recoveredMs = Date.now() - killedAt
    console.log(`[guestbook] ${victim.name} (the Redis master's peer) SIGKILLed: the page added and listed a message again ${recoveredMs} ms later`)
    const moved = await until(async () => (await podsOf(survivor, 'default')).find((p) => p.metadata.labels?.name === 'redis-master' && p.spec.nodeName !== masterNode && isReady(p)), 5000, 'the new master')
    expect(moved.spec.nodeName).not.toBe(masterNode)
    expect(recoveredMs).toBeLessThan(10_000)

    // The killed peer comes back and stops the copies it had left running (their pods live elsewhere now).
    const victimHost = hostOf(victim)
    const victimIndex = ns.vnet.hosts.indexOf(victimHost)
    startPeer(victim)
    await until(async () => {
      const running = await engines.get(victimHost)!.docker.listContainers({ filters: JSON.stringify({ label: [`io.shoal.node=${nodeNames[victimIndex]}`] }) })
      const bound = (await podsOf(survivor, 'default')).filter((p) => p.spec.nodeName === victim.name).length
      return bound === 0 && running.length === 0 ? true : undefined
    }, 30_000, `${victim.name}, restarted, to stop the pods that moved away`)

    await shoal(survivor, ['delete', '-f', guestbook])
    await until(async () => ((await podsOf(survivor, 'default')).length === 0 && (await containersLeft()) === 0 ? true : undefined), 60_000, 'every pod and container gone after shoal delete')
  }, 150_000)
})
