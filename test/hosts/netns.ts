// Multi-host test harness: each "host" is a Linux network namespace with one
// veth to a bridge that lives in a namespace of its own. Nothing is created in
// the root namespace, so every non-loopback address a test can reach belongs to
// a namespace this harness created, and parallel runs cannot see each other.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { runCommand as runArgv } from '../../net/iptables.js'

export interface HostAvailability {
  ok: boolean
  reason: string
  /** iptables works inside a namespace: partition() and setLoss() need it, disconnect() does not. */
  iptables: boolean
}

export interface VirtualHost {
  /** h1, h2, ... */
  name: string
  namespace: string
  ip: string
  /** The host's port on the bridge, an interface inside the bridge namespace. */
  vethHost: string
}

export interface CommandResult {
  code: number
  stdout: string
  stderr: string
}

export interface SpawnOptions {
  env?: Record<string, string>
  cwd?: string
}

/** Every namespace name starts with this, then `<pid>-`, so stale ones can be found and attributed. */
const NAMESPACE_PREFIX = 'shoalnet-'
const BRIDGE = 'br0'
/** The host end of each veth, inside the host's namespace. */
const HOST_INTERFACE = 'eth0'
const PARTITION_CHAIN = 'SHOAL_PARTITION'
const LOSS_CHAIN = 'SHOAL_LOSS'
const MAX_HOSTS = 250

let instanceCounter = 0
const liveNetworks = new Set<VirtualNetwork>()

/** Runs a command to completion; never rejects, a spawn failure is code 127. */
export function runCommand(command: string, args: string[], timeoutMs = 15_000): Promise<CommandResult> {
  return runArgv([command, ...args], undefined, timeoutMs)
}

async function runChecked(command: string, args: string[]): Promise<string> {
  const result = await runCommand(command, args)
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.code}): ${result.stderr.trim()}`)
  }
  return result.stdout
}

function iptables(namespace: string, args: string[]): Promise<string> {
  // -w: the xtables lock file is shared by every namespace on the machine.
  return runChecked('ip', ['netns', 'exec', namespace, 'iptables', '-w', ...args])
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function listNamespaces(): Promise<string[]> {
  const result = await runCommand('ip', ['netns', 'list'])
  // Lines look like "name" or "name (id: 3)".
  return result.stdout.split('\n').map((line) => line.split(' ')[0] ?? '').filter((name) => name !== '')
}

/** Kills whatever still runs inside the namespace (only namespaces this harness named), then deletes it. */
async function deleteNamespace(namespace: string): Promise<void> {
  const pids = await runCommand('ip', ['netns', 'pids', namespace])
  for (const pid of pids.stdout.split(/\s+/).filter((text) => text !== '')) {
    try {
      process.kill(Number(pid), 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  await runCommand('ip', ['netns', 'delete', namespace])
}

/** Removes namespaces left by earlier runs that crashed: same prefix, owner pid no longer alive. */
export async function cleanStaleNamespaces(): Promise<string[]> {
  const stale = (await listNamespaces()).filter((name) => {
    const match = /^shoalnet-(\d+)-/.exec(name)
    return match?.[1] !== undefined && Number(match[1]) !== process.pid && !isProcessAlive(Number(match[1]))
  })
  for (const namespace of stale) await deleteNamespace(namespace)
  return stale
}

let availability: Promise<HostAvailability> | undefined

/** Can this process build virtual hosts? Memoized: the probe creates and deletes a namespace. */
export function checkNetnsAvailable(): Promise<HostAvailability> {
  availability ??= probeNetns()
  return availability
}

async function probeNetns(): Promise<HostAvailability> {
  const no = (reason: string): HostAvailability => ({ ok: false, reason, iptables: false })
  if (process.platform !== 'linux') return no(`network namespaces need Linux, this is ${process.platform}`)
  if (process.getuid?.() !== 0) return no('network namespaces need root (run the tests as root)')
  const version = await runCommand('ip', ['-V'])
  if (version.code !== 0) return no(`the \`ip\` command (iproute2) is missing: ${version.stderr.trim()}`)
  const probe = `${NAMESPACE_PREFIX}${process.pid}-probe`
  try {
    await runChecked('ip', ['netns', 'add', probe])
    await runChecked('ip', ['-n', probe, 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1'])
    await runChecked('ip', ['-n', probe, 'link', 'add', 'probebr', 'type', 'bridge'])
  } catch (error) {
    await deleteNamespace(probe)
    return no(`cannot create a namespace with a veth pair and a bridge: ${(error as Error).message}`)
  }
  const firewall = await runCommand('ip', ['netns', 'exec', probe, 'iptables', '-w', '-L', 'INPUT', '-n'])
  await deleteNamespace(probe)
  if (firewall.code !== 0) {
    const detail = firewall.stderr.trim().split('\n')[0] ?? ''
    return {
      ok: true,
      iptables: false,
      reason: `iptables is unusable (${detail}): partition() and setLoss() will throw, disconnect() still works; install it with \`apt-get install -y iptables\``,
    }
  }
  return { ok: true, iptables: true, reason: 'network namespaces, veth, bridge and iptables all work' }
}

/** Third octet of 10.231.X.0/24: per instance, so two runs' addresses differ even though they never meet. */
function subnetOctet(instance: number): number {
  return ((process.pid % 251) + instance * 17) % 254 + 1
}

function sanitizeLabel(label: string): string {
  return label.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 24)
}

// A test that crashes before destroy() should not leave namespaces behind.
process.on('exit', () => {
  for (const network of liveNetworks) network.destroySync()
})

export class VirtualNetwork {
  readonly hosts: VirtualHost[]
  readonly bridgeNamespace: string
  readonly subnet: string
  private readonly children = new Set<ChildProcess>()
  private readonly disconnected = new Set<VirtualHost>()
  private readonly hostsWithChains = new Set<VirtualHost>()
  private readonly partitionRules = new Set<string>()
  private destroyed = false

  private constructor(bridgeNamespace: string, subnet: string, hosts: VirtualHost[]) {
    this.bridgeNamespace = bridgeNamespace
    this.subnet = subnet
    this.hosts = hosts
  }

  static async create(options: { hosts: number; label: string }): Promise<VirtualNetwork> {
    if (!Number.isInteger(options.hosts) || options.hosts < 1 || options.hosts > MAX_HOSTS) {
      throw new Error(`hosts must be an integer in 1..${MAX_HOSTS}, got ${options.hosts}`)
    }
    await cleanStaleNamespaces()
    const instance = ++instanceCounter
    const base = `${NAMESPACE_PREFIX}${process.pid}-${instance}-${sanitizeLabel(options.label)}`
    const octet = subnetOctet(instance)
    const hosts = Array.from({ length: options.hosts }, (_, index): VirtualHost => ({
      name: `h${index + 1}`,
      namespace: `${base}-h${index + 1}`,
      ip: `10.231.${octet}.${index + 1}`,
      vethHost: `veth-h${index + 1}`,
    }))
    const network = new VirtualNetwork(`${base}-br`, `10.231.${octet}.0/24`, hosts)
    liveNetworks.add(network)
    try {
      await network.buildBridge()
      for (const host of hosts) await network.buildHost(host)
    } catch (error) {
      await network.destroy()
      throw error
    }
    return network
  }

  private async buildBridge(): Promise<void> {
    const ns = this.bridgeNamespace
    await runChecked('ip', ['netns', 'add', ns])
    // STP off: a port that comes back up forwards at once instead of after the listening delay.
    await runChecked('ip', ['-n', ns, 'link', 'add', BRIDGE, 'type', 'bridge', 'stp_state', '0'])
    await runChecked('ip', ['-n', ns, 'link', 'set', BRIDGE, 'up'])
  }

  private async buildHost(host: VirtualHost): Promise<void> {
    const ns = host.namespace
    await runChecked('ip', ['netns', 'add', ns])
    await runChecked('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    // Created inside the bridge namespace with the peer moved straight into the host's,
    // so the names only need to be unique within those two namespaces.
    await runChecked('ip', [
      '-n', this.bridgeNamespace, 'link', 'add', host.vethHost,
      'type', 'veth', 'peer', 'name', HOST_INTERFACE, 'netns', ns,
    ])
    await runChecked('ip', ['-n', this.bridgeNamespace, 'link', 'set', host.vethHost, 'master', BRIDGE, 'up'])
    await runChecked('ip', ['-n', ns, 'addr', 'add', `${host.ip}/24`, 'dev', HOST_INTERFACE])
    await runChecked('ip', ['-n', ns, 'link', 'set', HOST_INTERFACE, 'up'])
  }

  private assertUsable(host?: VirtualHost): void {
    if (this.destroyed) throw new Error('VirtualNetwork used after destroy()')
    if (host !== undefined && !this.hosts.includes(host)) throw new Error(`${host.name} is not a host of this network`)
  }

  /** Starts a process inside the host's namespace; killed by destroy() if still running. */
  spawn(host: VirtualHost, command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    this.assertUsable(host)
    // `ip netns exec` execs the command, so the child's pid is the command's own.
    const child = spawn('ip', ['netns', 'exec', host.namespace, command, ...args], {
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    this.children.add(child)
    child.on('exit', () => this.children.delete(child))
    return child
  }

  /** Runs a command inside the host's namespace to completion; a non-zero exit is returned, not thrown. */
  exec(host: VirtualHost, command: string, args: string[], timeoutMs?: number): Promise<CommandResult> {
    this.assertUsable(host)
    return runCommand('ip', ['netns', 'exec', host.namespace, command, ...args], timeoutMs)
  }

  /**
   * Pulls the host's cable: its bridge port goes down, so the host loses carrier and no frame
   * passes either way. Addresses and sockets survive, as with a real cable, and resume on reconnect().
   */
  async disconnect(host: VirtualHost): Promise<void> {
    this.assertUsable(host)
    await runChecked('ip', ['-n', this.bridgeNamespace, 'link', 'set', host.vethHost, 'down'])
    this.disconnected.add(host)
  }

  async reconnect(host: VirtualHost): Promise<void> {
    this.assertUsable(host)
    await runChecked('ip', ['-n', this.bridgeNamespace, 'link', 'set', host.vethHost, 'up'])
    this.disconnected.delete(host)
  }

  /**
   * Drops every packet between the two groups, both ways, in each receiver's INPUT, so senders
   * see silence (timeouts) rather than an immediate error. Other traffic is untouched.
   */
  async partition(a: VirtualHost[], b: VirtualHost[]): Promise<void> {
    this.assertUsable()
    for (const left of a) {
      for (const right of b) {
        if (left === right) throw new Error(`${left.name} is on both sides of the partition`)
        await this.dropFrom(left, right)
        await this.dropFrom(right, left)
      }
    }
  }

  private async dropFrom(receiver: VirtualHost, sender: VirtualHost): Promise<void> {
    this.assertUsable(receiver)
    this.assertUsable(sender)
    const key = `${receiver.namespace}<${sender.ip}`
    if (this.partitionRules.has(key)) return
    await this.ensureChains(receiver)
    await iptables(receiver.namespace, ['-A', PARTITION_CHAIN, '-s', sender.ip, '-j', 'DROP'])
    this.partitionRules.add(key)
  }

  /** Removes every partition rule and reconnects every disconnected host; loss set by setLoss() stays. */
  async heal(): Promise<void> {
    this.assertUsable()
    for (const host of this.hostsWithChains) await iptables(host.namespace, ['-F', PARTITION_CHAIN])
    this.partitionRules.clear()
    for (const host of [...this.disconnected]) await this.reconnect(host)
  }

  /** Drops each packet arriving at the host with the given probability (0 removes the loss). */
  async setLoss(host: VirtualHost, probability: number): Promise<void> {
    this.assertUsable(host)
    if (!(probability >= 0 && probability <= 1)) throw new Error(`loss probability must be in [0, 1], got ${probability}`)
    await this.ensureChains(host)
    await iptables(host.namespace, ['-F', LOSS_CHAIN])
    if (probability === 0) return
    const match = probability === 1 ? [] : ['-m', 'statistic', '--mode', 'random', '--probability', String(probability)]
    await iptables(host.namespace, ['-A', LOSS_CHAIN, ...match, '-j', 'DROP'])
  }

  /** Our own chains, so heal() and setLoss() flush exactly the rules the harness added. */
  private async ensureChains(host: VirtualHost): Promise<void> {
    if (this.hostsWithChains.has(host)) return
    const available = await checkNetnsAvailable()
    if (!available.iptables) throw new Error(`partition() and setLoss() need iptables: ${available.reason}`)
    for (const chain of [PARTITION_CHAIN, LOSS_CHAIN]) {
      await iptables(host.namespace, ['-N', chain])
      await iptables(host.namespace, ['-A', 'INPUT', '-j', chain])
    }
    this.hostsWithChains.add(host)
  }

  /** Kills every process in the hosts' namespaces and deletes all namespaces (which frees the veths). */
  async destroy(): Promise<void> {
    if (this.destroyed) return
    this.destroyed = true
    for (const child of this.children) child.kill('SIGKILL')
    for (const host of this.hosts) await deleteNamespace(host.namespace)
    await deleteNamespace(this.bridgeNamespace)
    liveNetworks.delete(this)
  }

  /** destroy() for the process 'exit' hook, where nothing asynchronous runs any more. */
  destroySync(): void {
    if (this.destroyed) return
    this.destroyed = true
    for (const child of this.children) child.kill('SIGKILL')
    for (const namespace of [...this.hosts.map((host) => host.namespace), this.bridgeNamespace]) {
      try {
        const pids = execFileSync('ip', ['netns', 'pids', namespace], { encoding: 'utf8', stdio: 'pipe' })
        for (const pid of pids.split(/\s+/).filter((text) => text !== '')) process.kill(Number(pid), 'SIGKILL')
        execFileSync('ip', ['netns', 'delete', namespace], { stdio: 'ignore' })
      } catch {
        // Best effort: the next run's cleanStaleNamespaces() catches what is left.
      }
    }
    liveNetworks.delete(this)
  }
}
