// What peers ask of each other over /shoal/rpc/1. Any peer answers; the
// ones that need the leader (join, leave, proposals) are forwarded to it, so
// a user or a new host can talk to whichever peer it knows.
import type { RaftDriver } from '../consensus/driver.js'
import { NotLeaderError } from '../consensus/errors.js'
import type { RpcEndpoint, RpcHandler } from '../net/rpc.js'
import { encodeCommand, type ClusterRegistry, type RegistryCommand } from './registry.js'

export interface JoinRequest {
  peerId: string
  name: string
  addresses: string[]
  apiAddress: string | null
  /** When this peer process started, by its own clock: a registration from before it left is stale. */
  startedAtMs: number
}

export interface JoinAnswer {
  clusterId: string
  leaderId: string
  /** Everyone the joiner should know how to reach. */
  peers: { peerId: string; addresses: string[] }[]
}

export class NameTakenError extends Error {
  override readonly name = 'NameTakenError'

  constructor(name: string, owner: string) {
    super(`the name ${name} belongs to peer ${owner}; choose another with --name`)
  }
}

export class InvalidRequestError extends Error {
  override readonly name = 'InvalidRequestError'
}

export interface PeerRpcContext {
  clusterId: string
  driver: RaftDriver
  registry: ClusterRegistry
  rpc: () => RpcEndpoint
  /** Wall-clock milliseconds, for join and leave times. */
  now: () => number
}

/** Run `locally` on the leader, or forward the same call to the leader. */
async function onLeader<T>(ctx: PeerRpcContext, method: string, request: unknown, locally: () => Promise<T>): Promise<T> {
  const node = ctx.driver.node
  if (node.role === 'leader') return locally()
  if (node.leaderId === null) throw new NotLeaderError(null)
  return ctx.rpc().call<T>(node.leaderId, method, request)
}

export function proposeCommand(ctx: PeerRpcContext, command: RegistryCommand): Promise<number> {
  return onLeader(ctx, 'propose', command, () => ctx.driver.propose(encodeCommand(command)))
}

function checkJoinRequest(value: unknown): JoinRequest {
  const r = value as Partial<JoinRequest> | null
  const valid =
    r !== null &&
    typeof r.peerId === 'string' &&
    typeof r.name === 'string' &&
    /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/.test(r.name) &&
    Array.isArray(r.addresses) &&
    r.addresses.every((a) => typeof a === 'string') &&
    (r.apiAddress === null || typeof r.apiAddress === 'string') &&
    typeof r.startedAtMs === 'number'
  if (!valid) throw new InvalidRequestError('a join request needs peerId, a DNS-1123 name, addresses and apiAddress')
  return r as JoinRequest
}

export function peerRpcHandlers(ctx: PeerRpcContext): Record<string, RpcHandler> {
  return {
    join: async (request) => {
      const join = checkJoinRequest(request)
      return onLeader(ctx, 'join', join, async (): Promise<JoinAnswer> => {
        const owner = ctx.registry.peerByName(join.name)
        if (owner !== undefined && owner.peerId !== join.peerId) throw new NameTakenError(join.name, owner.peerId)
        const known = ctx.registry.peers.get(join.peerId)
        // Sent before the peer left (both times by its own clock): it would undo the departure.
        if (known?.leftAtMs != null && join.startedAtMs <= known.leftAtMs) throw new InvalidRequestError(`peer ${join.name} left the cluster after sending this registration`)
        const { startedAtMs: _started, ...record } = join
        await ctx.driver.propose(encodeCommand({ op: 'register', peer: { ...record, joinedAtMs: known?.joinedAtMs ?? ctx.now() } }))
        return {
          clusterId: ctx.clusterId,
          leaderId: ctx.driver.node.id,
          peers: ctx.registry.activePeers().map((p) => ({ peerId: p.peerId, addresses: p.addresses })),
        }
      })
    },
    leave: async (request) => {
      const { peerId, atMs } = (request ?? {}) as { peerId?: unknown; atMs?: unknown }
      if (typeof peerId !== 'string' || typeof atMs !== 'number') throw new InvalidRequestError('a leave request names the peerId and the time, by the leaving peer\'s clock')
      return onLeader(ctx, 'leave', { peerId, atMs }, () => ctx.driver.propose(encodeCommand({ op: 'left', peerId, atMs })))
    },
    propose: async (request) => {
      const command = request as RegistryCommand
      if (command === null || typeof command !== 'object' || !['register', 'left', 'set', 'delete'].includes(command.op)) {
        throw new InvalidRequestError('not a registry command')
      }
      return proposeCommand(ctx, command)
    },
  }
}
