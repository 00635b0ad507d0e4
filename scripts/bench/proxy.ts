// npm run bench -- proxy [--seconds N] [--only userspace|direct|tunnel|kernel] [--profile]:
// the service proxy's data paths against a TCP echo server (the "pod"), every
// part in a process of its own so the proxy never shares an event loop with
// the load generator. One JSON line per case:
//   (a) direct TCP to the pod;
//   (b) through a VIP, pod on the same peer: userspace (ServiceProxy, its own
//       process) and kernel (KernelProxy's iptables DNAT, in a network namespace
//       this bench creates, as test/hosts/netns.ts does; root and iptables only);
//   (c) through a VIP, pod on another peer: two real libp2p peers (net/host.ts),
//       ServiceProxy + PeerDataDialer on the client's, TunnelServer + PeerDataServer on
//       the pod's: the TLS data path (net/peer-data.ts), and for comparison its
//       fallback, a /shoal/tunnel/1 stream per connection (TunnelClient).
//       In kernel mode such a port goes to the userspace proxy (the kernel takes
//       no endpoint behind a peer), which one line shows.
// Figures: bulk MB/s (echoed bytes back, 64 connections writing 64 KiB chunks) and
// 1 KiB request/response p50/p99 at 64 connections (and p50/p99 on one connection), with
// ratios to (a) and the goals of issue 7. --profile writes each peer process's .cpuprofile (node --cpu-prof)
// and prints where its time went.
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { KernelProxy, probeKernelProxy } from '../../net/kernel-proxy.js'
import type { ProxyServicePort } from '../../net/proxy-types.js'
import { checkNetnsAvailable, VirtualNetwork } from '../../test/hosts/netns.js'
import type { BenchArgs } from '../bench.js'
import { startChild, runLoad, type BenchChild, type BulkResult, type RequestResponseResult } from './proxy-children.js'
import { summarizeProfile } from './proxy-profile.js'
import { report, round } from './report.js'

const connections = 64
const loopbackVipBase = `127.77.${process.pid % 250}`
const vipPort = 20_000 + (process.pid % 10_000)

interface Figures {
  bulk: BulkResult
  rr: RequestResponseResult
  /** Request/response on one connection: the path's own latency, without 64 requests queued on 2 cores. */
  rrOne: RequestResponseResult
}

interface Goal {
  throughputRatioMin: number
  addedP50MsMax?: number
}

async function measure(host: string, port: number, seconds: number, namespace?: string): Promise<Figures> {
  const bulk = await runLoad<BulkResult>(host, port, 'bulk', connections, seconds, namespace)
  const rr = await runLoad<RequestResponseResult>(host, port, 'rr', connections, seconds, namespace)
  const rrOne = await runLoad<RequestResponseResult>(host, port, 'rr', 1, Math.max(1, seconds / 2), namespace)
  return { bulk, rr, rrOne }
}

function line(name: string, mode: string | null, path: string, f: Figures, direct: Figures | null, goal: Goal | null, extra: Record<string, unknown> = {}): void {
  const mbps = f.bulk.bytesPerSec / 1e6
  const fields: Record<string, unknown> = { bench: 'proxy', case: name, mode, path, connections, bulkMBps: round(mbps, 1), p50Ms: round(f.rr.p50Ms, 3), p99Ms: round(f.rr.p99Ms, 3), requestsPerSec: Math.round(f.rr.requestsPerSec), oneConnectionP50Ms: round(f.rrOne.p50Ms, 3), oneConnectionP99Ms: round(f.rrOne.p99Ms, 3) }
  if (direct !== null) {
    const throughputRatio = f.bulk.bytesPerSec / direct.bulk.bytesPerSec
    const addedP50Ms = f.rr.p50Ms - direct.rr.p50Ms
    Object.assign(fields, {
      bulkRatio: round(throughputRatio, 3),
      p50Ratio: round(f.rr.p50Ms / direct.rr.p50Ms, 2),
      p99Ratio: round(f.rr.p99Ms / direct.rr.p99Ms, 2),
      addedP50Ms: round(addedP50Ms, 3),
      oneConnectionAddedP50Ms: round(f.rrOne.p50Ms - direct.rrOne.p50Ms, 3),
    })
    if (goal !== null) {
      const met = throughputRatio >= goal.throughputRatioMin && (goal.addedP50MsMax === undefined || addedP50Ms < goal.addedP50MsMax)
      Object.assign(fields, { goal: `bulkRatio >= ${goal.throughputRatioMin}${goal.addedP50MsMax === undefined ? '' : ` and addedP50Ms < ${goal.addedP50MsMax}`}`, goalMet: met })
    }
  }
  report({ ...fields, ...extra })
}

function echoPort(child: BenchChild): Promise<number> {
  return child.firstLine.then((l) => Number(l.port))
}

function servicePort(vip: string, ip: string, port: number, viaPeerId: string | null): ProxyServicePort {
  return { id: 'bench/echo:80/TCP', vip, port: vipPort, protocol: 'TCP', sessionAffinity: 'None', affinityTimeoutMs: 0, endpoints: [{ ip, port, viaPeerId }] }
}

async function userspaceSamePeer(args: BenchArgs, echo: number, direct: Figures, nodeFlags: string[]): Promise<void> {
  const vip = `${loopbackVipBase}.10`
  const proxy = startChild('./proxy-peer.ts', ['userspace', vip, String(vipPort), '127.0.0.1', String(echo)], { nodeFlags: nodeFlags.map((f) => f.replace('NAME', 'userspace')) })
  try {
    await proxy.firstLine
    line('(b) VIP, pod on the same peer', 'userspace', 'ServiceProxy process', await measure(vip, vipPort, args.seconds), direct, { throughputRatioMin: 0.6, addedP50MsMax: 0.2 })
  } finally {
    await proxy.stop()
  }
}

const otherPeerPaths = {
  direct: 'ServiceProxy peer -> TLS 1.3 PSK data path (key from /shoal/tunnel/1) -> PeerDataServer peer',
  tunnel: 'ServiceProxy + TunnelClient peer -> /shoal/tunnel/1 (pnet + Noise + Yamux) -> TunnelServer peer',
} as const

async function userspaceOtherPeer(args: BenchArgs, echo: number, direct: Figures, nodeFlags: string[], path: keyof typeof otherPeerPaths): Promise<void> {
  const vip = `${loopbackVipBase}.${path === 'direct' ? 11 : 12}`
  const secret = randomBytes(32).toString('hex')
  const env = { SHOAL_BENCH_SECRET: secret }
  const server = startChild('./proxy-peer.ts', ['tunnel-server'], { env, nodeFlags: nodeFlags.map((f) => f.replace('NAME', 'tunnel-server')) })
  let client: BenchChild | null = null
  try {
    const { peerId, addr } = (await server.firstLine) as { peerId: string; addr: string }
    client = startChild('./proxy-peer.ts', ['tunnel-client', vip, String(vipPort), '127.0.0.1', String(echo), peerId, addr, path], { env, nodeFlags: nodeFlags.map((f) => f.replace('NAME', `tunnel-client-${path}`)) })
    await client.firstLine
    // The direct data path is what the proxy uses; the tunnel stream is its fallback, kept for comparison.
    const goal = path === 'direct' ? { throughputRatioMin: 0.4 } : null
    line(`(c) VIP, pod on another peer${path === 'direct' ? '' : ', tunnel stream (fallback)'}`, 'userspace', otherPeerPaths[path], await measure(vip, vipPort, args.seconds), direct, goal)
  } finally {
    await client?.stop()
    await server.stop()
  }
}

/** Kernel mode inside a namespace of our own: KernelProxy programs it, echo and load run in it. */
async function kernel(args: BenchArgs, direct: Figures): Promise<void> {
  const netns = await checkNetnsAvailable()
  const probe = await probeKernelProxy()
  if (!netns.ok || !netns.iptables || !probe.ok) {
    report({ bench: 'proxy', case: 'kernel mode', skipped: true, reason: !netns.ok || !netns.iptables ? netns.reason : probe.reason })
    return
  }
  const network = await VirtualNetwork.create({ hosts: 1, label: 'proxybench' })
  const namespace = network.hosts[0]!.namespace
  const echo = startChild('./proxy-echo.ts', ['127.0.0.1'], { namespace })
  let kernelProxy: KernelProxy | null = null
  try {
    const port = await echoPort(echo)
    kernelProxy = await KernelProxy.start({ commandPrefix: ['ip', 'netns', 'exec', namespace] })
    const vip = '127.77.0.10'
    const applied = await kernelProxy.apply([servicePort(vip, '127.0.0.1', port, null)])
    if (applied.kernelPortIds.length !== 1) throw new Error(`the kernel did not take the port: ${JSON.stringify(applied)}`)
    // The same namespace with our nat rules loaded (conntrack on), without the DNAT: the fairer baseline.
    const directInNamespace = await measure('127.0.0.1', port, args.seconds, namespace)
    line('(a) direct TCP to the pod, in the namespace', null, 'direct (network namespace, kernel proxy rules loaded)', directInNamespace, direct, null)
    const dnat = await measure(vip, vipPort, args.seconds, namespace)
    line('(b) VIP, pod on the same peer', 'kernel', 'iptables DNAT (network namespace)', dnat, direct, { throughputRatioMin: 0.95 }, {
      bulkRatioToDirectInNamespace: round(dnat.bulk.bytesPerSec / directInNamespace.bulk.bytesPerSec, 3),
      addedP50MsToDirectInNamespace: round(dnat.rr.p50Ms - directInNamespace.rr.p50Ms, 3),
    })
    const remote = await kernelProxy.apply([servicePort(vip, '127.0.0.1', port, '12D3KooWBenchRemotePeerPlaceholder')])
    report({
      bench: 'proxy',
      case: '(c) VIP, pod on another peer',
      mode: 'kernel',
      kernelPortIds: remote.kernelPortIds,
      userspacePortIds: remote.userspacePortIds,
      note: 'the kernel takes no endpoint behind a peer (it cannot encrypt between hosts): the port goes to the userspace proxy and its TLS data path, so kernel-mode (c) is the userspace (c) line (goal 0.8 not reachable this way)',
    })
  } finally {
    await kernelProxy?.close()
    await echo.stop()
    await network.destroy()
  }
}

/** Per process directory, the largest profile (the main thread's; the loader thread's is small). */
async function reportProfiles(dir: string): Promise<void> {
  for (const role of (await readdir(dir)).sort()) {
    const files = await Promise.all((await readdir(join(dir, role))).map(async (f) => ({ f, size: (await stat(join(dir, role, f))).size })))
    const main = files.sort((a, b) => b.size - a.size)[0]
    if (main === undefined) continue
    const path = join(dir, role, main.f)
    for (const row of await summarizeProfile(path, 12)) report({ bench: 'proxy', profileOf: role, ...row })
    report({ bench: 'proxy', profileOf: role, profileWritten: path })
  }
}

export async function benchProxy(args: BenchArgs): Promise<void> {
  const only = args.only
  let profileDir: string | null = null
  const nodeFlags: string[] = []
  if (args.profile) {
    profileDir = resolve(tmpdir(), `shoal-bench-proxy-profiles-${Date.now()}`)
    await mkdir(profileDir, { recursive: true })
    // A directory per process: tsx's loader thread writes a profile of its own next to the main thread's.
    nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${join(profileDir, 'NAME')}`)
  }
  const echo = startChild('./proxy-echo.ts', ['127.0.0.1'])
  let direct: Figures
  try {
    const port = await echoPort(echo)
    direct = await measure('127.0.0.1', port, args.seconds)
    line('(a) direct TCP to the pod', null, 'direct', direct, null, null)
    if (only === undefined || only === 'userspace') await userspaceSamePeer(args, port, direct, nodeFlags)
    if (only === undefined || only === 'userspace' || only === 'direct') await userspaceOtherPeer(args, port, direct, nodeFlags, 'direct')
    if (only === undefined || only === 'userspace' || only === 'tunnel') await userspaceOtherPeer(args, port, direct, nodeFlags, 'tunnel')
  } finally {
    await echo.stop()
  }
  // Loopback inside a fresh namespace is the same kernel path as (a), so (a) stays the baseline.
  if (only === undefined || only === 'kernel') await kernel(args, direct)
  if (profileDir !== null) await reportProfiles(profileDir)
}
