// Peers as separate processes on loopback, started with `shoal up`, joined
// through one seed, killed with SIGKILL.
import { spawnSync } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { decodeJoinToken, encodeJoinToken } from '../../node/cluster-files.js'
import { generateClusterSecret } from '../../net/identity.js'
import { ProcessCluster, leaderName, until, type PeerProcess } from './process-cluster.js'

let cluster: ProcessCluster | null = null
afterEach(async () => {
  await cluster?.destroy()
  cluster = null
})

async function startCluster(names: string[]): Promise<{ c: ProcessCluster; peers: PeerProcess[] }> {
  const c = await ProcessCluster.create()
  cluster = c
  const peers = await Promise.all(names.map((n) => c.add(n)))
  c.start(peers[0]!)
  const token = await c.tokenOf(peers[0]!)
  for (const p of peers.slice(1)) c.start(p, ['--join', token])
  return { c, peers }
}

function newLeaderPeer(peers: PeerProcess[], name: string): PeerProcess {
  return peers.find((p) => p.name === name)!
}

/** Everyone is a voter (or the leader) and gossip sees everyone alive, as seen from `from`. */
async function allVotersAlive(c: ProcessCluster, from: PeerProcess, count: number): Promise<void> {
  await until(async () => {
    const view = await c.view(from)
    const voters = view.peers.filter((p) => p.raftRole === 'leader' || p.raftRole === 'voter')
    return view.peers.length === count && voters.length === count && view.peers.every((p) => p.gossipState === 'alive')
  }, 30_000, `${count} voters, all alive`)
}

describe('a cluster of peer processes', () => {
  it('3 peers join through one seed, survive the leader being SIGKILLed, and the old leader rejoins with nothing lost', async () => {
    const { c, peers } = await startCluster(['p1', 'p2', 'p3'])
    await allVotersAlive(c, peers[0]!, 3)
    for (let k = 0; k < 10; k++) expect((await c.setSetting(peers[k % 3]!, `before${k}`, String(k))).status).toBe(200)
    const view = await c.view(peers[1]!)
    const oldLeader = peers.find((p) => p.name === leaderName(view))!
    const oldLeaderId = view.leaderId
    await c.kill(oldLeader)
    const survivors = peers.filter((p) => p !== oldLeader)
    const newLeader = await until(async () => {
      const v = await c.view(survivors[0]!)
      const name = leaderName(v)
      return name !== undefined && name !== oldLeader.name ? name : undefined
    }, 10_000, 'a new leader')
    expect(survivors.map((p) => p.name)).toContain(newLeader)
    for (let k = 0; k < 10; k++) expect((await c.setSetting(survivors[k % 2]!, `after${k}`, String(k))).status).toBe(200)
    c.start(oldLeader)
    await until(async () => leaderName(await c.view(oldLeader)) === newLeader, 20_000, 'the old leader to follow the new one')
    // Same key, same PeerId: it rejoined as itself, not as a newcomer.
    expect((await c.view(oldLeader)).self).toBe(oldLeaderId)
    expect((await c.view(newLeaderPeer(peers, newLeader))).peers.map((p) => p.name).sort()).toEqual(['p1', 'p2', 'p3'])
    for (let k = 0; k < 10; k++) {
      expect(await c.getSetting(oldLeader, `before${k}`, true)).toBe(String(k))
      expect(await c.getSetting(oldLeader, `after${k}`, true)).toBe(String(k))
    }
  })

  it('5 peers end up with 5 voters, and a leaving peer is removed cleanly', async () => {
    const { c, peers } = await startCluster(['q1', 'q2', 'q3', 'q4', 'q5'])
    await allVotersAlive(c, peers[0]!, 5)
    const leaver = peers[4]!
    const left = spawnSync(process.execPath, ['--import', 'tsx', new URL('../../node/cli/main.ts', import.meta.url).pathname, 'leave', '--data-dir', leaver.dataDir], { encoding: 'utf8' })
    expect(left.status, left.stderr).toBe(0)
    await until(() => leaver.child?.exitCode !== null, 15_000, 'the leaving peer to exit')
    await until(async () => {
      const view = await c.view(peers[0]!)
      return !view.peers.some((p) => p.name === leaver.name) && view.peers.filter((p) => p.raftRole === 'leader' || p.raftRole === 'voter').length >= 3
    }, 20_000, 'the leaver to be gone')
  })

  it('replaces a voter dead beyond the grace period with a caught-up learner, and SIGTERM with --leave-on-terminate leaves', async () => {
    const c = await ProcessCluster.create()
    cluster = c
    const peers = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((n) => c.add(n)))
    const grace = ['--dead-voter-grace-ms', '1500', '--voters', '3']
    c.start(peers[0]!, grace)
    const token = await c.tokenOf(peers[0]!)
    for (const p of peers.slice(1)) c.start(p, ['--join', token, ...grace])
    const roles = async (): Promise<Record<string, string>> => Object.fromEntries((await c.view(peers[0]!)).peers.map((p) => [p.name, p.raftRole]))
    await until(async () => {
      const counts = Object.values(await roles()).sort().join(',')
      return counts === 'leader,learner,voter,voter' ? true : undefined
    }, 30_000, 'a leader, two voters and a learner')
    const r = await roles()
    const victim = peers.find((p) => r[p.name] === 'voter')!
    const learner = peers.find((p) => r[p.name] === 'learner')!
    await c.kill(victim)
    await until(async () => {
      const now = await roles()
      return now[learner.name] === 'voter' && now[victim.name] === 'none' ? true : undefined
    }, 20_000, `${learner.name} to replace ${victim.name}`)
    // SIGTERM with --leave-on-terminate: the peer leaves before it stops.
    const leaving = await c.add('r5')
    c.start(leaving, ['--join', token, '--leave-on-terminate', ...grace])
    await until(async () => (await c.view(peers[0]!)).peers.some((p) => p.name === 'r5'), 20_000, 'r5 to join')
    await c.kill(leaving, 'SIGTERM')
    expect(leaving.output, leaving.output).toContain('left the cluster')
    await until(async () => !(await c.view(peers[0]!)).peers.some((p) => p.name === 'r5'), 10_000, 'r5 to be gone')
  })

  it('a peer without the cluster secret cannot join, and nothing about the cluster changes', async () => {
    const { c, peers } = await startCluster(['s1', 's2', 's3'])
    await allVotersAlive(c, peers[0]!, 3)
    const before = await c.view(peers[0]!)
    const real = decodeJoinToken(await c.tokenOf(peers[0]!))
    const forged = encodeJoinToken({ ...real, secret: generateClusterSecret() })
    const stranger = await c.add('stranger')
    c.start(stranger, ['--join', forged])
    await new Promise((r) => setTimeout(r, 4000))
    expect(stranger.output).not.toContain('registered with the cluster')
    const after = await c.view(peers[0]!)
    expect(after.peers.map((p) => p.peerId)).toEqual(before.peers.map((p) => p.peerId))
    expect(after.leaderId).toBe(before.leaderId)
    // An address alone cannot bring a new peer in: the secret travels only in the token.
    const bare = await c.add('bare')
    c.start(bare, ['--join', real.seeds[0]!])
    await until(() => bare.child?.exitCode !== null && bare.child?.exitCode !== undefined ? true : undefined, 15_000, 'the bare peer to exit')
    expect(bare.output).toContain('a new peer needs the join token')
  })
})
