// What the demo prints once the app is ready: where to open it, how to use
// the cluster with shoal or kubectl, and how to kill a peer and watch its pods
// move.
import { appStatus } from './app-status.js'
import type { DemoExample } from './examples.js'
import type { LocalPeers, ShoalCli } from './local-peers.js'

export interface SummaryInput {
  peers: LocalPeers
  example: DemoExample
  cli: ShoalCli
  /** The NodePort URL, without a trailing slash. */
  url: string
  dir: string
  proof: string
}

interface ServiceJson {
  spec?: { clusterIP?: string; ports?: { port: number }[] }
}

export async function printSummary(s: SummaryInput): Promise<void> {
  const { peers } = s
  const service = await peers.get<ServiceJson>(`/api/v1/namespaces/default/services/${s.example.service}`)
  const vip = service?.spec?.clusterIP
  const vipPort = service?.spec?.ports?.[0]?.port
  const status = await appStatus(peers)
  const podsOn = (node: string) => status?.pods.filter((p) => p.node === node && !p.terminating).map((p) => p.name) ?? []
  const first = peers.peers[0]!
  // Suggest killing a peer other than the one the kubeconfig points at: the one with the Redis master if that is one.
  const master = status?.pods.find((p) => p.name.startsWith('redis-master-'))?.node
  const victim = peers.peers.find((p) => p.name === master && p !== first) ?? peers.peers[peers.peers.length - 1]!
  const lines = [
    '',
    `Open ${s.url}/ in a browser: NodePort ${s.url.split(':').pop()} on every peer.`,
    vip === undefined ? '' : `Inside the cluster the ${s.example.service} service is http://${vip}${vipPort === 80 ? '' : `:${vipPort}`}/ (its cluster IP, served on this machine too).`,
    '',
    `Use the cluster with shoal or kubectl (any peer answers; this is ${first.name}'s kubeconfig):`,
    `  export KUBECONFIG=${first.kubeconfig}`,
    `  alias shoal='${s.cli.display}'`,
    '  shoal get pods -o wide                 # or: kubectl get pods -o wide',
    '  shoal get rc,svc,nodes',
    `  shoal describe svc ${s.example.service}`,
    `  shoal logs -f ${podsOn(victim.name)[0] ?? status?.pods[0]?.name ?? 'POD'}`,
    `  shoal scale rc ${s.example.service} --replicas=5`,
    '',
    'Kill a peer and watch its pods move (its Node turns Unknown at once; after the 5 s eviction timeout its pods are replaced on the others):',
    `  kill -9 ${victim.child?.pid}       # ${victim.name}: ${podsOn(victim.name).join(', ') || 'no pods'}`,
    '  shoal get pods -o wide -w',
    '',
    'Peers:',
    ...peers.peers.map((p) => `  ${p.name}  pid ${String(p.child?.pid).padEnd(7)} API https://${p.api}  log ${p.logPath}`),
    '',
    'Ctrl-C stops everything: deletes the app, stops the peers, ends every pod process.',
  ]
  console.log(lines.filter((line, k) => line !== '' || lines[k - 1] !== '').join('\n'))
}
