// shoal members / shoal leave: ask a peer's API (the local one by default).
import type { ClusterView } from '../http-api.js'
import { parse } from './args.js'
import { apiRequest, errorMessage, resolveTarget, type TargetFlags } from './client.js'

const targetOptions = { kubeconfig: { type: 'string' }, 'data-dir': { type: 'string' }, context: { type: 'string' } } as const

async function call(flags: TargetFlags, method: string, path: string): Promise<unknown> {
  const target = await resolveTarget(flags)
  const response = await apiRequest(target, method, path, { timeoutMs: 20_000 })
  if (response.status >= 400) throw new Error(errorMessage(response))
  return JSON.parse(response.text) as unknown
}

function age(ms: number | null): string {
  if (ms === null) return '-'
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`
}

export async function members(args: string[]): Promise<number> {
  const { values } = parse(args, { ...targetOptions, output: { type: 'string', short: 'o' } })
  const view = (await call(values, 'GET', '/shoal/v1/cluster')) as ClusterView
  if (values.output === 'json') {
    console.log(JSON.stringify(view, null, 2))
    return 0
  }
  console.log(`cluster ${view.clusterId}  leader ${view.peers.find((p) => p.peerId === view.leaderId)?.name ?? 'none'}  term ${view.term}  commit ${view.commitIndex}`)
  const rows = [['NAME', 'PEER ID', 'ROLE', 'GOSSIP', 'LAST SEEN', 'ADDRESS']]
  for (const p of view.peers) rows.push([p.name, p.peerId, p.raftRole, p.gossipState, age(p.lastHeartbeatAgeMs), p.addresses[0] ?? '-'])
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd())
  return 0
}

export async function leave(args: string[]): Promise<number> {
  const { values } = parse(args, targetOptions)
  await call(values, 'POST', '/shoal/v1/leave')
  console.log('the peer left the cluster and is shutting down')
  return 0
}
