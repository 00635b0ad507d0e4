// Starting a peer's agent: pick the runtime (`--runtime process|docker|auto|none`),
// then run the Agent against the local replica. `auto` takes a Docker-compatible
// engine when one answers (DOCKER_HOST, else the default socket) and the
// process runtime otherwise; `none` runs no agent, so pods bound to this
// peer's Node are left to someone else (tests and benchmarks that simulate
// nodes do this).
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import type { Submitter } from '../api/submit.js'
import type { ObjectStore } from '../store/object-store.js'
import type { HostDescription } from '../nodes/host-info.js'
import { Agent } from './agent.js'
import type { ContainerRuntime } from './runtime.js'
import { RuntimeUnavailableError } from './runtime-errors.js'
import { ProcessRuntime } from './process-runtime.js'
import { DockerRuntime } from './docker-runtime.js'
import { AgentProbes } from './agent-probes.js'

export type RuntimeChoice = 'process' | 'docker' | 'auto' | 'none'

export const runtimeChoices: readonly RuntimeChoice[] = ['process', 'docker', 'auto', 'none']

/** How long `auto` waits for an engine to answer its ping. */
const enginePingTimeoutMs = 1000

/** What `shoal up` decides about the agent. */
export interface AgentSettings {
  runtime: RuntimeChoice
  /** The first wait before restarting a crashed container (the kubelet's 10 s). */
  restartBackoffInitialMs: number
  restartBackoffMaxMs: number
}

export const defaultAgentSettings: AgentSettings = { runtime: 'auto', restartBackoffInitialMs: 10_000, restartBackoffMaxMs: 300_000 }

export interface AgentStartOptions extends AgentSettings {
  nodeName: string
  dataDir: string
  store: ObjectStore
  submitter: Submitter
  /** What the peer says of its host in its Node (addresses, allocatable); null until known. */
  node: () => HostDescription | null
  /** Cluster DNS (`HOST:PORT`) the pods resolve through; none when this peer serves none. */
  dnsServers?: string[]
  log?: (line: string) => void
}

async function dockerEngineAnswers(): Promise<boolean> {
  const host = process.env.DOCKER_HOST
  if (host === undefined || host === '') {
    const socket = '/var/run/docker.sock'
    if (!(await access(socket).then(() => true, () => false))) return false
  }
  const probe = new DockerRuntime({ nodeName: 'probe', stateDir: '' })
  try {
    return await Promise.race([probe.version().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), enginePingTimeoutMs).unref())])
  } catch {
    return false
  } finally {
    await probe.close().catch(() => {})
  }
}

/** The runtime `choice` names, or null for `none`. */
export async function createRuntime(choice: RuntimeChoice, nodeName: string, dataDir: string, log?: (line: string) => void): Promise<ContainerRuntime | null> {
  if (choice === 'none') return null
  const stateDir = join(dataDir, 'runtime')
  if (choice === 'process' || (choice === 'auto' && !(await dockerEngineAnswers()))) return new ProcessRuntime({ nodeName, stateDir: join(stateDir, 'process'), ...(log === undefined ? {} : { log }) })
  const docker = new DockerRuntime({ nodeName, stateDir: join(stateDir, 'docker'), ...(log === undefined ? {} : { log }) })
  try {
    await docker.version()
  } catch (err) {
    throw new RuntimeUnavailableError(`--runtime docker: no engine answers at ${process.env.DOCKER_HOST ?? '/var/run/docker.sock'}: ${(err as Error).message}`)
  }
  return docker
}

export interface StartedAgent {
  agent: Agent
  runtime: ContainerRuntime
  /** `docker://4.3.1`, `process://v20.20.2`. */
  version: string
  stop(): Promise<void>
}

export async function startAgent(o: AgentStartOptions): Promise<StartedAgent | null> {
  const log = o.log ?? ((line: string) => console.error(`shoal: ${line}`))
  const runtime = await createRuntime(o.runtime, o.nodeName, o.dataDir, log)
  if (runtime === null) return null
  const probes = new AgentProbes({ runtime, log })
  const agent = new Agent({
    nodeName: o.nodeName,
    store: o.store,
    submitter: o.submitter,
    runtime,
    podsDir: join(o.dataDir, 'pods'),
    hostIp: () => o.node()?.status.addresses.find((a) => a.type === 'InternalIP')?.address ?? '127.0.0.1',
    nodeAllocatable: () => o.node()?.status.allocatable ?? {},
    restartBackoff: { initialMs: o.restartBackoffInitialMs, maxMs: o.restartBackoffMaxMs },
    sandbox: { dnsServers: o.dnsServers ?? [], clusterDomain: 'cluster.local' },
    probes,
    log,
  })
  probes.event = (pod, type, reason, message) => void agent.events.record(pod, type, reason, message)
  const version = await runtime.version()
  agent.start()
  return {
    agent,
    runtime,
    version,
    stop: async () => {
      await agent.stop()
      await runtime.close()
    },
  }
}
