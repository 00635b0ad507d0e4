// Services across peers on separate hosts (network namespaces), process
// runtime and the userspace proxy: a Service whose pods run on the two other
// hosts answers through its cluster IP on the first, from both pods, over the
// direct TLS data path between peers (net/peer-data.ts); when
// one pod's peer is SIGKILLed every request still succeeds through the other
// within 2 s; the NodePort answers on every host; cluster DNS resolves the
// name; UDP works through a VIP, to pods on other hosts and on this one; and
// 1,000 more Services do not stall the proxy.
import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { until } from '../node/process-cluster.js'
import { checkNetnsAvailable, type VirtualHost } from './netns.js'
import { nsFetch, startNsCluster, targetOf, viewOf, type NsCluster } from './ns-api.js'

const availability = await checkNetnsAvailable()
if (!availability.ok) console.warn(`[test/hosts/services-hosts] skipping the multi-host tests: ${availability.reason}`)

const marker = 'shoal-services-hosts-test'
const peerArgs = ['--runtime', 'process', '--proxy-mode', 'userspace', '--dns', '127.0.0.1:5353', '--pod-eviction-timeout', '1m']

/** Every pod of this file answers TCP with its name and UDP with its name, on its pod IP. */
const podScript = `const n = process.env.HOSTNAME
require('node:http').createServer((q, s) => s.end(n)).listen(8080, process.env.POD_IP)
const u = require('node:dgram').createSocket('udp4'); u.on('message', (m, r) => u.send(n, r.port, r.address)); u.bind(9090, process.env.POD_IP)
// ${marker}`

function pids(): number[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').filter((l) => l !== '').map(Number)
  } catch {
    return []
  }
}

describe.skipIf(!availability.ok)('services across hosts', () => {
  let ns: NsCluster
  let first: VirtualHost

  /** `count` HTTP GETs to url from inside `host`'s namespace: the bodies, '' for a failed one. */
  async function getFrom(host: VirtualHost, url: string, count: number): Promise<string[]> {
    const script = `const http = require('node:http'); const out = []; let left = ${count}
      const one = () => { const q = http.get(process.argv[1], { agent: false, timeout: 2000 }, (r) => { let b = ''; r.on('data', (c) => (b += c)); r.on('end', () => done(b)) }); q.on('error', () => done('')); q.on('timeout', () => q.destroy()) }
      const done = (b) => { out.push(b); if (--left === 0) process.stdout.write(JSON.stringify(out)); else one() }
      one()`
    const r = await ns.vnet.exec(host, process.execPath, ['-e', script, url], 30_000)
    return JSON.parse(r.stdout || '[]') as string[]
  }

  async function udpFrom(host: VirtualHost, ip: string, port: number): Promise<string> {
    const script = `const u = require('node:dgram').createSocket('udp4'); u.on('message', (m) => { process.stdout.write(String(m)); process.exit(0) })
      u.send('hi', ${port}, '${ip}'); setTimeout(() => process.exit(1), 2000)`
    return (await ns.vnet.exec(host, process.execPath, ['-e', script], 5000)).stdout
  }

  async function api(host: VirtualHost, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
    return nsFetch(ns.vnet, host, targetOf(host), path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }), timeoutMs: 10_000 })
  }

  beforeAll(async () => {
    ns = await startNsCluster('svchosts', 's', peerArgs)
    first = ns.vnet.hosts[0]!
    await until(async () => {
      const v = await viewOf(ns.vnet, first)
      return v.peers.length === 3 && v.peers.every((p) => p.raftRole !== 'learner' && p.raftRole !== 'none' && p.gossipState === 'alive')
    }, 60_000, 'three voters, all alive')
  }, 120_000)

  afterAll(async () => {
    await ns?.destroy()
    for (const pid of pids()) process.kill(pid, 'SIGKILL')
  })

  it('answers through the cluster IP from pods on both other hosts, and keeps answering when one of their peers dies', async () => {
    for (const nodeName of ['s2', 's3']) {
      const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: `echo-${nodeName}`, labels: { app: 'echo' } }, spec: { nodeName, terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: process.execPath, args: ['-e', podScript], ports: [{ name: 'http', containerPort: 8080 }, { name: 'udp', containerPort: 9090, protocol: 'UDP' }] }] } }
      expect((await api(first, 'POST', '/api/v1/namespaces/default/pods', pod)).status).toBe(201)
    }
    const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo' }, spec: { type: 'NodePort', selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'udp', port: 90, targetPort: 'udp', protocol: 'UDP' }] } }
    const created = await api(first, 'POST', '/api/v1/namespaces/default/services', service)
    expect(created.status, created.body).toBe(201)
    const spec = (JSON.parse(created.body) as { spec: { clusterIP: string; ports: { nodePort: number }[] } }).spec
    const vip = spec.clusterIP
    const answers = await until(async () => {
      const got = await getFrom(first, `http://${vip}/`, 20)
      return new Set(got).size === 2 && got.every((b) => b.startsWith('echo-')) ? got : undefined
    }, 60_000, 'answers from both pods through the VIP on s1')
    expect(new Set(answers)).toEqual(new Set(['echo-s2', 'echo-s3']))
    // Through the direct TLS data path between the hosts (net/peer-data.ts), not the libp2p tunnel stream: s1 says so once per peer.
    const s1Output = ns.peers[0]!.output
    const view = await viewOf(ns.vnet, first)
    for (const name of ['s2', 's3']) {
      const peerId = view.peers.find((p) => p.name === name)?.peerId
      expect(s1Output).toContain(`endpoints behind peer ${peerId} are reached over its direct TLS data path`)
    }
    expect(s1Output).not.toContain('no direct data path to peer')

    // NodePort on every host, DNS on s1, UDP through the VIP.
    for (const host of ns.vnet.hosts) {
      const viaNodePort = await until(async () => (await getFrom(host, `http://${host.ip}:${spec.ports[0]!.nodePort}/`, 1))[0] || undefined, 10_000, `the NodePort on ${host.name}`)
      expect(viaNodePort).toMatch(/^echo-s[23]$/)
    }
    const resolved = await ns.vnet.exec(first, process.execPath, ['-e', `const d = new (require('node:dns').promises.Resolver)(); d.setServers(['127.0.0.1:5353']); d.resolve4('echo.default.svc.cluster.local').then((a) => process.stdout.write(a.join(',')))`], 5000)
    expect(resolved.stdout).toBe(vip)
    // UDP through the VIP to the pods on the other hosts (through their peers), and to a pod on this host.
    expect(await until(async () => (await udpFrom(first, vip, 90)) || undefined, 20_000, 'a UDP answer from another host through the VIP')).toMatch(/^echo-s[23]$/)
    const udpPod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'udp-s1', labels: { app: 'udp' } }, spec: { nodeName: 's1', terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: process.execPath, args: ['-e', podScript], ports: [{ name: 'udp', containerPort: 9090, protocol: 'UDP' }] }] } }
    expect((await api(first, 'POST', '/api/v1/namespaces/default/pods', udpPod)).status).toBe(201)
    const udpService = await api(first, 'POST', '/api/v1/namespaces/default/services', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'udp' }, spec: { selector: { app: 'udp' }, ports: [{ port: 90, targetPort: 'udp', protocol: 'UDP' }] } })
    const udpVip = (JSON.parse(udpService.body) as { spec: { clusterIP: string } }).spec.clusterIP
    expect(await until(async () => (await udpFrom(first, udpVip, 90)) || undefined, 20_000, 'a UDP answer through the VIP')).toBe('udp-s1')

    // s3's peer dies (its pod process lives on, unreachable from other hosts without it): within 2 s every request succeeds through s2.
    await ns.cluster.kill(ns.peers[2]!)
    const killedAt = Date.now()
    await until(async () => {
      const got = await getFrom(first, `http://${vip}/`, 10)
      return got.every((b) => b === 'echo-s2') || undefined
    }, 10_000, 'every request answered by the survivor')
    expect(Date.now() - killedAt).toBeLessThan(2000 + 1500)
  }, 180_000)

  it('follows 1,000 new services without stalling', async () => {
    const started = Date.now()
    // One process inside s1's namespace creates them, 32 at a time, over one HTTPS agent.
    const target = targetOf(first)
    const script = `const https = require('node:https'); const agent = new https.Agent({ keepAlive: true, maxSockets: 32 }); let next = 0; let failed = 0
      const one = () => { if (next >= 1000) return Promise.resolve(); const k = next++
        const body = JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'many-' + k }, spec: { selector: { app: 'echo' }, ports: [{ port: 80, targetPort: 'http' }] } })
        return new Promise((done) => { const q = https.request('https://127.0.0.1:7947/api/v1/namespaces/default/services', { method: 'POST', agent, ca: process.env.SHOAL_CA, headers: { authorization: 'Bearer ' + process.env.SHOAL_TOKEN, 'content-type': 'application/json' } }, (r) => { if (r.statusCode !== 201) failed++; r.resume(); r.on('end', done) }); q.on('error', () => { failed++; done() }); q.end(body) }).then(one) }
      Promise.all(Array.from({ length: 32 }, one)).then(() => process.stdout.write(String(failed)))`
    const created = await ns.vnet.exec(first, 'env', [`SHOAL_CA=${target.caPem ?? ''}`, `SHOAL_TOKEN=${target.token ?? ''}`, process.execPath, '-e', script], 90_000)
    expect(created.stdout).toBe('0')
    const last = JSON.parse((await api(first, 'GET', '/api/v1/namespaces/default/services/many-999')).body) as { spec: { clusterIP: string } }
    await until(async () => (await getFrom(first, `http://${last.spec.clusterIP}/`, 1))[0] === 'echo-s2' || undefined, 30_000, 'the last of 1,000 services answering')
    // And keeps answering without delay.
    const t = Date.now()
    expect((await getFrom(first, `http://${last.spec.clusterIP}/`, 5)).every((b) => b === 'echo-s2')).toBe(true)
    expect(Date.now() - t).toBeLessThan(3000)
    expect(Date.now() - started).toBeLessThan(90_000)
  }, 150_000)
})
