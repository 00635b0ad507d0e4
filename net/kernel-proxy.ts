// The kernel data path of the service proxy (peers running as root): VIP:port
// and NodePorts are DNATed to endpoints by iptables-nft rules in chains of our
// own, as kube-proxy's iptables mode does, so bytes never cross userspace.
// Only endpoints this peer reaches directly are programmed; the rest of the
// table is the userspace proxy's (see apply()). Updates are incremental: a
// changed port rewrites only its own chains, in one iptables-restore batch.
// UDP flows to an endpoint that went are then deleted from conntrack (conntrack.ts).
import { Conntrack, staleUdpFlows } from './conntrack.js'
import { IptablesRunner } from './iptables.js'
import {
  assertChainPrefix,
  baseLines,
  changeLines,
  cleanupLines,
  portRules,
  renderBatch,
  splitPortsForKernel,
  type MixedPortPolicy,
  type PortRules,
  type RuleConfig,
} from './kernel-rules.js'
import type { ProxyServicePort } from './proxy-types.js'

export interface KernelProxyOptions {
  /** Prepended to every command, e.g. ['ip', 'netns', 'exec', NAME] to program another namespace. */
  commandPrefix?: string[]
  /** Our chains are `${chainPrefix}-...`; two peers sharing one network namespace need different ones. Default 'SHOAL'. */
  chainPrefix?: string
  /** Packet-mark bit for "masquerade this" (default 0x10000; kube-proxy uses 0x4000, CNI portmap 0x2000). */
  masqueradeMark?: number
  /** Default 'userspace': see MixedPortPolicy. */
  mixedPorts?: MixedPortPolicy
  /**
   * Set net.ipv4.conf.all.route_localnet=1 (restored on close) and guard 127/8 against other
   * hosts: needed for loopback VIPs with non-loopback endpoints, and for routed VIPs and
   * NodePorts with loopback (process-runtime) endpoints. Default true.
   */
  routeLocalnet?: boolean
  commandTimeoutMs?: number
  /** Where problems that do not fail apply() are told (the missing `conntrack` tool, once). Default: stderr. */
  log?: (line: string) => void
}

export interface KernelApplyResult {
  /** Ports now DNATed (or, with no endpoints, rejected) by the kernel. */
  kernelPortIds: string[]
  /** Ports of this table the kernel does not serve: the userspace proxy must. */
  userspacePortIds: string[]
  /** Ports whose rules were written by this run (0 when nothing changed). */
  changedPorts: number
  /** The run rebuilt every chain (first run after an error, or an incremental batch failed). */
  fullResync: boolean
  durationMs: number
}

export class KernelProxyClosedError extends Error {
  override readonly name = 'KernelProxyClosedError'
}

export class KernelProxyUnavailableError extends Error {
  override readonly name = 'KernelProxyUnavailableError'
}

const DEFAULT_MASQUERADE_MARK = 0x10000
const DEFAULT_COMMAND_TIMEOUT_MS = 30_000
const ROUTE_LOCALNET = 'net.ipv4.conf.all.route_localnet'

interface AppliedPort {
  rules: PortRules
  key: string
  /** The port as the kernel serves it (direct endpoints only). */
  port: ProxyServicePort
}

interface Waiter {
  resolve: (result: KernelApplyResult) => void
  reject: (error: Error) => void
  kernelPortIds: string[]
  userspacePortIds: string[]
}

/**
 * Checks that this process can program the kernel proxy: root, iptables-restore present,
 * and the matches we use (statistic, recent, addrtype, DNAT) accepted in the nat table.
 * Leaves nothing behind.
 */
export async function probeKernelProxy(options: KernelProxyOptions = {}): Promise<{ ok: boolean; reason: string }> {
  if (process.platform !== 'linux') return { ok: false, reason: `the kernel proxy needs Linux, this is ${process.platform}` }
  if (process.getuid?.() !== 0) return { ok: false, reason: 'the kernel proxy needs root' }
  const prefix = options.chainPrefix ?? 'SHOAL'
  assertChainPrefix(prefix)
  const runner = new IptablesRunner({
    commandPrefix: options.commandPrefix ?? [],
    commandTimeoutMs: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
  })
  const chain = `${prefix}-SVC-PROBE`
  try {
    await runner.restore(
      `*nat\n:${chain} - [0:0]\n` +
        `-A ${chain} -m recent --name ${chain} --rsource --rcheck --seconds 1 --reap -j RETURN\n` +
        `-A ${chain} -m statistic --mode random --probability 0.5000000000 -m addrtype --dst-type LOCAL -j RETURN\n` +
        `-A ${chain} -p tcp -j DNAT --to-destination 127.0.0.1:1\nCOMMIT\n`,
    )
  } catch (error) {
    return { ok: false, reason: `iptables cannot program the nat table: ${(error as Error).message}` }
  } finally {
    await runner.restore(`*nat\n:${chain} - [0:0]\n-X ${chain}\nCOMMIT\n`).catch(() => {})
  }
  return { ok: true, reason: 'iptables-restore programs nat rules with statistic, recent, addrtype and DNAT' }
}

export class KernelProxy {
  private readonly runner: IptablesRunner
  private readonly config: RuleConfig
  private readonly mixedPorts: MixedPortPolicy
  /** What the kernel holds now, per port id; `key` is the (direct-endpoints-only) `port` as JSON. */
  private applied = new Map<string, AppliedPort>()
  /** The next table to apply. Bound: one; a newer apply() replaces it (coalescing). */
  private pending: { ports: ProxyServicePort[]; waiters: Waiter[] } | null = null
  private worker: Promise<void> | null = null
  /** The kernel may differ from `applied` (a batch failed): the next run rebuilds everything. */
  private needsResync = false
  private closed = false
  private routeLocalnetBefore: string | null = null
  private readonly conntrack: Conntrack
  /** Null until start() asked whether the `conntrack` tool runs. */
  private conntrackAvailable: boolean | null = null
  private readonly log: (line: string) => void

  private constructor(options: KernelProxyOptions) {
    const chainPrefix = options.chainPrefix ?? 'SHOAL'
    assertChainPrefix(chainPrefix)
    this.runner = new IptablesRunner({
      commandPrefix: options.commandPrefix ?? [],
      commandTimeoutMs: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    })
    this.config = {
      chainPrefix,
      masqueradeMark: options.masqueradeMark ?? DEFAULT_MASQUERADE_MARK,
      guardLoopback: options.routeLocalnet ?? true,
    }
    this.mixedPorts = options.mixedPorts ?? 'userspace'
    this.conntrack = new Conntrack({
      commandPrefix: options.commandPrefix ?? [],
      commandTimeoutMs: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    })
    this.log = options.log ?? ((line) => console.error(`shoal: ${line}`))
  }

  /** Removes leftovers of an earlier run with the same chain prefix, then installs our base chains. */
  static async start(options: KernelProxyOptions = {}): Promise<KernelProxy> {
    const proxy = new KernelProxy(options)
    const probe = await probeKernelProxy(options)
    if (!probe.ok) throw new KernelProxyUnavailableError(probe.reason)
    if (proxy.config.guardLoopback) {
      const before = await proxy.runner.readSysctl(ROUTE_LOCALNET)
      if (before !== '1') {
        await proxy.runner.writeSysctl(ROUTE_LOCALNET, '1')
        proxy.routeLocalnetBefore = before
      }
    }
    proxy.conntrackAvailable = await proxy.conntrack.available()
    if (!proxy.conntrackAvailable) {
      proxy.log('kernel proxy: the conntrack tool is missing (apt-get install conntrack): a UDP client that keeps its source port keeps reaching a removed endpoint until its flow idles out (30-120 s)')
    }
    await proxy.rebuild([])
    return proxy
  }

  /**
   * Makes the kernel serve `ports` (the whole table; ports absent from it are removed).
   * The split is decided at once: `userspacePortIds` are the ports the kernel will not serve
   * (an endpoint behind a peer tunnel, see MixedPortPolicy, or not expressible: IPv6). Calls
   * are serialized and coalesced: while one batch runs, only the newest table waits, and
   * every caller's promise settles once the kernel holds that table or a newer one.
   * Rejects with IptablesCommandError when even a full rebuild failed.
   */
  apply(ports: ProxyServicePort[]): Promise<KernelApplyResult> {
    if (this.closed) return Promise.reject(new KernelProxyClosedError('apply() after close()'))
    const split = splitPortsForKernel(ports, this.mixedPorts)
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        kernelPortIds: split.kernel.map((port) => port.id),
        userspacePortIds: split.userspace.map((port) => port.id),
      }
      if (this.pending) {
        this.pending.ports = ports
        this.pending.waiters.push(waiter)
      } else {
        this.pending = { ports, waiters: [waiter] }
      }
      this.startWorker()
    })
  }

  private startWorker(): void {
    if (this.worker) return
    this.worker = this.drain().finally(() => {
      this.worker = null
      // An apply() that came in after drain() last looked, but before this ran.
      if (this.pending) this.startWorker()
    })
  }

  private async drain(): Promise<void> {
    while (this.pending) {
      const job = this.pending
      this.pending = null
      const started = performance.now()
      try {
        const { changedPorts, fullResync } = await this.sync(job.ports)
        const durationMs = performance.now() - started
        for (const waiter of job.waiters) {
          const { kernelPortIds, userspacePortIds } = waiter
          waiter.resolve({ kernelPortIds, userspacePortIds, changedPorts, fullResync, durationMs })
        }
      } catch (error) {
        for (const waiter of job.waiters) waiter.reject(error as Error)
      }
    }
  }

  private async sync(ports: ProxyServicePort[]): Promise<{ changedPorts: number; fullResync: boolean }> {
    const desired = new Map<string, AppliedPort>()
    for (const port of splitPortsForKernel(ports, this.mixedPorts).kernel) {
      // Rules are a function of the port alone (config is fixed), so an unchanged port reuses
      // its rules: no hashing or rule text for the 999 ports that did not change.
      const key = JSON.stringify(port)
      const current = this.applied.get(port.id)
      desired.set(port.id, current?.key === key ? current : { rules: portRules(port, this.config), key, port })
    }
    const before = this.applied
    const result = await this.write(desired)
    if (result.changedPorts > 0) await this.deleteStaleUdpFlows(before, desired)
    return result
  }

  /** Makes the kernel hold `desired`: the changed ports' chains, or everything after a failure. */
  private async write(desired: Map<string, AppliedPort>): Promise<{ changedPorts: number; fullResync: boolean }> {
    if (this.needsResync) return { changedPorts: await this.rebuild([...desired.values()]), fullResync: true }
    const changes: Parameters<typeof changeLines>[0] = []
    for (const [id, next] of desired) {
      const current = this.applied.get(id)
      if (current?.key !== next.key) changes.push({ before: current?.rules, after: next.rules })
    }
    for (const [id, current] of this.applied) {
      if (!desired.has(id)) changes.push({ before: current.rules, after: undefined })
    }
    if (changes.length === 0) return { changedPorts: 0, fullResync: false }
    try {
      await this.runner.restore(renderBatch(changeLines(changes)))
      this.applied = desired
      return { changedPorts: changes.length, fullResync: false }
    } catch {
      // Someone removed or changed one of our rules, so a -D missed: start over from nothing.
      return { changedPorts: await this.rebuild([...desired.values()]), fullResync: true }
    }
  }

  /**
   * UDP flows DNATed to endpoints the kernel no longer sends to: deleted once the new rules
   * are in (so the client's next datagram is a new flow and picks a live endpoint). A failure
   * is logged, not thrown: the rules are right, only old flows linger until they idle out.
   */
  private async deleteStaleUdpFlows(before: Map<string, AppliedPort>, after: Map<string, AppliedPort>): Promise<void> {
    if (this.conntrackAvailable !== true) return
    const flows = staleUdpFlows(
      [...before.values()].map((entry) => entry.port),
      new Map([...after].map(([id, entry]) => [id, entry.port])),
    )
    if (flows.length === 0) return
    await this.conntrack.deleteFlows(flows).catch((error: Error) => this.log(`kernel proxy: ${error.message}`))
  }

  /** Removes everything we own and writes `ports` from scratch; returns how many ports were written. */
  private async rebuild(ports: AppliedPort[]): Promise<number> {
    this.needsResync = true
    await this.removeAll()
    const base = baseLines(this.config)
    const change = changeLines(ports.map((port) => ({ before: undefined, after: port.rules })))
    await this.runner.restore(renderBatch({ nat: [...base.nat, ...change.nat], filter: [...base.filter, ...change.filter] }))
    this.applied = new Map(ports.map((port) => [port.rules.id, port]))
    this.needsResync = false
    return ports.length
  }

  /** Deletes every rule that jumps to one of our chains, and our chains, found by reading the kernel. */
  private async removeAll(): Promise<void> {
    const saved = { nat: await this.runner.save('nat'), filter: await this.runner.save('filter') }
    await this.runner.restore(renderBatch(cleanupLines(saved, this.config.chainPrefix)))
    this.applied = new Map()
  }

  /** Waits for a running batch, removes every rule and chain we own, and restores route_localnet. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const abandoned = this.pending
    this.pending = null
    for (const waiter of abandoned?.waiters ?? []) waiter.reject(new KernelProxyClosedError('closed before this table was applied'))
    while (this.worker) await this.worker
    await this.removeAll()
    if (this.routeLocalnetBefore !== null) await this.runner.writeSysctl(ROUTE_LOCALNET, this.routeLocalnetBefore)
  }
}
