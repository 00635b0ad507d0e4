// One real peer in the test's own process (real libp2p, real LevelDB, a single
// voter), in a temporary data dir: for tests that reach into its store.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Peer, defaultPeerOptions, type PeerOptions } from '../../node/peer.js'
import { until } from './process-cluster.js'

export interface LocalPeer {
  peer: Peer
  dataDir: string
  /** Stop the peer and remove its data dir. */
  stop(): Promise<void>
}

/** Start a peer named `name`; resolves once its API listens and the default namespace exists. */
export async function startLocalPeer(name: string, extra: Partial<PeerOptions> = {}): Promise<LocalPeer> {
  const dataDir = await mkdtemp(join(tmpdir(), `shoal-${name}-`))
  const peer = await Peer.start({ ...defaultPeerOptions, dataDir, name, listen: ['/ip4/127.0.0.1/tcp/0'], apiHost: '127.0.0.1', apiPort: 0, ...extra })
  await peer.api
  await until(() => peer.state.store.get({ apiVersion: 'v1', kind: 'Namespace', name: 'default' }), 30_000, 'the default namespace')
  return {
    peer,
    dataDir,
    stop: async () => {
      await peer.stop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}
