// A stand-in for the agent that will run pods (issue 6): it only reports them.
// Every 200 ms it lists the pods and marks each one bound to one of its Nodes
// Running and Ready through the status subresource, as an agent would after
// starting the containers. It can also keep simulated Nodes (no peer behind
// them, so node lifecycle leaves them alone) in existence and Ready. It talks
// to the API like any client, through whichever of its targets answers.
import { Agent } from 'node:https'
import { apiRequest, errorMessage, type ApiResponse, type ApiTarget } from '../../node/cli/client.js'

export interface TestAgentOptions {
  /** API targets, tried in turn: a peer that stops answering is skipped. */
  targets: ApiTarget[]
  /** The Nodes whose pods this agent runs. */
  nodeNames: Iterable<string>
  /** Create these Nodes and keep them Ready (simulated Nodes); false for the peers' own Nodes. */
  simulateNodes?: boolean
  pollEveryMs?: number
}

/** Status writes per poll; the rest wait for the next one. */
export const statusWritesPerPollMax = 500
/** Connections kept to the API. */
const socketsMax = 16
const requestTimeoutMs = 3000

interface PodJson {
  metadata: { name: string; namespace: string; resourceVersion: string; uid: string }
  spec: { nodeName?: string; containers: { name: string; image?: string }[] }
  status?: { phase?: string }
}

interface NodeJson {
  metadata: { name: string; resourceVersion: string }
  status?: { conditions?: { type: string; status: string }[]; addresses?: { type: string; address: string }[] }
}

const simulatedCapacity = { cpu: '4', memory: '8Gi', pods: '110' }

export class TestAgent {
  private readonly nodes: Set<string>
  private readonly agent = new Agent({ keepAlive: true, maxSockets: socketsMax })
  private targetIndex = 0
  private ipCounter = 0
  private nodeCounter = 0
  private timer: ReturnType<typeof setTimeout> | null = null
  private polling: Promise<void> = Promise.resolve()
  private stopped = false
  /** Pods this agent has marked Running (namespace/name). */
  readonly marked = new Set<string>()
  /** The last error a poll hit (a peer down, a conflict), for test failure messages. */
  lastError = ''

  constructor(private readonly options: TestAgentOptions) {
    this.nodes = new Set(options.nodeNames)
  }

  start(): this {
    const tick = (): void => {
      if (this.stopped) return
      this.polling = this.poll().catch((err: Error) => {
        this.lastError = err.message
        this.targetIndex++
      })
      void this.polling.then(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.options.pollEveryMs ?? 200)
      })
    }
    tick()
    return this
  }

  /** A Node (back) in this agent's care. */
  addNode(name: string): void {
    this.nodes.add(name)
  }

  /** The Node's agent died with it: its pods are no longer reported. */
  forgetNode(name: string): void {
    this.nodes.delete(name)
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    await this.polling
    this.agent.destroy()
  }

  private async request(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const targets = this.options.targets
    const target = targets[this.targetIndex % targets.length]!
    return apiRequest(target, method, path, { ...(body === undefined ? {} : { body: JSON.stringify(body) }), timeoutMs: requestTimeoutMs, agent: this.agent })
  }

  private async list<T>(path: string): Promise<T[]> {
    const response = await this.request('GET', path)
    if (response.status !== 200) throw new Error(`GET ${path}: HTTP ${response.status} ${errorMessage(response)}`)
    return (JSON.parse(response.text) as { items: T[] }).items
  }

  private async poll(): Promise<void> {
    const nodes = await this.list<NodeJson>('/api/v1/nodes')
    if (this.options.simulateNodes === true) await this.keepNodesReady(nodes)
    const hostIps = new Map(nodes.map((n) => [n.metadata.name, n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? '127.0.0.1']))
    const pods = await this.list<PodJson>('/api/v1/pods')
    const due = pods.filter((p) => p.spec.nodeName !== undefined && this.nodes.has(p.spec.nodeName) && (p.status?.phase ?? 'Pending') === 'Pending').slice(0, statusWritesPerPollMax)
    const results = await Promise.all(due.map((p) => this.markRunning(p, hostIps.get(p.spec.nodeName!) ?? '127.0.0.1')))
    const failed = results.find((r) => r !== null)
    if (failed !== undefined && failed !== null) this.lastError = failed
  }

  /** Null when written; otherwise why not (a conflict or a pod deleted meanwhile: the next poll looks again). */
  private async markRunning(pod: PodJson, hostIp: string): Promise<string | null> {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    const n = ++this.ipCounter
    const podIp = `10.${1 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`
    const condition = (type: string) => ({ type, status: 'True', lastTransitionTime: now })
    const status = {
      phase: 'Running',
      conditions: [condition('PodScheduled'), condition('Initialized'), condition('ContainersReady'), condition('Ready')],
      hostIP: hostIp,
      hostIPs: [{ ip: hostIp }],
      podIP: podIp,
      podIPs: [{ ip: podIp }],
      startTime: now,
      containerStatuses: pod.spec.containers.map((c) => ({ name: c.name, image: c.image ?? '', imageID: '', ready: true, started: true, restartCount: 0, state: { running: { startedAt: now } } })),
    }
    const { namespace, name } = pod.metadata
    const response = await this.request('PUT', `/api/v1/namespaces/${namespace}/pods/${name}/status`, { ...pod, status })
    if (response.status !== 200) return `PUT ${namespace}/${name} status: HTTP ${response.status} ${errorMessage(response)}`
    this.marked.add(`${namespace}/${name}`)
    return null
  }

  private async keepNodesReady(nodes: NodeJson[]): Promise<void> {
    const byName = new Map(nodes.map((n) => [n.metadata.name, n]))
    for (const name of this.nodes) {
      let node = byName.get(name)
      if (node === undefined) {
        const created = await this.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name, 'shoal.io/simulated': 'true' } } })
        if (created.status !== 201) throw new Error(`POST node ${name}: HTTP ${created.status} ${errorMessage(created)}`)
        node = JSON.parse(created.text) as NodeJson
      }
      if (node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True') continue
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
      const status = {
        capacity: simulatedCapacity,
        allocatable: simulatedCapacity,
        addresses: [{ type: 'InternalIP', address: `192.168.${(this.nodeCounter >> 8) & 255}.${++this.nodeCounter & 255}` }, { type: 'Hostname', address: name }],
        conditions: [{ type: 'Ready', status: 'True', reason: 'SimulatedNodeReady', message: 'simulated by the test agent', lastHeartbeatTime: now, lastTransitionTime: now }],
      }
      const written = await this.request('PUT', `/api/v1/nodes/${name}/status`, { ...node, status })
      if (written.status !== 200) throw new Error(`PUT node ${name} status: HTTP ${written.status} ${errorMessage(written)}`)
    }
  }
}
