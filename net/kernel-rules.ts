// Pure rule generation for the kernel data path of the service proxy: the
// iptables (nat + filter) rules that DNAT VIP:port -> endpoint in the kernel,
// laid out as kube-proxy's iptables mode does (one chain per service port, one
// per endpoint, random choice with -m statistic, ClientIP affinity with
// -m recent). Nothing here runs a command; net/kernel-proxy.ts feeds the text
// to `iptables-restore --noflush`.
import { createHash } from 'node:crypto'
import { isIPv4 } from 'node:net'
import type { ProxyServicePort } from './proxy-types.js'

/**
 * What the kernel does with a port that has both direct endpoints and endpoints behind a
 * peer tunnel: 'userspace' leaves the whole port to the userspace proxy (load spreads over
 * every endpoint); 'direct-only' programs it with its direct endpoints only (remote ones get
 * no traffic from this peer).
 */
export type MixedPortPolicy = 'userspace' | 'direct-only'

export interface KernelPortSplit {
  /** Ports the kernel serves, each with only its direct endpoints (viaPeerId === null). */
  kernel: ProxyServicePort[]
  /** Ports left to the userspace proxy, unchanged. */
  userspace: ProxyServicePort[]
}

function isPortNumber(value: number | undefined): boolean {
  return value === undefined || (Number.isInteger(value) && value >= 1 && value <= 65535)
}

/**
 * IPv4 only (we program iptables, not ip6tables), and every field that ends up in rule text
 * checked, so a malformed table can never smuggle options into iptables-restore.
 */
function kernelCanServe(port: ProxyServicePort): boolean {
  return (
    isIPv4(port.vip) &&
    isPortNumber(port.port) &&
    isPortNumber(port.nodePort) &&
    (port.protocol === 'TCP' || port.protocol === 'UDP') &&
    Number.isFinite(port.affinityTimeoutMs) &&
    port.endpoints.every((endpoint) => endpoint.viaPeerId !== null || (isIPv4(endpoint.ip) && isPortNumber(endpoint.port)))
  )
}

/**
 * The kernel takes a port when every endpoint is direct (this includes a port with no
 * endpoints at all: the kernel rejects it fast), or, with 'direct-only', when at least one is.
 * A port the kernel cannot express (IPv6, malformed) is left to userspace.
 */
export function splitPortsForKernel(ports: ProxyServicePort[], mixed: MixedPortPolicy): KernelPortSplit {
  const split: KernelPortSplit = { kernel: [], userspace: [] }
  for (const port of ports) {
    if (!kernelCanServe(port)) {
      split.userspace.push(port)
      continue
    }
    const direct = port.endpoints.filter((endpoint) => endpoint.viaPeerId === null)
    const allDirect = direct.length === port.endpoints.length
    if (allDirect || (mixed === 'direct-only' && direct.length > 0)) {
      split.kernel.push(allDirect ? port : { ...port, endpoints: direct })
    } else {
      split.userspace.push(port)
    }
  }
  return split
}

export interface RuleConfig {
  /** Every chain we create starts with `${chainPrefix}-`; [A-Z][A-Z0-9]{0,7}. */
  chainPrefix: string
  /** The packet-mark bit asking SHOAL-POSTROUTING to masquerade. */
  masqueradeMark: number
  /** Guard 127/8 against other hosts once route_localnet is on (CVE-2020-8558). */
  guardLoopback: boolean
}

/** Max chain name length of iptables (XT_EXTENSION_MAXNAMELEN - 1). */
const CHAIN_NAME_LENGTH_MAX = 28
const HASH_LENGTH_MAX = 16
const CHAIN_PREFIX_PATTERN = /^[A-Z][A-Z0-9]{0,7}$/

export class InvalidChainPrefixError extends Error {
  override readonly name = 'InvalidChainPrefixError'
}

export function assertChainPrefix(prefix: string): void {
  if (!CHAIN_PREFIX_PATTERN.test(prefix)) {
    throw new InvalidChainPrefixError(`chain prefix must match ${CHAIN_PREFIX_PATTERN}, got ${JSON.stringify(prefix)}`)
  }
}

export interface FixedChains {
  /** nat and filter: one jump per service VIP:port (nat) / one REJECT per port with no endpoints (filter). */
  services: string
  /** nat: one jump per NodePort, entered for destinations that are this host's addresses. */
  nodePorts: string
  /** nat: masquerades what our DNAT marked. */
  postrouting: string
  /** filter: drops packets to 127/8 from other hosts unless we DNATed them. */
  firewall: string
}

export function fixedChains(prefix: string): FixedChains {
  return {
    services: `${prefix}-SERVICES`,
    nodePorts: `${prefix}-NODEPORTS`,
    postrouting: `${prefix}-POSTROUTING`,
    firewall: `${prefix}-FIREWALL`,
  }
}

/** Every chain this prefix can produce, fixed or per service/endpoint. */
export function isOurChain(name: string, prefix: string): boolean {
  if (Object.values(fixedChains(prefix)).includes(name)) return true
  return new RegExp(`^${prefix}-(SVC|SEP)-[A-Z2-7]+$`).test(name)
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

function hashName(prefix: string, kind: 'SVC' | 'SEP', key: string): string {
  const head = `${prefix}-${kind}-`
  const length = Math.min(HASH_LENGTH_MAX, CHAIN_NAME_LENGTH_MAX - head.length)
  const digest = createHash('sha256').update(key).digest()
  let text = ''
  for (let index = 0; text.length < length; index++) text += BASE32[digest[index]! & 31]
  return head + text
}

export function serviceChainName(prefix: string, portId: string): string {
  return hashName(prefix, 'SVC', portId)
}

/** `destination` is the endpoint's `ip:port`. */
export function endpointChainName(prefix: string, portId: string, destination: string): string {
  return hashName(prefix, 'SEP', `${portId}|${destination}`)
}

/** A rule in some chain, as iptables-save prints it after `-A CHAIN `. */
export interface Rule {
  chain: string
  spec: string
}

/** Everything one service port adds to the kernel. */
export interface PortRules {
  id: string
  /** nat chains owned by this port (its SVC and SEP chains), with their rules in order. */
  natChains: Array<{ name: string; rules: string[] }>
  /** Its rules in the shared nat chains (SERVICES, NODEPORTS). */
  natJumps: Rule[]
  /** Its rules in the shared filter chain (REJECT when it has no endpoints). */
  filterRules: Rule[]
}

/** A comment argument that iptables-restore parses back as one word, at most 256 bytes. */
function comment(text: string): string {
  return `-m comment --comment "${text.replace(/["\\\n]/g, '_').slice(0, 240)}"`
}

function protocolMatch(port: ProxyServicePort, destinationPort: number): string {
  const protocol = port.protocol.toLowerCase()
  return `-p ${protocol} -m ${protocol} --dport ${destinationPort}`
}

/** kube-proxy's form: 1/n, 1/(n-1), ... so that each of n endpoints gets 1/n. */
export function probabilityText(remaining: number): string {
  return (1 / remaining).toFixed(10)
}

/** The rules for one port the kernel takes (endpoints already filtered to direct ones). */
export function portRules(port: ProxyServicePort, config: RuleConfig): PortRules {
  const fixed = fixedChains(config.chainPrefix)
  const id = comment(port.id)
  if (port.endpoints.length === 0) {
    const reject = port.protocol === 'TCP' ? 'REJECT --reject-with tcp-reset' : 'REJECT --reject-with icmp-port-unreachable'
    const filterRules: Rule[] = [
      { chain: fixed.services, spec: `-d ${port.vip}/32 ${protocolMatch(port, port.port)} ${id} -j ${reject}` },
    ]
    if (port.nodePort !== undefined) {
      filterRules.push({
        chain: fixed.services,
        spec: `-m addrtype --dst-type LOCAL ${protocolMatch(port, port.nodePort)} ${id} -j ${reject}`,
      })
    }
    return { id: port.id, natChains: [], natJumps: [], filterRules }
  }
  const svc = serviceChainName(config.chainPrefix, port.id)
  const natJumps: Rule[] = [{ chain: fixed.services, spec: `-d ${port.vip}/32 ${protocolMatch(port, port.port)} ${id} -j ${svc}` }]
  if (port.nodePort !== undefined) {
    natJumps.push({ chain: fixed.nodePorts, spec: `${protocolMatch(port, port.nodePort)} ${id} -j ${svc}` })
  }
  return { id: port.id, natChains: serviceChains(port, svc, config), natJumps, filterRules: [] }
}

function serviceChains(port: ProxyServicePort, svc: string, config: RuleConfig): PortRules['natChains'] {
  const affinity = port.sessionAffinity === 'ClientIP'
  const affinitySeconds = Math.max(1, Math.ceil(port.affinityTimeoutMs / 1000))
  const protocol = port.protocol.toLowerCase()
  // The same ip:port twice would be one chain: count it once.
  const destinations = [...new Set(port.endpoints.map((endpoint) => `${endpoint.ip}:${endpoint.port}`))]
  const seps = destinations.map((destination) => ({
    name: endpointChainName(config.chainPrefix, port.id, destination),
    destination,
  }))
  // Every connection we DNAT is masqueraded unless it stays on lo (see SHOAL-POSTROUTING).
  const svcRules = [`-j MARK --or-mark 0x${config.masqueradeMark.toString(16)}`]
  if (affinity) {
    for (const sep of seps) {
      svcRules.push(`-m recent --name ${sep.name} --mask 255.255.255.255 --rsource --rcheck --seconds ${affinitySeconds} --reap -j ${sep.name}`)
    }
  }
  seps.forEach((sep, index) => {
    const remaining = seps.length - index
    svcRules.push(remaining > 1 ? `-m statistic --mode random --probability ${probabilityText(remaining)} -j ${sep.name}` : `-j ${sep.name}`)
  })
  const chains: PortRules['natChains'] = [{ name: svc, rules: svcRules }]
  for (const sep of seps) {
    const remember = affinity ? ` -m recent --set --name ${sep.name} --mask 255.255.255.255 --rsource` : ''
    chains.push({ name: sep.name, rules: [`-p ${protocol}${remember} -j DNAT --to-destination ${sep.destination}`] })
  }
  return chains
}

/** Lines for one table inside an iptables-restore batch. */
export interface TableLines {
  nat: string[]
  filter: string[]
}

/** Our fixed chains and the jumps to them from the built-in chains (run after cleanup, so nothing is duplicated). */
export function baseLines(config: RuleConfig): TableLines {
  const fixed = fixedChains(config.chainPrefix)
  const mark = `0x${config.masqueradeMark.toString(16)}`
  const nat = [
    `:${fixed.services} - [0:0]`,
    `:${fixed.nodePorts} - [0:0]`,
    `:${fixed.postrouting} - [0:0]`,
    // First in the built-in chains: a VIP must not be caught by someone else's broader DNAT.
    `-I PREROUTING 1 ${comment('shoal service portals')} -j ${fixed.services}`,
    `-I PREROUTING 2 -m addrtype --dst-type LOCAL ${comment('shoal node ports')} -j ${fixed.nodePorts}`,
    `-I OUTPUT 1 ${comment('shoal service portals')} -j ${fixed.services}`,
    `-I OUTPUT 2 -m addrtype --dst-type LOCAL ${comment('shoal node ports')} -j ${fixed.nodePorts}`,
    `-I POSTROUTING 1 ${comment('shoal masquerade')} -j ${fixed.postrouting}`,
    `-A ${fixed.postrouting} -m mark ! --mark ${mark}/${mark} -j RETURN`,
    `-A ${fixed.postrouting} -j MARK --xor-mark ${mark}`,
    // Loopback to loopback needs no rewrite (and lo's "primary" address could be a routed VIP).
    `-A ${fixed.postrouting} -o lo -j RETURN`,
    `-A ${fixed.postrouting} -j MASQUERADE --random-fully`,
  ]
  const filter = [
    `:${fixed.services} - [0:0]`,
    `-I INPUT 1 -m conntrack --ctstate NEW ${comment('shoal services without endpoints')} -j ${fixed.services}`,
    `-I FORWARD 1 -m conntrack --ctstate NEW ${comment('shoal services without endpoints')} -j ${fixed.services}`,
    `-I OUTPUT 1 -m conntrack --ctstate NEW ${comment('shoal services without endpoints')} -j ${fixed.services}`,
  ]
  if (config.guardLoopback) {
    filter.push(
      `:${fixed.firewall} - [0:0]`,
      `-I INPUT 1 ${comment('shoal loopback guard')} -j ${fixed.firewall}`,
      `-A ${fixed.firewall} ! -i lo -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
    )
  }
  return { nat, filter }
}

/** A batch phase per table: declarations, deletions, appends, chain removals, in that order. */
interface Phases {
  declare: string[]
  remove: string[]
  append: string[]
  destroy: string[]
}

function emptyPhases(): Phases {
  return { declare: [], remove: [], append: [], destroy: [] }
}

function diffShared(before: Rule[], after: Rule[], phases: Phases): void {
  const key = (rule: Rule): string => `${rule.chain} ${rule.spec}`
  const beforeKeys = new Set(before.map(key))
  const afterKeys = new Set(after.map(key))
  for (const rule of before) if (!afterKeys.has(key(rule))) phases.remove.push(`-D ${key(rule)}`)
  for (const rule of after) if (!beforeKeys.has(key(rule))) phases.append.push(`-A ${key(rule)}`)
}

/**
 * The lines that turn the kernel from `before` to `after` for a set of ports, touching only
 * the chains and shared rules of ports that differ. A declared chain is flushed by
 * `iptables-restore --noflush`, so a changed port's chains are rewritten whole.
 */
export function changeLines(changes: Array<{ before: PortRules | undefined; after: PortRules | undefined }>): TableLines {
  const nat = emptyPhases()
  const filter = emptyPhases()
  for (const { before, after } of changes) {
    const afterChains = new Set((after?.natChains ?? []).map((chain) => chain.name))
    for (const chain of after?.natChains ?? []) {
      nat.declare.push(`:${chain.name} - [0:0]`)
      for (const rule of chain.rules) nat.append.push(`-A ${chain.name} ${rule}`)
    }
    for (const chain of before?.natChains ?? []) {
      if (afterChains.has(chain.name)) continue
      nat.declare.push(`:${chain.name} - [0:0]`)
      nat.destroy.push(`-X ${chain.name}`)
    }
    diffShared(before?.natJumps ?? [], after?.natJumps ?? [], nat)
    diffShared(before?.filterRules ?? [], after?.filterRules ?? [], filter)
  }
  const flatten = (phases: Phases): string[] => [...phases.declare, ...phases.remove, ...phases.append, ...phases.destroy]
  return { nat: flatten(nat), filter: flatten(filter) }
}

/** An iptables-restore input; tables with no lines are left out entirely. */
export function renderBatch(lines: TableLines): string {
  let text = ''
  for (const table of ['nat', 'filter'] as const) {
    if (lines[table].length === 0) continue
    text += `*${table}\n${lines[table].join('\n')}\nCOMMIT\n`
  }
  return text
}

/**
 * From `iptables-save -t nat` / `-t filter` output, the lines that remove everything this
 * prefix owns: rules elsewhere that jump to our chains (deleted by their exact text), then
 * our chains (flushed, then deleted). Rules and chains of anyone else are left alone.
 */
export function cleanupLines(saved: { nat: string; filter: string }, prefix: string): TableLines {
  return { nat: cleanupTable(saved.nat, prefix), filter: cleanupTable(saved.filter, prefix) }
}

function cleanupTable(saved: string, prefix: string): string[] {
  const ours: string[] = []
  const jumps: string[] = []
  for (const line of saved.split('\n')) {
    const chainDeclaration = /^:(\S+) /.exec(line)
    if (chainDeclaration && isOurChain(chainDeclaration[1]!, prefix)) ours.push(chainDeclaration[1]!)
    const rule = /^-A (\S+) (.*)$/.exec(line)
    if (!rule || isOurChain(rule[1]!, prefix)) continue
    const target = /(?:^| )-[jg] (\S+)/.exec(rule[2]!)
    if (target && isOurChain(target[1]!, prefix)) jumps.push(`-D ${rule[1]} ${rule[2]}`)
  }
  return [...jumps, ...ours.map((chain) => `:${chain} - [0:0]`), ...ours.map((chain) => `-X ${chain}`)]
}
