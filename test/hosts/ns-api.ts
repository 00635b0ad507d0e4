// Talking to peers that live in network namespaces: the test itself lives
// outside every namespace, so requests run as a small node script inside the
// host's namespace.
import type { ClusterView } from '../../node/http-api.js'
import type { ApiTarget } from '../../node/cli/client.js'
import { ProcessCluster, type PeerProcess } from '../node/process-cluster.js'
import { VirtualNetwork, type VirtualHost } from './netns.js'

/**
 * A request from inside a host's namespace (the test itself lives outside every
 * namespace), over HTTPS to the peer's API at 127.0.0.1 there, trusting the
 * cluster CA and carrying the admin token from the peer's kubeconfig.
 */
export async function nsFetch(vnet: VirtualNetwork, host: VirtualHost, target: ApiTarget, path: string, init: { method?: string; body?: string; timeoutMs?: number } = {}): Promise<{ status: number; body: string }> {
  const script = `const https = require('node:https')
    const req = https.request('https://127.0.0.1:7947' + process.env.SHOAL_PATH, { method: process.env.SHOAL_METHOD, ca: process.env.SHOAL_CA, headers: { authorization: 'Bearer ' + process.env.SHOAL_TOKEN } }, (res) => {
      let body = ''; res.setEncoding('utf8'); res.on('data', (c) => (body += c)); res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, body })))
    })
    req.setTimeout(${init.timeoutMs ?? 3000}, () => req.destroy(new Error('timeout')))
    req.on('error', (e) => process.stdout.write(JSON.stringify({ status: 0, body: e.message })))
    if (process.env.SHOAL_BODY) req.write(process.env.SHOAL_BODY)
    req.end()`
  const env = `SHOAL_PATH=${path}`
  const result = await vnet.exec(host, 'env', [env, `SHOAL_METHOD=${init.method ?? 'GET'}`, `SHOAL_CA=${target.caPem ?? ''}`, `SHOAL_TOKEN=${target.token ?? ''}`, `SHOAL_BODY=${init.body ?? ''}`, process.execPath, '-e', script], 15_000)
  return JSON.parse(result.stdout || '{"status":0,"body":"no output"}') as { status: number; body: string }
}

export async function viewOf(vnet: VirtualNetwork, host: VirtualHost): Promise<ClusterView> {
  const r = await nsFetch(vnet, host, targetOf(host), '/shoal/v1/cluster')
  if (r.status !== 200) throw new Error(`cluster view: ${r.status} ${r.body}`)
  return JSON.parse(r.body) as ClusterView
}

export const targets = new Map<VirtualHost, ApiTarget>()
export function targetOf(host: VirtualHost): ApiTarget {
  const target = targets.get(host)
  if (target === undefined) throw new Error(`no kubeconfig read for ${host.name} yet`)
  return target
}

export interface NsCluster {
  vnet: VirtualNetwork
  cluster: ProcessCluster
  peers: PeerProcess[]
  hostOf: Map<string, VirtualHost>
  destroy(): Promise<void>
}

/** `hosts` network namespaces with a peer in each (`PREFIX1`, `PREFIX2`, ...), the first bootstrapping, the others joining; their kubeconfigs read into `targets`. */
export async function startNsCluster(label: string, namePrefix: string, peerArgs: string[] = [], hosts = 3): Promise<NsCluster> {
  const vnet = await VirtualNetwork.create({ hosts, label })
  const cluster = await ProcessCluster.create()
  const peers: PeerProcess[] = []
  const hostOf = new Map<string, VirtualHost>()
  for (const [k, host] of vnet.hosts.entries()) {
    const peer = await cluster.add(`${namePrefix}${k + 1}`, { ip: host.ip })
    peers.push(peer)
    hostOf.set(peer.name, host)
  }
  const launcher = (peer: PeerProcess) => (command: string, args: string[]) => vnet.spawn(hostOf.get(peer.name)!, command, args)
  cluster.start(peers[0]!, peerArgs, launcher(peers[0]!))
  const token = await cluster.tokenOf(peers[0]!)
  for (const p of peers.slice(1)) cluster.start(p, ['--join', token, ...peerArgs], launcher(p))
  for (const p of peers) targets.set(hostOf.get(p.name)!, await cluster.target(p))
  return {
    vnet,
    cluster,
    peers,
    hostOf,
    destroy: async () => {
      await cluster.destroy()
      await vnet.destroy()
    },
  }
}
