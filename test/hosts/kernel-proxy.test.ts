// The kernel data path of the service proxy, for real: KernelProxy programs
// iptables-nft inside a network namespace (h1) and processes there (and in a
// second namespace, h2, playing a container or another host) connect to VIPs.
import type { ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KernelProxy } from '../../net/kernel-proxy.js'
import type { ProxyEndpoint, ProxyServicePort } from '../../net/proxy-types.js'
import { checkNetnsAvailable, VirtualNetwork, type VirtualHost } from './netns.js'

const availability = await checkNetnsAvailable()
const skipReason = !availability.ok || !availability.iptables ? availability.reason : null
if (skipReason !== null) console.warn(`[test/hosts/kernel-proxy] skipping: ${skipReason}`)

/** Listens on every ip:port given; each connection is answered with that ip:port and closed. */
const NAME_SERVER = `
const net = require('node:net')
let ready = 0
for (const address of process.argv.slice(1)) {
  const [host, port] = address.split(':')
  net.createServer((socket) => socket.end(address + '\\n')).listen(Number(port), host, () => {
    if (++ready === process.argv.length - 1) console.log('listening')
  })
}
`

/** Connects `count` times one after another; prints {answer or error code: count} and the slowest attempt. */
const COUNTING_CLIENT = `
const net = require('node:net')
const [host, port, count] = process.argv.slice(1)
const once = () => new Promise((resolve) => {
  const started = Date.now()
  const socket = net.connect(Number(port), host)
  let text = ''
  socket.setTimeout(3000, () => socket.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })))
  socket.on('data', (chunk) => (text += chunk))
  socket.on('end', () => resolve([text.trim(), Date.now() - started]))
  socket.on('error', (error) => resolve([error.code, Date.now() - started]))
})
;(async () => {
  const answers = {}
  let slowestMs = 0
  for (let i = 0; i < Number(count); i++) {
    const [answer, ms] = await once()
    answers[answer] = (answers[answer] ?? 0) + 1
    slowestMs = Math.max(slowestMs, ms)
  }
  console.log(JSON.stringify({ answers, slowestMs }))
})()
`

/** Answers each datagram on ip:port with that ip:port. */
const UDP_NAME_SERVER = `
const dgram = require('node:dgram')
const address = process.argv[1]
const [host, port] = address.split(':')
const socket = dgram.createSocket('udp4')
socket.on('message', (message, from) => socket.send(address, from.port, from.address))
socket.bind(Number(port), host, () => console.log('listening'))
`

/** Sends one datagram on a connected socket; prints the answer, or the error (ECONNREFUSED on ICMP port unreachable). */
const UDP_CLIENT = `
const dgram = require('node:dgram')
const [host, port] = process.argv.slice(1)
const socket = dgram.createSocket('udp4')
setTimeout(() => { console.log('TIMEOUT'); process.exit(0) }, 3000)
socket.on('message', (message) => { console.log(String(message)); process.exit(0) })
socket.on('error', (error) => { console.log(error.code); process.exit(0) })
socket.connect(Number(port), host, () => { socket.send('hi'); setTimeout(() => socket.send('again'), 200) })
`

/**
 * From one fixed source port, sends a datagram every 50 ms for ever and prints each answer
 * with the time it came, one JSON line each: a client whose UDP flow lives on in conntrack.
 */
const UDP_STEADY_CLIENT = `
const dgram = require('node:dgram')
const [host, port, sourcePort] = process.argv.slice(1)
const socket = dgram.createSocket('udp4')
socket.on('message', (message) => console.log(JSON.stringify({ from: String(message), atMs: Date.now() })))
socket.on('error', () => {})
socket.bind(Number(sourcePort), '127.0.0.1', () => setInterval(() => socket.send('hi', Number(port), host), 50))
`

const ROUTED_VIP = '10.96.0.10'
const NODE_PORT = 30001

function direct(address: string): ProxyEndpoint {
  const [ip, port] = address.split(':')
  return { ip: ip!, port: Number(port), viaPeerId: null }
}

function servicePort(id: string, vip: string, port: number, endpoints: string[], extra: Partial<ProxyServicePort> = {}): ProxyServicePort {
  return {
    id,
    vip,
    port,
    protocol: 'TCP',
    sessionAffinity: 'None',
    affinityTimeoutMs: 10_800_000,
    endpoints: endpoints.map(direct),
    ...extra,
  }
}

function waitForLine(child: ChildProcess, line: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => reject(new Error(`no "${line}" within ${timeoutMs} ms: ${output}`)), timeoutMs)
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes(line)) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.on('exit', (code) => reject(new Error(`exited with ${code} before "${line}": ${output}`)))
  })
}

describe.skipIf(skipReason !== null)('KernelProxy in a network namespace (iptables-nft)', () => {
  let vnet: VirtualNetwork
  let h1: VirtualHost
  let h2: VirtualHost
  let proxy: KernelProxy | undefined
  /** An endpoint on h1's own non-loopback address, and one on another host. */
  let localAddress: string
  let remoteAddress: string
  let namespacePrefix: string[]

  async function connect(from: VirtualHost, vip: string, port: number, count: number): Promise<{ answers: Record<string, number>; slowestMs: number }> {
    const result = await vnet.exec(from, process.execPath, ['-e', COUNTING_CLIENT, vip, String(port), String(count)], 30_000)
    expect(result.code, result.stderr).toBe(0)
    return JSON.parse(result.stdout) as { answers: Record<string, number>; slowestMs: number }
  }

  async function saved(host: VirtualHost): Promise<string> {
    const nat = await vnet.exec(host, 'iptables-save', ['-t', 'nat'])
    const filter = await vnet.exec(host, 'iptables-save', ['-t', 'filter'])
    return nat.stdout + filter.stdout
  }

  beforeAll(async () => {
    vnet = await VirtualNetwork.create({ hosts: 2, label: 'kproxy' })
    ;[h1, h2] = vnet.hosts as [VirtualHost, VirtualHost]
    namespacePrefix = ['ip', 'netns', 'exec', h1.namespace]
    localAddress = `${h1.ip}:8081`
    remoteAddress = `${h2.ip}:8082`
    const servers = [
      vnet.spawn(h1, process.execPath, ['-e', NAME_SERVER, '127.0.0.2:8080', '127.0.0.3:8080', localAddress]),
      vnet.spawn(h2, process.execPath, ['-e', NAME_SERVER, remoteAddress]),
    ]
    servers.push(vnet.spawn(h1, process.execPath, ['-e', UDP_NAME_SERVER, '127.0.0.2:5353']))
    servers.push(vnet.spawn(h1, process.execPath, ['-e', UDP_NAME_SERVER, '127.0.0.3:5353']))
    await Promise.all(servers.map((server) => waitForLine(server, 'listening', 10_000)))
    // A routed VIP lives on h1's lo; h2 (a container, or another host) routes the service CIDR to h1.
    expect((await vnet.exec(h1, 'ip', ['addr', 'add', `${ROUTED_VIP}/32`, 'dev', 'lo'])).code).toBe(0)
    expect((await vnet.exec(h2, 'ip', ['route', 'add', '10.96.0.0/16', 'via', h1.ip])).code).toBe(0)
  }, 60_000)

  afterAll(async () => {
    await proxy?.close().catch(() => {})
    await vnet?.destroy()
  })

  it('removes the chains and jumps a crashed run left behind at start, and nothing else', async () => {
    const leftover = [
      '*nat',
      ':SHOAL-SERVICES - [0:0]',
      ':SHOAL-SVC-LEFTOVER - [0:0]',
      ':FOREIGN - [0:0]',
      '-A OUTPUT -j SHOAL-SERVICES',
      '-A OUTPUT -d 10.9.9.9/32 -j FOREIGN',
      '-A SHOAL-SERVICES -d 127.77.9.9/32 -p tcp -m tcp --dport 80 -j SHOAL-SVC-LEFTOVER',
      '-A SHOAL-SVC-LEFTOVER -p tcp -j DNAT --to-destination 127.0.0.2:8080',
      'COMMIT',
      '',
    ].join('\n')
    const restore = vnet.spawn(h1, 'iptables-restore', ['--noflush'])
    restore.stdin!.end(leftover)
    await new Promise((resolve) => restore.on('exit', resolve))
    expect(await saved(h1)).toContain('SHOAL-SVC-LEFTOVER')

    proxy = await KernelProxy.start({ commandPrefix: namespacePrefix })
    const after = await saved(h1)
    expect(after).not.toContain('SHOAL-SVC-LEFTOVER')
    // One jump from nat OUTPUT (the leftover one was removed first), one from filter OUTPUT.
    expect(after.match(/-A OUTPUT -m comment --comment "shoal service portals" -j SHOAL-SERVICES/g)).toHaveLength(1)
    expect(after.match(/-A OUTPUT .*-j SHOAL-SERVICES/g)).toHaveLength(2)
    expect(after).toContain('-A OUTPUT -d 10.9.9.9/32 -j FOREIGN')
    expect((await vnet.exec(h1, 'sysctl', ['-n', 'net.ipv4.conf.all.route_localnet'])).stdout.trim()).toBe('1')
  })

  it('DNATs a loopback VIP for a local process, then spreads over two endpoints after an update', async () => {
    const one = await proxy!.apply([servicePort('default/web:80/TCP', '127.77.0.1', 80, ['127.0.0.2:8080'])])
    expect(one).toMatchObject({ kernelPortIds: ['default/web:80/TCP'], userspacePortIds: [], changedPorts: 1 })
    expect((await connect(h1, '127.77.0.1', 80, 3)).answers).toEqual({ '127.0.0.2:8080': 3 })

    const two = await proxy!.apply([servicePort('default/web:80/TCP', '127.77.0.1', 80, ['127.0.0.2:8080', '127.0.0.3:8080'])])
    expect(two.changedPorts).toBe(1)
    const { answers } = await connect(h1, '127.77.0.1', 80, 40)
    // Each endpoint misses all 40 with probability 2^-40.
    expect(Object.keys(answers).sort()).toEqual(['127.0.0.2:8080', '127.0.0.3:8080'])
  })

  it('keeps a client on one endpoint with ClientIP affinity', async () => {
    await proxy!.apply([
      servicePort('default/sticky:80/TCP', '127.77.0.2', 80, ['127.0.0.2:8080', '127.0.0.3:8080'], { sessionAffinity: 'ClientIP', affinityTimeoutMs: 60_000 }),
    ])
    const { answers } = await connect(h1, '127.77.0.2', 80, 20)
    expect(Object.values(answers)).toEqual([20])
  })

  it('refuses a service with no endpoints at once, and leaves ports behind a tunnel to userspace', async () => {
    const result = await proxy!.apply([
      servicePort('default/empty:80/TCP', '127.77.0.3', 80, []),
      servicePort('default/remote:80/TCP', '127.77.0.4', 80, [], { endpoints: [{ ip: '10.88.0.5', port: 80, viaPeerId: '12D3KooWOther' }] }),
    ])
    expect(result.kernelPortIds).toEqual(['default/empty:80/TCP'])
    expect(result.userspacePortIds).toEqual(['default/remote:80/TCP'])
    const refused = await connect(h1, '127.77.0.3', 80, 3)
    expect(refused.answers).toEqual({ ECONNREFUSED: 3 })
    expect(refused.slowestMs).toBeLessThan(500)
    // Nothing in the kernel for the userspace port: nobody listens there, so the kernel's own refusal.
    expect(await saved(h1)).not.toContain('127.77.0.4')
  })

  it('reaches endpoints across hosts: loopback VIP to another host, routed VIP and NodePort from a container', async () => {
    await proxy!.apply([
      servicePort('default/far:80/TCP', '127.77.0.5', 80, [remoteAddress]),
      servicePort('default/routed:80/TCP', ROUTED_VIP, 80, ['127.0.0.2:8080'], { nodePort: NODE_PORT }),
      servicePort('default/routed:81/TCP', ROUTED_VIP, 81, [localAddress]),
      servicePort('default/routed:82/TCP', ROUTED_VIP, 82, [remoteAddress]),
    ])
    // Source 127.0.0.1 leaving on eth0: route_localnet and our MASQUERADE.
    expect((await connect(h1, '127.77.0.5', 80, 2)).answers).toEqual({ [remoteAddress]: 2 })
    // PREROUTING: from another namespace to a loopback endpoint (route_localnet), and to h1's own address.
    expect((await connect(h2, ROUTED_VIP, 80, 2)).answers).toEqual({ '127.0.0.2:8080': 2 })
    expect((await connect(h2, ROUTED_VIP, 81, 2)).answers).toEqual({ [localAddress]: 2 })
    expect((await connect(h2, h1.ip, NODE_PORT, 2)).answers).toEqual({ '127.0.0.2:8080': 2 })
    // OUTPUT with the VIP itself as source (it is on lo), out to another host: masqueraded.
    expect((await connect(h1, ROUTED_VIP, 82, 2)).answers).toEqual({ [remoteAddress]: 2 })
  })

  it('DNATs UDP, and refuses UDP to a port with no endpoints', async () => {
    await proxy!.apply([
      servicePort('kube-system/dns:53/UDP', '127.77.0.53', 53, ['127.0.0.2:5353'], { protocol: 'UDP' }),
      servicePort('kube-system/none:53/UDP', '127.77.0.54', 53, [], { protocol: 'UDP' }),
    ])
    const udp = async (vip: string): Promise<string> =>
      (await vnet.exec(h1, process.execPath, ['-e', UDP_CLIENT, vip, '53'], 10_000)).stdout.trim()
    expect(await udp('127.77.0.53')).toBe('127.0.0.2:5353')
    expect(await udp('127.77.0.54')).toBe('ECONNREFUSED')
  })

  it('moves a UDP client that keeps its source port to a live endpoint within 1 s of its endpoint going (conntrack)', async ({ skip }) => {
    if ((await vnet.exec(h1, 'conntrack', ['--version'])).code !== 0) skip('the conntrack tool is not installed (apt-get install conntrack)')
    const both = ['127.0.0.2:5353', '127.0.0.3:5353']
    await proxy!.apply([servicePort('default/udp:53/UDP', '127.77.0.55', 53, both, { protocol: 'UDP' })])
    const answers: Array<{ from: string; atMs: number }> = []
    const client = vnet.spawn(h1, process.execPath, ['-e', UDP_STEADY_CLIENT, '127.77.0.55', '53', '40053'])
    let pending = ''
    client.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString()
      const lines = pending.split('\n')
      pending = lines.pop()!
      for (const line of lines) if (line !== '') answers.push(JSON.parse(line) as { from: string; atMs: number })
    })
    try {
      const deadline = Date.now() + 10_000
      while (answers.length < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
      // One flow: every datagram so far went to the endpoint conntrack chose for the first one.
      const first = answers[0]!.from
      expect(new Set(answers.map((answer) => answer.from))).toEqual(new Set([first]))
      const survivor = both.find((address) => address !== first)!

      await proxy!.apply([servicePort('default/udp:53/UDP', '127.77.0.55', 53, [survivor], { protocol: 'UDP' })])
      const removedAtMs = Date.now()
      while (Date.now() < removedAtMs + 1_500) await new Promise((resolve) => setTimeout(resolve, 50))
      const afterRemoval = answers.filter((answer) => answer.atMs > removedAtMs)
      const firstToSurvivor = afterRemoval.find((answer) => answer.from === survivor)
      expect(firstToSurvivor, `answers after the removal: ${JSON.stringify(afterRemoval.slice(0, 5))}`).toBeDefined()
      expect(firstToSurvivor!.atMs - removedAtMs).toBeLessThan(1_000)
      // The removed endpoint still listens: only a deleted conntrack entry keeps the client off it.
      expect(afterRemoval.filter((answer) => answer.atMs > firstToSurvivor!.atMs && answer.from !== survivor)).toEqual([])
    } finally {
      client.kill('SIGKILL')
    }
  })

  it('applies 1,000 services, then changes one by rewriting only its chains', async () => {
    const table = Array.from({ length: 1000 }, (_, index) =>
      servicePort(`bulk/s${index}:80/TCP`, `127.77.${10 + Math.floor(index / 250)}.${(index % 250) + 1}`, 80, ['127.0.0.2:8080', '127.0.0.3:8080']),
    )
    const full = await proxy!.apply(table)
    expect(full.changedPorts).toBe(1000 + 1) // 1000 new, the UDP port of the previous table removed
    table[500] = servicePort('bulk/s500:80/TCP', table[500]!.vip, 80, ['127.0.0.3:8080'])
    const one = await proxy!.apply(table)
    expect(one).toMatchObject({ changedPorts: 1, fullResync: false })
    console.log(`[kernel-proxy] 1,000 services applied in ${full.durationMs.toFixed(0)} ms, one change in ${one.durationMs.toFixed(0)} ms`)
    expect((await connect(h1, table[500]!.vip, 80, 4)).answers).toEqual({ '127.0.0.3:8080': 4 })
    expect((await proxy!.apply(table)).changedPorts).toBe(0)
  }, 60_000)

  it('rebuilds when someone deleted one of our rules, instead of failing forever', async () => {
    const table = [servicePort('default/web:80/TCP', '127.77.0.1', 80, ['127.0.0.2:8080'])]
    await proxy!.apply(table)
    const jump = (await saved(h1)).split('\n').find((line) => line.startsWith('-A SHOAL-SERVICES') && line.includes('127.77.0.1/32'))!
    expect((await vnet.exec(h1, 'iptables', ['-t', 'nat', '-F', 'SHOAL-SERVICES'])).code).toBe(0)
    expect(jump).toBeDefined()
    const result = await proxy!.apply([])
    expect(result.fullResync).toBe(true)
    await proxy!.apply(table)
    expect((await connect(h1, '127.77.0.1', 80, 2)).answers).toEqual({ '127.0.0.2:8080': 2 })
  })

  it('close() removes every SHOAL rule and chain, keeps foreign rules, and restores route_localnet', async () => {
    await proxy!.close()
    const after = await saved(h1)
    expect(after).not.toContain('SHOAL-')
    expect(after).toContain('-A OUTPUT -d 10.9.9.9/32 -j FOREIGN')
    expect((await vnet.exec(h1, 'sysctl', ['-n', 'net.ipv4.conf.all.route_localnet'])).stdout.trim()).toBe('0')
    // With no rule left, the VIP is just an unused loopback address.
    expect((await connect(h1, '127.77.0.1', 80, 1)).answers).toEqual({ ECONNREFUSED: 1 })
  })
})
