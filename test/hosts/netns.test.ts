// Self-test of the network-namespace harness: real TCP between namespaces, cut and restored.
import type { ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkNetnsAvailable, runCommand, VirtualNetwork, type VirtualHost } from './netns.js'

const availability = await checkNetnsAvailable()
if (!availability.ok) console.warn(`[test/hosts/netns] skipping the network-namespace suite: ${availability.reason}`)

const ECHO_PORT = 7400
/** How long a client waits for a connection and its echo before calling the peer unreachable. */
const CLIENT_TIMEOUT_MS = 1500

const ECHO_SERVER = `
const net = require('node:net')
const [host, port] = process.argv.slice(1)
net.createServer((socket) => socket.pipe(socket)).listen(Number(port), host, () => console.log('listening'))
`

// Exits 0 once the echo comes back, 1 on a socket error, 2 on timeout; prints why.
const ECHO_CLIENT = `
const net = require('node:net')
const [host, port, timeoutMs] = process.argv.slice(1)
setTimeout(() => { console.log('timeout'); process.exit(2) }, Number(timeoutMs))
const socket = net.connect(Number(port), host, () => socket.write('ping'))
socket.on('data', (data) => { if (String(data).includes('ping')) { console.log('echoed'); process.exit(0) } })
socket.on('error', (error) => { console.log(error.code ?? error.message); process.exit(1) })
`

function waitForLine(child: ChildProcess, line: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => reject(new Error(`no "${line}" within ${timeoutMs} ms: ${output}`)), timeoutMs)
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      if (output.includes(line)) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.on('exit', (code) => reject(new Error(`exited with ${code} before "${line}": ${output}`)))
  })
}

describe.skipIf(!availability.ok)('VirtualNetwork (network namespaces)', () => {
  let network: VirtualNetwork
  let h1: VirtualHost
  let h2: VirtualHost
  let h3: VirtualHost
  let server: ChildProcess
  let rootLinksBefore: string

  /** One echo round trip from `from` to h1's server; `detail` says what the client saw. */
  async function probe(from: VirtualHost): Promise<{ reachable: boolean; detail: string }> {
    const args = ['-e', ECHO_CLIENT, h1.ip, String(ECHO_PORT), String(CLIENT_TIMEOUT_MS)]
    const result = await network.exec(from, process.execPath, args, 15_000)
    return { reachable: result.code === 0, detail: `${result.stdout.trim()} ${result.stderr.trim()}`.trim() }
  }

  /** Restoring a link or flushing rules is immediate, but ARP may need a retry on a loaded machine. */
  async function expectReachableSoon(from: VirtualHost): Promise<void> {
    const deadline = Date.now() + 8000
    let last = await probe(from)
    while (!last.reachable && Date.now() < deadline) last = await probe(from)
    expect(last, `${from.name} -> h1`).toEqual({ reachable: true, detail: 'echoed' })
  }

  async function expectUnreachable(from: VirtualHost): Promise<void> {
    const started = Date.now()
    const result = await probe(from)
    expect(result.reachable, `${from.name} -> h1 should fail, saw: ${result.detail}`).toBe(false)
    // The client's own timer bounds the attempt; the slack is for node's start-up under load.
    expect(Date.now() - started).toBeLessThan(CLIENT_TIMEOUT_MS + 6000)
  }

  beforeAll(async () => {
    rootLinksBefore = (await runCommand('ip', ['-o', 'link', 'show'])).stdout
    network = await VirtualNetwork.create({ hosts: 3, label: 'selftest' })
    ;[h1, h2, h3] = network.hosts as [VirtualHost, VirtualHost, VirtualHost]
    server = network.spawn(h1, process.execPath, ['-e', ECHO_SERVER, h1.ip, String(ECHO_PORT)])
    await waitForLine(server, 'listening', 15_000)
  })

  afterAll(async () => {
    await network?.destroy()
  })

  it('gives each host its own address on one subnet, and a private loopback', async () => {
    expect(network.hosts.map((host) => host.name)).toEqual(['h1', 'h2', 'h3'])
    expect(new Set(network.hosts.map((host) => host.namespace)).size).toBe(3)
    const prefix = network.subnet.replace(/\.0\/24$/, '.')
    for (const host of network.hosts) expect(host.ip.startsWith(prefix)).toBe(true)
    const addresses = await network.exec(h2, 'ip', ['-o', '-4', 'addr', 'show'])
    expect(addresses.stdout).toContain('127.0.0.1/8')
    expect(addresses.stdout).toContain(`${h2.ip}/24`)
  })

  it('lets hosts 2 and 3 reach an echo server in host 1', async () => {
    await expectReachableSoon(h2)
    await expectReachableSoon(h3)
  })

  it('cuts host 1 off on disconnect and restores it on reconnect', async () => {
    await network.disconnect(h1)
    await expectUnreachable(h2)
    await network.reconnect(h1)
    await expectReachableSoon(h2)
  })

  it.skipIf(!availability.iptables)('partitions 1 from 2 while 1 and 3 still talk, until heal', async () => {
    await network.partition([h1], [h2])
    await expectUnreachable(h2)
    await expectReachableSoon(h3)
    await network.heal()
    await expectReachableSoon(h2)
  })

  it.skipIf(!availability.iptables)('drops everything at loss 1 and nothing at loss 0', async () => {
    await network.setLoss(h1, 1)
    await expectUnreachable(h3)
    await network.setLoss(h1, 0)
    await expectReachableSoon(h3)
  })

  it('leaves no namespace, interface or process behind after destroy', async () => {
    const serverExited = server.exitCode !== null ? Promise.resolve() : new Promise((resolve) => server.once('exit', resolve))
    await network.destroy()
    await serverExited
    const namespaces = (await runCommand('ip', ['netns', 'list'])).stdout
    for (const namespace of [network.bridgeNamespace, ...network.hosts.map((host) => host.namespace)]) {
      expect(namespaces).not.toContain(namespace)
    }
    // The harness never creates anything in the root namespace; check nothing leaked into it either.
    const rootLinksAfter = (await runCommand('ip', ['-o', 'link', 'show'])).stdout
    expect(rootLinksBefore).not.toMatch(/veth-h\d|br0/)
    expect(rootLinksAfter).not.toMatch(/veth-h\d|br0/)
  })
})
