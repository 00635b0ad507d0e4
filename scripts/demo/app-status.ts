// What the demo shows while it waits and afterwards: how many replicas of
// each controller are ready, where the pods run, and whether the page answers
// through the NodePort.
import { request } from 'node:http'
import type { LocalPeers } from './local-peers.js'

interface ReplicationControllerJson {
  metadata: { name?: string }
  spec?: { replicas?: number }
  status?: { readyReplicas?: number }
}

interface PodJson {
  metadata: { name?: string; deletionTimestamp?: string }
  spec?: { nodeName?: string }
  status?: { phase?: string; conditions?: { type: string; status: string }[] }
}

export interface AppStatus {
  /** `frontend 2/3`, in name order. */
  controllers: { name: string; ready: number; desired: number }[]
  pods: { name: string; node: string; ready: boolean; terminating: boolean }[]
}

export async function appStatus(peers: LocalPeers, namespace = 'default'): Promise<AppStatus | undefined> {
  const rcs = await peers.get<{ items: ReplicationControllerJson[] }>(`/api/v1/namespaces/${namespace}/replicationcontrollers`)
  const pods = await peers.get<{ items: PodJson[] }>(`/api/v1/namespaces/${namespace}/pods`)
  if (rcs === undefined || pods === undefined) return undefined
  return {
    controllers: rcs.items
      .map((rc) => ({ name: rc.metadata.name ?? '?', ready: rc.status?.readyReplicas ?? 0, desired: rc.spec?.replicas ?? 0 }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    pods: pods.items
      .map((p) => ({
        name: p.metadata.name ?? '?',
        node: p.spec?.nodeName ?? '',
        terminating: p.metadata.deletionTimestamp !== undefined,
        ready: p.status?.phase === 'Running' && (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
  }
}

export function allReady(status: AppStatus): boolean {
  return status.controllers.length > 0 && status.controllers.every((c) => c.ready >= c.desired)
}

/** `frontend 2/3 · redis-master 1/1 · redis-slave 0/2` */
export function controllersLine(status: AppStatus): string {
  return status.controllers.map((c) => `${c.name} ${c.ready}/${c.desired}`).join(' · ')
}

/** `peer1: frontend-abcde redis-slave-fghij · peer2: ... · not scheduled: ...`, nodes in name order. */
export function placementLine(status: AppStatus): string {
  const byNode = new Map<string, string[]>()
  for (const pod of status.pods.filter((p) => !p.terminating)) {
    const node = pod.node === '' ? 'not scheduled' : pod.node
    byNode.set(node, [...(byNode.get(node) ?? []), pod.ready ? pod.name : `${pod.name} (not ready)`])
  }
  return [...byNode.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([node, names]) => `${node}: ${names.join(' ')}`).join(' · ')
}

export interface HttpAnswer {
  status: number
  body: string
}

/** One HTTP request to a local URL; rejects on a network error or after `timeoutMs`. */
export function httpCall(url: string, init: { method?: string; body?: string; timeoutMs?: number } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', agent: false, headers: init.body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.setTimeout(init.timeoutMs ?? 3000, () => req.destroy(new Error(`no answer from ${url} within ${init.timeoutMs ?? 3000} ms`)))
    req.on('error', reject)
    req.end(init.body)
  })
}
