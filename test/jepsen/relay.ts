// Small TCP relays that run inside the hosts' network namespaces, as plain
// `node -e` programs (no tsx: they must start fast and may drop privileges).
//
// - The API relay: this test process lives outside every namespace and cannot
//   reach the peers' addresses, but a Unix socket lives in the file system,
//   which the namespaces share. Each host runs a relay from a Unix socket to
//   its peer's API at 127.0.0.1:7947, so the workload speaks HTTPS to every
//   peer directly, without a process per request. The client's path is not
//   subject to the faults (as in Jepsen, where clients run on the control
//   node): a fault shows up as what the peer does, not as lost client packets.
// - The delay relay: the kernel has no netem, so a delayed link is made of a
//   relay in host A's namespace that holds every chunk for N ms before passing
//   it on, both ways, with an iptables DNAT rule sending A's new connections
//   to B's libp2p port through it. The relay drops to uid 65534 and the rule
//   skips that uid (`-m owner ! --uid-owner`), so its own connection to B goes
//   straight out; B still sees A's address, so partitions still apply.
import type { ChildProcess } from 'node:child_process'
import type { VirtualHost, VirtualNetwork } from '../hosts/netns.js'

/** Bytes a delay relay holds per direction of a connection before it stops reading (backpressure). */
export const delayQueueBytesMax = 4 * 1024 * 1024
/** The uid the delay relay runs as: the DNAT rule exempts its traffic. */
export const relayUid = 65534
/** The delay relay for the peer with index k listens on port delayPortBase + k. */
export const delayPortBase = 17_000
const peerPort = 7946

const apiRelayProgram = `
const net = require('node:net'); const fs = require('node:fs')
const path = process.argv[1]
try { fs.unlinkSync(path) } catch {}
net.createServer((client) => {
  const upstream = net.connect(7947, '127.0.0.1')
  client.pipe(upstream); upstream.pipe(client)
  const close = () => { client.destroy(); upstream.destroy() }
  client.on('error', close); upstream.on('error', close); client.on('close', close); upstream.on('close', close)
}).listen(path, () => process.stdout.write('ready\\n'))
`

const delayRelayProgram = `
const net = require('node:net')
const [listenHost, delayMs, queueMax, ...targets] = process.argv.slice(1)
const delay = Number(delayMs)
function pump(from, to) {
  let queued = 0
  from.on('data', (chunk) => {
    queued += chunk.length
    if (queued > Number(queueMax)) from.pause()
    setTimeout(() => {
      queued -= chunk.length
      if (!to.destroyed) to.write(chunk)
      if (queued <= Number(queueMax)) from.resume()
    }, delay)
  })
  from.on('end', () => setTimeout(() => to.end(), delay))
}
let listening = 0
for (const target of targets) {
  const [port, host, hostPort] = target.split(':')
  net.createServer((client) => {
    const upstream = net.connect(Number(hostPort), host)
    pump(client, upstream); pump(upstream, client)
    const close = () => { client.destroy(); upstream.destroy() }
    client.on('error', close); upstream.on('error', close); client.on('close', close); upstream.on('close', close)
  }).listen(Number(port), listenHost, () => {
    if (++listening === targets.length) {
      process.setgid(${relayUid}); process.setuid(${relayUid})
      process.stdout.write('ready\\n')
    }
  })
}
`

function whenReady(child: ChildProcess, what: string, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs} ms: ${output}`)), timeoutMs)
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString()
      if (output.includes('ready')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()))
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${what} exited (${code}): ${output}`))
    })
  })
}

/** Starts the API relay of one host; it outlives restarts of the peer (it connects per client connection). */
export async function startApiRelay(vnet: VirtualNetwork, host: VirtualHost, socketPath: string): Promise<ChildProcess> {
  const child = vnet.spawn(host, process.execPath, ['-e', apiRelayProgram, socketPath])
  await whenReady(child, `the API relay of ${host.name}`)
  return child
}

/** A delayed link from one host to others: the relay, its DNAT rules, and the reset of existing connections. */
export class DelayedLinks {
  private relay: ChildProcess | null = null
  private readonly chain = 'SHOAL_JEPSEN_DELAY'
  private chainMade = false

  constructor(
    private readonly vnet: VirtualNetwork,
    private readonly from: VirtualHost,
  ) {}

  /** Every new connection from `from` to the targets' peer ports goes through a relay holding bytes `delayMs` each way. */
  async start(targets: VirtualHost[], delayMs: number): Promise<void> {
    if (this.relay !== null) throw new Error(`links from ${this.from.name} are already delayed`)
    const portOf = (t: VirtualHost): number => delayPortBase + this.vnet.hosts.indexOf(t)
    const specs = targets.map((t) => `${portOf(t)}:${t.ip}:${peerPort}`)
    const child = this.vnet.spawn(this.from, process.execPath, ['-e', delayRelayProgram, this.from.ip, String(delayMs), String(delayQueueBytesMax), ...specs])
    await whenReady(child, `the delay relay on ${this.from.name}`)
    this.relay = child
    await this.ensureChain()
    for (const t of targets) {
      await this.iptables(['-A', this.chain, '-p', 'tcp', '-d', t.ip, '--dport', String(peerPort), '-m', 'owner', '!', '--uid-owner', String(relayUid), '-j', 'DNAT', '--to-destination', `${this.from.ip}:${portOf(t)}`])
    }
    // DNAT only applies to new connections: cut the existing ones, so libp2p redials through the relay.
    for (const t of targets) await this.vnet.exec(this.from, 'ss', ['-K', 'dst', t.ip])
  }

  /** Removes the rules and kills the relay, which resets the relayed connections: libp2p redials directly. */
  async stop(): Promise<void> {
    if (this.chainMade) await this.iptables(['-F', this.chain])
    const relay = this.relay
    this.relay = null
    if (relay !== null && relay.exitCode === null) {
      await new Promise<void>((resolve) => {
        relay.once('exit', () => resolve())
        relay.kill('SIGKILL')
      })
    }
  }

  private async ensureChain(): Promise<void> {
    if (this.chainMade) return
    await this.iptables(['-N', this.chain])
    await this.iptables(['-A', 'OUTPUT', '-j', this.chain])
    this.chainMade = true
  }

  private async iptables(args: string[]): Promise<void> {
    const result = await this.vnet.exec(this.from, 'iptables', ['-w', '-t', 'nat', ...args])
    if (result.code !== 0) throw new Error(`iptables -t nat ${args.join(' ')} in ${this.from.name}: ${result.stderr.trim()}`)
  }
}
