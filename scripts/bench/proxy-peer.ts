// Child process of `npm run bench -- proxy`: one peer's part of the data path, on
// an event loop of its own. argv: ROLE, then per role:
//   userspace VIP PORT ENDPOINT_IP ENDPOINT_PORT       ServiceProxy, endpoint on this peer
//   tunnel-server                                       libp2p host + TunnelServer + PeerDataServer (the pod's peer)
//   tunnel-client VIP PORT ENDPOINT_IP ENDPOINT_PORT SERVER_PEER_ID SERVER_ADDR PATH
//                                                       libp2p host + ServiceProxy + PATH: 'direct'
//                                                       (PeerDataDialer: TLS data path) or 'tunnel' (TunnelClient)
// The cluster secret comes in SHOAL_BENCH_SECRET. Prints one JSON line when ready;
// exits (writing a --cpu-prof profile, if asked) when stdin closes or on SIGTERM.
import '../../net/polyfill.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createPeerHost, type PeerHost } from '../../net/host.js'
import type { ProxyServicePort } from '../../net/proxy-types.js'
import { PeerDataServer } from '../../net/peer-data.js'
import { PeerDataDialer } from '../../net/peer-data-client.js'
import { ServiceProxy } from '../../net/service-proxy.js'
import { TunnelClient, TunnelServer } from '../../net/tunnel.js'

const [role, ...rest] = process.argv.slice(2)
const secret = process.env.SHOAL_BENCH_SECRET ?? ''

function servicePort(vip: string, port: number, ip: string, endpointPort: number, viaPeerId: string | null): ProxyServicePort {
  return { id: 'bench/echo:80/TCP', vip, port, protocol: 'TCP', sessionAffinity: 'None', affinityTimeoutMs: 0, endpoints: [{ ip, port: endpointPort, viaPeerId }] }
}

async function host(): Promise<PeerHost> {
  return createPeerHost({ privateKey: await generateKeyPair('Ed25519'), clusterSecret: secret, listen: ['/ip4/127.0.0.1/tcp/0'] })
}

async function applyOrThrow(proxy: ServiceProxy, spec: ProxyServicePort): Promise<void> {
  const result = await proxy.apply([spec])
  if (result.failed.length > 0) throw result.failed[0]!.error
}

let stop: () => Promise<void> = async () => undefined
if (role === 'userspace') {
  const [vip = '', port = '', ip = '', endpointPort = ''] = rest
  const proxy = new ServiceProxy({ tunnel: null, nodePortAddresses: [] })
  await applyOrThrow(proxy, servicePort(vip, Number(port), ip, Number(endpointPort), null))
  stop = () => proxy.close()
  console.log(JSON.stringify({ ready: role }))
} else if (role === 'tunnel-server') {
  const peer = await host()
  const dataServer = await PeerDataServer.start({ host: '127.0.0.1' })
  const server = new TunnelServer({ host: peer, dataPath: dataServer })
  await server.start()
  stop = async () => {
    await server.stop()
    await dataServer.close()
    await peer.stop()
  }
  console.log(JSON.stringify({ ready: role, peerId: peer.peerId.toString(), addr: peer.getMultiaddrs()[0]!.toString() }))
} else if (role === 'tunnel-client') {
  const [vip = '', port = '', ip = '', endpointPort = '', serverPeerId = '', serverAddr = '', path = 'direct'] = rest
  const peer = await host()
  const serverId = peerIdFromString(serverPeerId)
  await peer.peerStore.merge(serverId, { multiaddrs: [multiaddr(serverAddr)] })
  await peer.dial(serverId)
  const tunnel = new TunnelClient(peer)
  const proxy = new ServiceProxy({ tunnel: path === 'direct' ? new PeerDataDialer({ tunnel, log: (l) => console.error(l) }) : tunnel, nodePortAddresses: [] })
  await applyOrThrow(proxy, servicePort(vip, Number(port), ip, Number(endpointPort), serverPeerId))
  stop = async () => {
    await proxy.close()
    await peer.stop()
  }
  console.log(JSON.stringify({ ready: role, peerId: peer.peerId.toString(), path }))
} else {
  console.error(`unknown role ${role}`)
  process.exit(2)
}

const exit = (): void => {
  // The profile (--cpu-prof) is written on a normal exit; give stop() a bound.
  setTimeout(() => process.exit(0), 2000).unref()
  void stop().finally(() => process.exit(0))
}
process.stdin.on('end', exit).resume()
process.on('SIGTERM', exit)
