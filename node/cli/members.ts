// shoal members / shoal leave: talk to the local peer's API (found through
// --data-dir) or any peer's (--api HOST:PORT).
import { readRuntimeInfo } from '../cluster-files.js'
import type { ClusterView } from '../http-api.js'
import { UsageError, parse } from './args.js'

async function apiBase(values: { 'data-dir'?: string | undefined; api?: string | undefined }): Promise<string> {
  if (values.api !== undefined) return values.api.startsWith('http') ? values.api : `http://${values.api}`
  const dir = values['data-dir']
  if (dir === undefined) throw new UsageError('name the peer with --data-dir DIR or --api HOST:PORT')
  const info = await readRuntimeInfo(dir)
  if (info === null) throw new UsageError(`no peer has run from ${dir} (no peer.json there)`)
  return `http://${info.apiAddress}`
}

async function call(base: string, method: string, path: string): Promise<unknown> {
  let response: Response
  try {
    response = await fetch(`${base}${path}`, { method })
  } catch {
    throw new Error(`cannot reach the peer at ${base}; is it running?`)
  }
  const body = (await response.json()) as { message?: string }
  if (!response.ok) throw new Error(body.message ?? `HTTP ${response.status}`)
  return body
}

function age(ms: number | null): string {
  if (ms === null) return '-'
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`
}

export async function members(args: string[]): Promise<number> {
  const { values } = parse(args, { 'data-dir': { type: 'string' }, api: { type: 'string' }, output: { type: 'string', short: 'o' } })
  const view = (await call(await apiBase(values), 'GET', '/shoal/v1/cluster')) as ClusterView
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
  const { values } = parse(args, { 'data-dir': { type: 'string' }, api: { type: 'string' } })
  await call(await apiBase(values), 'POST', '/shoal/v1/leave')
  console.log('the peer left the cluster and is shutting down')
  return 0
}
