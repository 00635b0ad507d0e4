// MIT 6.5840 Raft lab, part 3B (log agreement), ported over the simulator.
import { describe, expect, it } from 'vitest'
import { LabConfig, electionTimeoutMs } from './harness.js'

const seeds = [1, 2, 3]

function randomString(cfg: LabConfig, length: number): string {
  let s = ''
  while (s.length < length) s += cfg.randomInt().toString(36)
  return s.slice(0, length)
}

describe.each(seeds)('lab 3B, seed %i', (seed) => {
  it('basic agreement', () => {
    const cfg = new LabConfig({ servers: 3, unreliable: false, snapshot: false, seed })
    for (let index = 1; index <= 3; index++) {
      expect(cfg.nCommitted(index).count, 'some have committed before Start()').toBe(0)
      expect(cfg.one(index * 100, 3, false)).toBe(index)
    }
  })

  it('RPC byte count: each command is sent to each peer once', () => {
    const servers = 3
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    cfg.one(99, servers, false)
    const bytes0 = cfg.bytesTotal()
    let sent = 0
    for (let index = 2; index < 12; index++) {
      const command = randomString(cfg, 5000)
      expect(cfg.one(command, servers, false)).toBe(index)
      sent += command.length
    }
    expect(cfg.bytesTotal() - bytes0).toBeLessThanOrEqual(servers * sent + 50_000)
  })

  it('progressive failure of followers', () => {
    const servers = 3
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    cfg.one(101, servers, false)
    const leader1 = cfg.checkOneLeader()
    cfg.disconnect((leader1 + 1) % servers)
    cfg.one(102, servers - 1, false)
    cfg.sleep(electionTimeoutMs)
    cfg.one(103, servers - 1, false)
    const leader2 = cfg.checkOneLeader()
    cfg.disconnect((leader2 + 1) % servers)
    cfg.disconnect((leader2 + 2) % servers)
    const { index, ok } = cfg.start(leader2, 104)
    expect(ok, 'leader rejected Start()').toBe(true)
    expect(index).toBe(4)
    cfg.sleep(2 * electionTimeoutMs)
    expect(cfg.nCommitted(index).count, 'committed without a majority').toBe(0)
  })

  it('failure of leaders', () => {
    const servers = 3
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    cfg.one(101, servers, false)
    const leader1 = cfg.checkOneLeader()
    cfg.disconnect(leader1)
    cfg.one(102, servers - 1, false)
    cfg.sleep(electionTimeoutMs)
    cfg.one(103, servers - 1, false)
    const leader2 = cfg.checkOneLeader()
    cfg.disconnect(leader2)
    for (let i = 0; i < servers; i++) cfg.start(i, 104)
    cfg.sleep(2 * electionTimeoutMs)
    expect(cfg.nCommitted(4).count, 'committed without a majority').toBe(0)
  })

  it('agreement after follower reconnects', () => {
    const servers = 3
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    cfg.one(101, servers, false)
    const leader = cfg.checkOneLeader()
    cfg.disconnect((leader + 1) % servers)
    cfg.one(102, servers - 1, false)
    cfg.one(103, servers - 1, false)
    cfg.sleep(electionTimeoutMs)
    cfg.one(104, servers - 1, false)
    cfg.one(105, servers - 1, false)
    cfg.connect((leader + 1) % servers)
    cfg.one(106, servers, true)
    cfg.sleep(electionTimeoutMs)
    cfg.one(107, servers, true)
  })

  it('no agreement if too many followers disconnect', () => {
    const servers = 5
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    cfg.one(10, servers, false)
    const leader = cfg.checkOneLeader()
    for (const k of [1, 2, 3]) cfg.disconnect((leader + k) % servers)
    const first = cfg.start(leader, 20)
    expect(first.ok, 'leader rejected Start()').toBe(true)
    expect(first.index).toBe(2)
    cfg.sleep(2 * electionTimeoutMs)
    expect(cfg.nCommitted(first.index).count, 'committed without a majority').toBe(0)
    for (const k of [1, 2, 3]) cfg.connect((leader + k) % servers)
    // The disconnected majority may have elected one of its own, forgetting index 2.
    const leader2 = cfg.checkOneLeader()
    const second = cfg.start(leader2, 30)
    expect(second.ok, 'leader2 rejected Start()').toBe(true)
    expect(second.index).toBeGreaterThanOrEqual(2)
    expect(second.index).toBeLessThanOrEqual(3)
    cfg.one(1000, servers, true)
  })

  it('concurrent Start()s', () => {
    const servers = 3
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    let success = false
    attempts: for (let attempt = 0; attempt < 5 && !success; attempt++) {
      if (attempt > 0) cfg.sleep(3000)
      const leader = cfg.checkOneLeader()
      const first = cfg.start(leader, 1)
      if (!first.ok) continue
      const indexes: number[] = []
      for (let i = 0; i < 5; i++) {
        const r = cfg.start(leader, 100 + i)
        if (r.ok && r.term === first.term) indexes.push(r.index)
      }
      for (let j = 0; j < servers; j++) if (cfg.getState(j).term !== first.term) continue attempts
      const commands: number[] = []
      for (const index of indexes) {
        const command = cfg.wait(index, servers, first.term)
        if (command === -1) continue attempts
        commands.push(command as number)
      }
      for (let i = 0; i < 5; i++) expect(commands, `cmd ${100 + i} missing`).toContain(100 + i)
      success = true
    }
    expect(success, 'term changed too often').toBe(true)
  })

  it('rejoin of partitioned leader', () => {
    const servers = 3
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    cfg.one(101, servers, true)
    const leader1 = cfg.checkOneLeader()
    cfg.disconnect(leader1)
    // The old leader tries to agree on entries it can never commit.
    cfg.start(leader1, 102)
    cfg.start(leader1, 103)
    cfg.start(leader1, 104)
    cfg.one(103, 2, true)
    const leader2 = cfg.checkOneLeader()
    cfg.disconnect(leader2)
    cfg.connect(leader1)
    cfg.one(104, 2, true)
    cfg.connect(leader2)
    cfg.one(105, servers, true)
  })

  it('leader backs up quickly over incorrect follower logs', () => {
    const servers = 5
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    cfg.one(cfg.randomInt(), servers, true)
    const leader1 = cfg.checkOneLeader()
    for (const k of [2, 3, 4]) cfg.disconnect((leader1 + k) % servers)
    for (let i = 0; i < 50; i++) cfg.start(leader1, cfg.randomInt())
    cfg.sleep(electionTimeoutMs / 2)
    cfg.disconnect(leader1)
    cfg.disconnect((leader1 + 1) % servers)
    for (const k of [2, 3, 4]) cfg.connect((leader1 + k) % servers)
    for (let i = 0; i < 50; i++) cfg.one(cfg.randomInt(), 3, true)
    const leader2 = cfg.checkOneLeader()
    let other = (leader1 + 2) % servers
    if (leader2 === other) other = (leader2 + 1) % servers
    cfg.disconnect(other)
    for (let i = 0; i < 50; i++) cfg.start(leader2, cfg.randomInt())
    cfg.sleep(electionTimeoutMs / 2)
    for (let i = 0; i < servers; i++) cfg.disconnect(i)
    cfg.connect(leader1)
    cfg.connect((leader1 + 1) % servers)
    cfg.connect(other)
    for (let i = 0; i < 50; i++) cfg.one(cfg.randomInt(), 3, true)
    for (let i = 0; i < servers; i++) cfg.connect(i)
    cfg.one(cfg.randomInt(), servers, true)
  })

  it('RPC counts are not too high', () => {
    const servers = 3
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    let leader = cfg.checkOneLeader()
    let total1 = cfg.rpcTotal()
    expect(total1, 'RPCs to elect the initial leader').toBeGreaterThanOrEqual(1)
    expect(total1, 'RPCs to elect the initial leader').toBeLessThanOrEqual(30)
    const iters = 10
    let total2 = 0
    let success = false
    attempts: for (let attempt = 0; attempt < 5 && !success; attempt++) {
      if (attempt > 0) cfg.sleep(3000)
      leader = cfg.checkOneLeader()
      total1 = cfg.rpcTotal()
      const first = cfg.start(leader, 1)
      if (!first.ok) continue
      const commands: number[] = []
      for (let i = 1; i < iters + 2; i++) {
        const x = cfg.randomInt()
        commands.push(x)
        const r = cfg.start(leader, x)
        if (r.term !== first.term || !r.ok) continue attempts
        expect(r.index, 'Start() failed').toBe(first.index + i)
      }
      for (let i = 1; i < iters + 1; i++) {
        const command = cfg.wait(first.index + i, servers, first.term)
        if (command === -1) continue attempts
        expect(command).toBe(commands[i - 1])
      }
      total2 = cfg.rpcTotal()
      for (let j = 0; j < servers; j++) if (cfg.getState(j).term !== first.term) continue attempts
      expect(total2 - total1, `RPCs for ${iters} entries`).toBeLessThanOrEqual((iters + 1 + 3) * 3)
      success = true
    }
    expect(success, 'term changed too often').toBe(true)
    cfg.sleep(electionTimeoutMs)
    expect(cfg.rpcTotal() - total2, 'RPCs in one second of idleness').toBeLessThanOrEqual(3 * 20)
  })
})
