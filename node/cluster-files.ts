// What a peer keeps in its data directory besides the Raft log, and the join
// token that carries a cluster's secret and seed addresses to a new host (one
// copy-pasteable string, like Docker Swarm's SWMTKN).
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { checkClusterSecret } from '../net/identity.js'

/** The cluster this data directory belongs to; written once, at bootstrap or join. */
export interface ClusterIdentity {
  clusterId: string
  secret: string
  name: string
}

/** Where the local peer can be reached, rewritten at each start (for `shoal members`, `leave`). */
export interface PeerRuntimeInfo {
  peerId: string
  apiAddress: string
  listen: string[]
  pid: number
}

export class JoinTokenError extends Error {
  override readonly name = 'JoinTokenError'
}

const tokenPrefix = 'SHOAL1-'

export interface JoinToken {
  clusterId: string
  secret: string
  /** Multiaddrs (with /p2p/<id>) of peers to contact first. */
  seeds: string[]
}

export function encodeJoinToken(token: JoinToken): string {
  return tokenPrefix + Buffer.from(JSON.stringify([token.clusterId, token.secret, token.seeds])).toString('base64url')
}

export function decodeJoinToken(text: string): JoinToken {
  const trimmed = text.trim()
  if (!trimmed.startsWith(tokenPrefix)) throw new JoinTokenError(`a join token starts with ${tokenPrefix}; got "${trimmed.slice(0, 12)}..."`)
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(trimmed.slice(tokenPrefix.length), 'base64url').toString('utf8'))
  } catch {
    throw new JoinTokenError('the join token is damaged (it does not decode); copy it again from the first peer')
  }
  if (!Array.isArray(parsed) || parsed.length !== 3 || typeof parsed[0] !== 'string' || typeof parsed[1] !== 'string' || !Array.isArray(parsed[2])) {
    throw new JoinTokenError('the join token is damaged (wrong shape); copy it again from the first peer')
  }
  const seeds = (parsed[2] as unknown[]).filter((s): s is string => typeof s === 'string' && s.includes('/p2p/'))
  if (seeds.length === 0) throw new JoinTokenError('the join token names no seed address')
  try {
    return { clusterId: parsed[0], secret: checkClusterSecret(parsed[1]), seeds }
  } catch (err) {
    throw new JoinTokenError(`the join token is damaged: ${(err as Error).message}`)
  }
}

const identityFile = 'cluster.json'
const runtimeFile = 'peer.json'

/** A JSON file of ours, or null if it does not exist yet. */
async function readJsonFile<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

export function readClusterIdentity(dataDir: string): Promise<ClusterIdentity | null> {
  return readJsonFile(join(dataDir, identityFile))
}

export async function writeClusterIdentity(dataDir: string, identity: ClusterIdentity): Promise<void> {
  await writeAtomically(join(dataDir, identityFile), JSON.stringify(identity, null, 2), 0o600)
}

export function readRuntimeInfo(dataDir: string): Promise<PeerRuntimeInfo | null> {
  return readJsonFile(join(dataDir, runtimeFile))
}

export async function writeRuntimeInfo(dataDir: string, info: PeerRuntimeInfo): Promise<void> {
  await writeAtomically(join(dataDir, runtimeFile), JSON.stringify(info, null, 2), 0o644)
}

async function writeAtomically(path: string, content: string, mode: number): Promise<void> {
  const temp = `${path}.tmp`
  await writeFile(temp, content, { mode })
  await rename(temp, path)
}
