// Starting a peer's API: wait until the cluster CA and admin token have reached
// this peer (replicated settings), issue a serving certificate for its names,
// serve HTTPS, and write a kubeconfig into the data directory.
import { writeFile } from 'node:fs/promises'
import type { Server } from 'node:http'
import { hostname, networkInterfaces } from 'node:os'
import { join } from 'node:path'
import { ApiMetrics } from './api/metrics.js'
import { startApiServer } from './api/server.js'
import { adminTokenSettingKey, caSettingKey } from './cluster-bootstrap.js'
import { shoalRoutes } from './http-api.js'
import { PeerApiImpl } from './peer-api.js'
import type { Peer } from './peer.js'
import { issueServingCertificate, parseCaMaterial, servingNames } from './security/ca.js'
import { renderKubeconfig } from './security/kubeconfig.js'

export interface ApiStartOptions {
  dataDir: string
  host: string
  port: number
  insecureHttp: boolean
  benchEndpoints: boolean
  shoalVersion: string
}

export const kubeconfigFileName = 'kubeconfig'

/** Resolves once the settings hold the CA and the admin token (they arrive through Raft). */
function secretsArrived(peer: Peer): Promise<{ caText: string; token: string }> {
  return new Promise((resolve) => {
    const check = (): boolean => {
      const caText = peer.registry.settings.get(caSettingKey)
      const token = peer.registry.settings.get(adminTokenSettingKey)
      if (caText === undefined || token === undefined) return false
      resolve({ caText, token })
      return true
    }
    if (!check()) peer.registry.onCommand(() => void check())
  })
}

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address))
}

export async function startPeerApi(peer: Peer, o: ApiStartOptions): Promise<{ server: Server; address: string; url: string }> {
  const secrets = o.insecureHttp ? null : await secretsArrived(peer)
  const tls = secrets === null ? null : issueServingCertificate(parseCaMaterial(secrets.caText), { commonName: peer.identity.name.slice(0, 64), ...servingNames({ hostname: hostname(), listenHosts: [o.host], interfaceAddresses: interfaceAddresses() }) })
  const started = await startApiServer({
    host: o.host,
    port: o.port,
    tls,
    adminToken: () => peer.registry.settings.get(adminTokenSettingKey) ?? null,
    kinds: peer.state.store.kinds,
    resources: peer.resourceContext(),
    metrics: new ApiMetrics(peer.driver, peer.gossip),
    shoalVersion: o.shoalVersion,
    ready: () => peer.driver.node.leaderId !== null,
    shoalRoutes: shoalRoutes(new PeerApiImpl(peer, o.benchEndpoints)),
  })
  const local = o.host === '0.0.0.0' || o.host === '::' ? `127.0.0.1:${started.address.split(':').pop()}` : started.address
  const url = `${tls === null ? 'http' : 'https'}://${local}`
  if (secrets !== null) {
    const kubeconfig = renderKubeconfig({ clusterName: `shoal-${peer.identity.clusterId.slice(0, 8)}`, server: url, caPem: parseCaMaterial(secrets.caText).certPem, token: secrets.token, userName: 'admin', contextName: `shoal-${peer.identity.clusterId.slice(0, 8)}` })
    await writeFile(join(o.dataDir, kubeconfigFileName), kubeconfig, { mode: 0o600 })
  }
  return { ...started, url }
}
