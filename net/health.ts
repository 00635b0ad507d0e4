// The health report every peer publishes over gossip, and its codec: JSON,
// checked field by field, so a malformed or hostile report is dropped whole.
import { decodeJsonObject, isRecord } from './probe.js'

/** Reports larger than this are dropped unread. */
const maxHealthReportBytes = 16 * 1024

export interface Resources {
  cpuMillis: number
  memoryBytes: number
}

export interface PeerLoad {
  cpuPercent: number
  memoryUsedBytes: number
  loadAverage1m: number
}

export type RaftRole = 'leader' | 'voter' | 'learner' | 'none'

export interface PeerHealth {
  name: string
  peerId: string
  /** Multiaddr strings the peer can be dialled on. */
  addresses: string[]
  /** Where the peer serves the HTTP API, or null if it does not. */
  apiAddress: string | null
  capacity: Resources
  allocatable: Resources
  load: PeerLoad
  podCount: number
  runtime: string
  version: string
  raftRole: RaftRole
  /** The sender's wall clock at start-up: a restarted peer's reports outrank its earlier life's. */
  incarnation: number
  /** Increases with every report of one incarnation; older or repeated ones are ignored. */
  seq: number
}

/** What the caller supplies each round; the membership adds the ordering fields. */
export type LocalHealth = Omit<PeerHealth, 'incarnation' | 'seq'>

const textEncoder = new TextEncoder()

export function encodeHealth(health: PeerHealth): Uint8Array {
  return textEncoder.encode(JSON.stringify(health))
}

/** Parse and check a report from the network; null if it is not a well-formed PeerHealth. */
export function decodeHealth(bytes: Uint8Array): PeerHealth | null {
  const value = bytes.byteLength > maxHealthReportBytes ? null : decodeJsonObject(bytes)
  if (value === null) return null
  const { name, peerId, addresses, apiAddress, podCount, runtime, version, raftRole, incarnation, seq } = value
  const capacity = readResources(value['capacity'])
  const allocatable = readResources(value['allocatable'])
  const load = readLoad(value['load'])
  if (
    typeof name !== 'string' || typeof peerId !== 'string' || !isStringArray(addresses) ||
    (apiAddress !== null && typeof apiAddress !== 'string') || !isCount(podCount) ||
    typeof runtime !== 'string' || typeof version !== 'string' || !isRaftRole(raftRole) ||
    !isCount(incarnation) || !isCount(seq) || capacity === null || allocatable === null || load === null
  ) {
    return null
  }
  // Rebuilt field by field, so unknown fields from newer peers are dropped rather than passed on.
  return { name, peerId, addresses, apiAddress, capacity, allocatable, load, podCount, runtime, version, raftRole, incarnation, seq }
}

function readResources(value: unknown): Resources | null {
  if (!isRecord(value)) return null
  const { cpuMillis, memoryBytes } = value
  return isCount(cpuMillis) && isCount(memoryBytes) ? { cpuMillis, memoryBytes } : null
}

function readLoad(value: unknown): PeerLoad | null {
  if (!isRecord(value)) return null
  const { cpuPercent, memoryUsedBytes, loadAverage1m } = value
  const valid = isFiniteNumber(cpuPercent) && isCount(memoryUsedBytes) && isFiniteNumber(loadAverage1m)
  return valid ? { cpuPercent, memoryUsedBytes, loadAverage1m } : null
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string')
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

function isCount(value: unknown): value is number {
  return isFiniteNumber(value) && value >= 0
}

function isRaftRole(value: unknown): value is RaftRole {
  return value === 'leader' || value === 'voter' || value === 'learner' || value === 'none'
}
