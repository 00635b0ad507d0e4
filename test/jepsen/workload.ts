// The workload: a few clients that, until a deadline, create, scale or update,
// delete and read a small fixed set of RCs, bare pods and services through
// random peers, recording every call in the history. Each write sets the
// object's `jepsen/value` annotation to a value no other write uses (and an
// RC's replicas with it), so a read names exactly the write it saw. Reads ask
// for `?linearizable=true` (a ReadIndex round before answering).
import type { JepsenCluster, JepsenPeer, ApiAnswer } from './cluster.js'
import type { HistoryWriter, ObjectKind, OperationKind, OperationRecord, Outcome } from './history.js'
import { Random } from './random.js'

export const valueAnnotation = 'jepsen/value'

export interface WorkloadOptions {
  /** Distinguishes this round's pods and objects from any other's (pod env JEPSEN_RUN, labels). */
  runId: string
  clients: number
  rcs: number
  pods: number
  services: number
  /** Replicas of an RC are drawn from 0..maxReplicas. */
  maxReplicas: number
  /** Per call: the API answers 504 after 5 s without a quorum, so this is a little longer. */
  requestTimeoutMs: number
  /** Pause between one client's calls, drawn from [min, max]. */
  thinkMs: [number, number]
}

export const defaultWorkload: Omit<WorkloadOptions, 'runId'> = { clients: 4, rcs: 3, pods: 3, services: 2, maxReplicas: 2, requestTimeoutMs: 7000, thinkMs: [30, 150] }

const resourcePath: Record<ObjectKind, string> = { rc: 'replicationcontrollers', pod: 'pods', svc: 'services' }

export function objectPath(kind: ObjectKind, name?: string): string {
  return `/api/v1/namespaces/default/${resourcePath[kind]}${name === undefined ? '' : `/${name}`}`
}

/** The container every pod of the round runs: a sleeping process that says which round and which pod it belongs to. */
export function podContainer(runId: string): Record<string, unknown> {
  return {
    name: 'c',
    image: 'sleep',
    args: ['100000'],
    env: [
      { name: 'JEPSEN_RUN', value: runId },
      { name: 'JEPSEN_POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
    ],
  }
}

/** Bare pods tolerate unreachable and not-ready nodes forever: the leader never evicts them, so only the workload changes them. */
const neverEvicted = ['node.kubernetes.io/unreachable', 'node.kubernetes.io/not-ready'].map((key) => ({ key, operator: 'Exists', effect: 'NoExecute' }))

function createBody(kind: ObjectKind, name: string, token: string, replicas: number, options: WorkloadOptions): unknown {
  const metadata = { name, annotations: { [valueAnnotation]: token } }
  switch (kind) {
    case 'rc': {
      const labels = { app: name, jepsen: options.runId }
      const template = { metadata: { labels }, spec: { terminationGracePeriodSeconds: 1, containers: [podContainer(options.runId)] } }
      return { apiVersion: 'v1', kind: 'ReplicationController', metadata, spec: { replicas, selector: labels, template } }
    }
    case 'pod':
      return { apiVersion: 'v1', kind: 'Pod', metadata: { ...metadata, labels: { 'jepsen-bare': options.runId } }, spec: { terminationGracePeriodSeconds: 1, tolerations: neverEvicted, containers: [podContainer(options.runId)] } }
    case 'svc': {
      const target = `rc-${Number(name.split('-')[1] ?? 0) % Math.max(1, options.rcs)}`
      return { apiVersion: 'v1', kind: 'Service', metadata, spec: { selector: { app: target, jepsen: options.runId }, ports: [{ port: 80, targetPort: 8080 }] } }
    }
  }
}

/** The register value of an object as the checker sees it: the annotation, and for an RC its replicas. */
export function registerValue(kind: ObjectKind, object: { metadata?: { annotations?: Record<string, string> }; spec?: { replicas?: number } }): string {
  const token = object.metadata?.annotations?.[valueAnnotation] ?? '?'
  return kind === 'rc' ? `${token}|${object.spec?.replicas ?? 1}` : token
}

export function classify(kind: OperationKind, answer: ApiAnswer): Outcome {
  if (answer.status >= 200 && answer.status < 300) return 'ok'
  if (kind === 'read' && answer.status === 404) return 'ok'
  // 4xx: refused before proposing (or rejected on apply, as a stale resourceVersion is): no effect.
  if (answer.status >= 400 && answer.status < 500) return 'fail'
  return 'info'
}

export class Workload {
  private nextId = 0
  readonly names: { kind: ObjectKind; name: string }[]

  constructor(
    private readonly cluster: JepsenCluster,
    private readonly history: HistoryWriter,
    private readonly options: WorkloadOptions,
    private readonly seed: number,
  ) {
    const make = (kind: ObjectKind, count: number) => Array.from({ length: count }, (_, k) => ({ kind, name: `${kind}-${k}` }))
    this.names = [...make('rc', options.rcs), ...make('pod', options.pods), ...make('svc', options.services)]
  }

  /** Runs every client until `untilMs` (history clock); calls in flight then are awaited (each is bounded by its timeout). */
  async run(untilMs: number): Promise<void> {
    await Promise.all(Array.from({ length: this.options.clients }, (_, client) => this.client(client, untilMs)))
  }

  private async client(client: number, untilMs: number): Promise<void> {
    const random = new Random(this.seed * 1009 + client)
    while (this.history.now() < untilMs) {
      const target = random.pick(this.names)
      const peer = random.pick(this.cluster.peers)
      const roll = random.next()
      const kind: OperationKind = roll < 0.4 ? 'read' : roll < 0.7 ? 'update' : roll < 0.88 ? 'create' : 'delete'
      await this.call(client, peer, kind, target.kind, target.name, random.int(0, this.options.maxReplicas))
      await this.history.drainIfBehind()
      await new Promise((r) => setTimeout(r, random.int(this.options.thinkMs[0], this.options.thinkMs[1])))
    }
  }

  /** One call, recorded; also used for the final reads. */
  async call(client: number, peer: JepsenPeer, kind: OperationKind, object: ObjectKind, name: string, replicas = 1): Promise<OperationRecord> {
    const id = this.nextId++
    const token = `w${id}`
    const request = this.requestFor(kind, object, name, token, replicas)
    const invokeMs = this.history.now()
    const answer = await this.cluster.request(peer, request.method, request.path, request.body, this.options.requestTimeoutMs)
    const completeMs = this.history.now()
    const outcome = classify(kind, answer)
    const record: OperationRecord = { type: 'op', id, client, peer: peer.name, kind, object, name, invokeMs, completeMs, outcome, status: answer.status, request }
    if (kind === 'create' || kind === 'update') record.value = object === 'rc' ? `${token}|${replicas}` : token
    if (outcome === 'ok' && kind === 'read') record.value = answer.status === 404 ? null : registerValue(object, JSON.parse(answer.text) as Parameters<typeof registerValue>[1])
    if (outcome === 'ok' && answer.status !== 404 && kind !== 'delete') {
      const rv = (JSON.parse(answer.text) as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion
      if (rv !== undefined) record.resourceVersion = rv
    }
    if (outcome !== 'ok') record.error = answer.error ?? answer.text.slice(0, 300)
    this.history.add(record)
    return record
  }

  private requestFor(kind: OperationKind, object: ObjectKind, name: string, token: string, replicas: number): OperationRecord['request'] {
    switch (kind) {
      case 'read':
        return { method: 'GET', path: `${objectPath(object, name)}?linearizable=true` }
      case 'create':
        return { method: 'POST', path: objectPath(object), body: createBody(object, name, token, replicas, this.options) }
      case 'update': {
        const body = { metadata: { annotations: { [valueAnnotation]: token } }, ...(object === 'rc' ? { spec: { replicas } } : {}) }
        return { method: 'PATCH', path: objectPath(object, name), body }
      }
      case 'delete':
        return { method: 'DELETE', path: objectPath(object, name) }
    }
  }
}
