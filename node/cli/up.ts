// shoal up: start this host's peer. With an empty data dir and no --join it
// bootstraps a cluster and prints the join token; with --join it joins; with a
// data dir that already belongs to a cluster it rejoins from what it knows.
import { Peer, defaultPeerOptions, type PeerOptions } from '../peer.js'
import { UsageError, hostPort, parse, toMultiaddr } from './args.js'
import { defaultDataDir } from './client.js'
import { defaultAgentSettings, runtimeChoices, type RuntimeChoice } from '../agent/start.js'
import { defaultServiceCidr, parseCidr } from '../kinds/service-allocation.js'
import { defaultServicesSettings, servicesModes, type ServicesMode } from '../services/start.js'

export const upUsage = `usage: shoal up [--data-dir DIR] [--name NAME] [--listen MULTIADDR|HOST:PORT]... [--announce MULTIADDR]...
                [--api HOST:PORT] [--join TOKEN|ADDRESS] [--voters N] [--leave-on-terminate]
                [--dead-voter-grace-ms MS] [--insecure-http] [--snapshot-every-entries N]
                [--pod-eviction-timeout DURATION] [--runtime process|docker|auto|none]
                [--restart-backoff-initial DURATION] [--restart-backoff-max DURATION] [--service-cidr CIDR]
                [--proxy-mode kernel|userspace|auto|off] [--dns HOST:PORT] [--data-listen HOST:PORT|off]`

export async function up(args: string[]): Promise<number> {
  const { values } = parse(args, {
    'data-dir': { type: 'string' },
    name: { type: 'string' },
    listen: { type: 'string', multiple: true },
    announce: { type: 'string', multiple: true },
    api: { type: 'string', default: '127.0.0.1:7947' },
    join: { type: 'string' },
    voters: { type: 'string', default: String(defaultPeerOptions.votersMax) },
    'leave-on-terminate': { type: 'boolean', default: false },
    'tick-ms': { type: 'string', default: String(defaultPeerOptions.tickIntervalMs) },
    'dead-voter-grace-ms': { type: 'string', default: String(defaultPeerOptions.deadVoterGraceMs) },
    'bench-endpoints': { type: 'boolean', default: false },
    'insecure-http': { type: 'boolean', default: false },
    'snapshot-every-entries': { type: 'string', default: String(defaultPeerOptions.snapshotEveryEntries) },
    'pod-eviction-timeout': { type: 'string', default: `${defaultPeerOptions.podEvictionTimeoutMs / 1000}s` },
    runtime: { type: 'string', default: defaultAgentSettings.runtime },
    'restart-backoff-initial': { type: 'string', default: `${defaultAgentSettings.restartBackoffInitialMs / 1000}s` },
    'restart-backoff-max': { type: 'string', default: `${defaultAgentSettings.restartBackoffMaxMs / 60_000}m` },
    'service-cidr': { type: 'string', default: defaultServiceCidr },
    'proxy-mode': { type: 'string', default: defaultServicesSettings.proxyMode },
    dns: { type: 'string', default: `${defaultServicesSettings.dnsHost}:${defaultServicesSettings.dnsPort}` },
    'data-listen': { type: 'string' },
  })
  const proxyMode = values['proxy-mode'] as ServicesMode
  if (!servicesModes.includes(proxyMode)) throw new UsageError(`--proxy-mode wants one of ${servicesModes.join(', ')}, not ${values['proxy-mode']}`)
  const dns = hostPort(values.dns, '--dns')
  const dataListenFlag = values['data-listen']
  const dataListen = dataListenFlag === undefined ? {} : { dataListen: dataListenFlag === 'off' ? null : hostPort(dataListenFlag, '--data-listen') }
  try {
    parseCidr(values['service-cidr'])
  } catch (err) {
    throw new UsageError(`--service-cidr: ${(err as Error).message}`)
  }
  const runtime = values.runtime as RuntimeChoice
  if (!runtimeChoices.includes(runtime)) throw new UsageError(`--runtime wants one of ${runtimeChoices.join(', ')}, not ${values.runtime}`)
  const dataDir = values['data-dir'] ?? defaultDataDir
  const votersMax = Number(values.voters)
  if (!Number.isInteger(votersMax) || votersMax < 1 || votersMax > 9) throw new UsageError('--voters wants a number from 1 to 9')
  const api = hostPort(values.api, '--api')
  const options: PeerOptions = {
    ...defaultPeerOptions,
    dataDir,
    listen: (values.listen ?? ['/ip4/0.0.0.0/tcp/7946']).map(toMultiaddr),
    apiHost: api.host,
    apiPort: api.port,
    votersMax,
    tickIntervalMs: Number(values['tick-ms']),
    deadVoterGraceMs: Number(values['dead-voter-grace-ms']),
    snapshotEveryEntries: positiveInteger(values['snapshot-every-entries'], '--snapshot-every-entries'),
    podEvictionTimeoutMs: durationMs(values['pod-eviction-timeout'], '--pod-eviction-timeout'),
    serviceCidr: values['service-cidr'],
    services: { proxyMode, dnsHost: dns.host, dnsPort: dns.port, ...dataListen },
    agent: {
      runtime,
      restartBackoffInitialMs: durationMs(values['restart-backoff-initial'], '--restart-backoff-initial'),
      restartBackoffMaxMs: durationMs(values['restart-backoff-max'], '--restart-backoff-max'),
    },
    benchEndpoints: values['bench-endpoints'],
    insecureHttp: values['insecure-http'],
    ...(values.name === undefined ? {} : { name: values.name }),
    ...(values.join === undefined ? {} : { join: values.join }),
    ...(values.announce === undefined ? {} : { announce: values.announce.map(toMultiaddr) }),
  }
  const peer = await Peer.start(options)
  printStarted(peer, values.join === undefined)
  const stopped = waitForShutdown(peer, values['leave-on-terminate'])
  // The API waits for the cluster CA; a listener it may not use (--insecure-http off loopback) is fatal.
  const apiFailed = peer.api.then(
    (api) => {
      console.log(`API on ${api.url}${values['insecure-http'] ? ' (plain HTTP, no authentication)' : `; kubeconfig in ${dataDir}/kubeconfig`}`)
      return new Promise<number>(() => {})
    },
    async (err: Error) => {
      console.error(`shoal up: ${err.message}`)
      await peer.stop()
      return 1
    },
  )
  return Promise.race([stopped, apiFailed])
}

function printStarted(peer: Peer, mayHaveBootstrapped: boolean): void {
  const leader = peer.driver.node.leaderId
  console.log(`peer ${peer.identity.name} (${peer.id}) is up in cluster ${peer.identity.clusterId}`)
  console.log(`  listening on ${peer.addresses().join(' ')}`)
  if (mayHaveBootstrapped && peer.registry.activePeers().length <= 1 && (leader === null || leader === peer.id)) {
    console.log(`\nTo add another host, run there:\n  shoal up --data-dir <dir> --join ${peer.joinToken}\n`)
  }
  void peer.registered.then(() => console.log('registered with the cluster'))
}

/** Run until SIGINT/SIGTERM (leaving first if asked) or until the peer has left. */
function waitForShutdown(peer: Peer, leaveOnTerminate: boolean): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false
    const stop = async (leave: boolean): Promise<void> => {
      if (stopping) return
      stopping = true
      if (leave) await peer.leave().catch((err: Error) => console.error(`shoal: leaving failed: ${err.message}`))
      await peer.stop()
      resolve(0)
    }
    process.once('SIGINT', () => void stop(false))
    process.once('SIGTERM', () => void stop(leaveOnTerminate))
    peer.onLeft = () => {
      console.log('left the cluster')
      void stop(false)
    }
  })
}

function positiveInteger(text: string, flag: string): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`${flag} wants a whole number above 0, not ${text}`)
  return value
}

/** A duration as Kubernetes flags write it: `5s`, `500ms`, `2m`, `1m30s`. */
export function durationMs(text: string, flag: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)]
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) throw new UsageError(`${flag} wants a duration such as 5s, 500ms or 2m, not ${text}`)
  return parts.reduce((total, p) => total + Number(p[1]) * units[p[2]!]!, 0)
}
