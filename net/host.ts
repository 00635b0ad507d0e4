// The libp2p host every peer runs: TCP, Noise, Yamux, identify, ping,
// gossipsub, and the private-network protector keyed by the cluster secret,
// which rejects strangers before any cluster protocol runs.
import './xsalsa20-fix.js'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify, type Identify } from '@libp2p/identify'
import type { PrivateKey } from '@libp2p/interface'
import { noise } from '@libp2p/noise'
import { ping, type Ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { pnetKey } from './identity.js'

export type PeerHost = Libp2p<{ identify: Identify; ping: Ping; pubsub: GossipSub }>

export interface PeerHostOptions {
  privateKey: PrivateKey
  clusterSecret: string
  /** Multiaddrs to listen on, e.g. /ip4/0.0.0.0/tcp/7946. */
  listen: string[]
  /** Addresses to advertise instead of the listen ones (e.g. a public IP). */
  announce?: string[]
}

/**
 * Small clusters leave gossipsub's mesh under-full, so publish to every known
 * subscriber (floodPublish) and keep the mesh targets low; heartbeats every
 * 200 ms graft new peers quickly.
 */
const smallClusterGossip = {
  // Connections are already authenticated by Noise inside the private network; signing
  // and verifying every report in JavaScript was the largest CPU cost at 20 peers.
  globalSignaturePolicy: 'StrictNoSign',
  D: 3,
  Dlo: 2,
  Dhi: 6,
  Dout: 1,
  heartbeatInterval: 200,
  floodPublish: true,
  allowPublishToZeroTopicPeers: true,
  emitSelf: false,
  // Gossipsub penalizes many peers on one IP (a Sybil defence) until it graylists them: 19 peers
  // on one host went silent. Inside the private network every peer holds the cluster secret, and
  // several peers behind one address (NAT, containers, a test machine) are legitimate.
  scoreParams: { IPColocationFactorWeight: 0 },
} as const

export async function createPeerHost(options: PeerHostOptions): Promise<PeerHost> {
  return createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: options.listen, ...(options.announce === undefined ? {} : { announce: options.announce }) },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: preSharedKey({ psk: pnetKey(options.clusterSecret) }),
    // libp2p's default connection monitor (a ping every 10 s): death detection is gossip's job
    // (probes within ~2 s); a monitor that drops slow connections only adds churn under load.
    // The connection monitor and gossip's failure probes both ping: with the default single
    // outbound ping stream per connection they collide and a busy peer looks dead.
    services: { identify: identify(), ping: ping({ maxOutboundStreams: 4 }), pubsub: gossipsub(smallClusterGossip) },
  })
}
