// Deleting stale UDP conntrack entries for the kernel data path. A UDP "flow"
// DNATed to an endpoint keeps its conntrack entry (and so its endpoint) as long
// as the client keeps sending from the same source port, even after the
// endpoint was removed from our rules: a DNS client or a game client would keep
// talking to a dead pod. kube-proxy deletes those entries with Debian's
// `conntrack` tool, and so do we (TCP needs nothing: a dead endpoint resets or
// times out, and the client's next connection is a new flow).
import { isIPv4 } from 'node:net'
import { runCommand } from './iptables.js'
import type { ProxyServicePort } from './proxy-types.js'

/** One set of entries to delete: UDP to `vip:port` (or to any local address at `nodePort`) DNATed to `endpointIp`. */
export interface StaleUdpFlow {
  vip: string
  port: number
  nodePort?: number
  endpointIp: string
}

/** `conntrack -D` matched nothing: exit 1 with this message, which is success for us (kube-proxy checks the same text). */
const nothingDeleted = '0 flow entries have been deleted'
/** conntrack commands run at once while a change removes many endpoints. */
const deletesInFlightMax = 4

/**
 * The UDP flows that `before` → `after` leaves pointing at an endpoint the kernel no longer
 * sends to: an endpoint gone from a port that stays, or every endpoint of a port that went
 * (deleted service, or handed to the userspace proxy).
 */
export function staleUdpFlows(before: Iterable<ProxyServicePort>, after: ReadonlyMap<string, ProxyServicePort>): StaleUdpFlow[] {
  const stale: StaleUdpFlow[] = []
  for (const old of before) {
    if (old.protocol !== 'UDP') continue
    const now = after.get(old.id)
    const sameAddress = now !== undefined && now.vip === old.vip && now.port === old.port && now.nodePort === old.nodePort
    const remaining = new Set(sameAddress ? now.endpoints.map((endpoint) => `${endpoint.ip}:${endpoint.port}`) : [])
    const seen = new Set<string>()
    for (const endpoint of old.endpoints) {
      if (remaining.has(`${endpoint.ip}:${endpoint.port}`) || seen.has(endpoint.ip)) continue
      seen.add(endpoint.ip)
      stale.push({ vip: old.vip, port: old.port, ...(old.nodePort === undefined ? {} : { nodePort: old.nodePort }), endpointIp: endpoint.ip })
    }
  }
  return stale
}

export class ConntrackCommandError extends Error {
  override readonly name = 'ConntrackCommandError'
}

export interface ConntrackOptions {
  /** Prepended to every command, e.g. ['ip', 'netns', 'exec', NAME]. */
  commandPrefix: string[]
  commandTimeoutMs: number
}

export class Conntrack {
  constructor(private readonly options: ConntrackOptions) {}

  /** Whether the `conntrack` tool runs here (apt package `conntrack`). */
  async available(): Promise<boolean> {
    const result = await runCommand([...this.options.commandPrefix, 'conntrack', '--version'], undefined, this.options.commandTimeoutMs)
    return result.code === 0
  }

  /** Deletes every entry of these flows; rejects with the first command that failed for another reason than "nothing matched". */
  async deleteFlows(flows: StaleUdpFlow[]): Promise<void> {
    const commands = flows.flatMap(deleteCommands)
    let next = 0
    const failures: string[] = []
    const worker = async (): Promise<void> => {
      while (next < commands.length) {
        const argv = [...this.options.commandPrefix, ...commands[next++]!]
        const result = await runCommand(argv, undefined, this.options.commandTimeoutMs)
        if (result.code !== 0 && !result.stderr.includes(nothingDeleted)) failures.push(`${argv.join(' ')} (exit ${result.code}): ${result.stderr.trim()}`)
      }
    }
    await Promise.all(Array.from({ length: Math.min(deletesInFlightMax, commands.length) }, worker))
    if (failures.length > 0) throw new ConntrackCommandError(`${failures.length} conntrack deletion(s) failed; first: ${failures[0]}`)
  }
}

/** As kube-proxy: by original destination VIP (and port), and by NodePort, each narrowed to the DNAT target. */
function deleteCommands(flow: StaleUdpFlow): string[][] {
  // Every field is checked again here: it ends up on a command line.
  if (!isIPv4(flow.vip) || !isIPv4(flow.endpointIp)) return []
  const commands = [['conntrack', '-D', '-p', 'udp', '--orig-dst', flow.vip, '--orig-port-dst', String(flow.port), '--dst-nat', flow.endpointIp]]
  if (flow.nodePort !== undefined) commands.push(['conntrack', '-D', '-p', 'udp', '--orig-port-dst', String(flow.nodePort), '--dst-nat', flow.endpointIp])
  return commands
}
