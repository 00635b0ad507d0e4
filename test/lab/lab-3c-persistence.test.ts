// MIT 6.5840 Raft lab, part 3C (persistence, Figure 8, churn), over the simulator.
import { describe, expect, it } from 'vitest'
import { LabConfig, electionTimeoutMs, type OneTask } from './harness.js'

const seeds = [1, 2, 3]

/** Sleep as the Figure 8 tests do: usually under 13 ms, one time in ten up to half an election timeout. */
function figure8Sleep(cfg: LabConfig): void {
  if (cfg.randomInt() % 1000 < 100) cfg.sleep(cfg.randomInt() % (electionTimeoutMs / 2))
  else cfg.sleep(cfg.randomInt() % 13)
}

describe.each(seeds)('lab 3C, seed %i', (seed) => {
  it('basic persistence', () => {
    const servers = 3
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    cfg.one(11, servers, true)
    for (let i = 0; i < servers; i++) cfg.start1(i)
    for (let i = 0; i < servers; i++) {
      cfg.disconnect(i)
      cfg.connect(i)
    }
    cfg.one(12, servers, true)
    const leader1 = cfg.checkOneLeader()
    cfg.disconnect(leader1)
    cfg.start1(leader1)
    cfg.connect(leader1)
    cfg.one(13, servers, true)
    const leader2 = cfg.checkOneLeader()
    cfg.disconnect(leader2)
    cfg.one(14, servers - 1, true)
    cfg.start1(leader2)
    cfg.connect(leader2)
    cfg.wait(4, servers, -1)
    const i3 = (cfg.checkOneLeader() + 1) % servers
    cfg.disconnect(i3)
    cfg.one(15, servers - 1, true)
    cfg.start1(i3)
    cfg.connect(i3)
    cfg.one(16, servers, true)
  })

  it('more persistence', () => {
    const servers = 5
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    let index = 1
    for (let iters = 0; iters < 5; iters++) {
      cfg.one(10 + index++, servers, true)
      const leader1 = cfg.checkOneLeader()
      cfg.disconnect((leader1 + 1) % servers)
      cfg.disconnect((leader1 + 2) % servers)
      cfg.one(10 + index++, servers - 2, true)
      for (const k of [0, 3, 4]) cfg.disconnect((leader1 + k) % servers)
      cfg.start1((leader1 + 1) % servers)
      cfg.start1((leader1 + 2) % servers)
      cfg.connect((leader1 + 1) % servers)
      cfg.connect((leader1 + 2) % servers)
      cfg.sleep(electionTimeoutMs)
      // Only leader1+3 holds the newest committed entry: it must be electable after its restart.
      cfg.start1((leader1 + 3) % servers)
      cfg.connect((leader1 + 3) % servers)
      cfg.one(10 + index++, servers - 2, true)
      cfg.connect((leader1 + 4) % servers)
      cfg.connect(leader1)
    }
    cfg.one(1000, servers, true)
  })

  it('partitioned leader and one follower crash, leader restarts', () => {
    const servers = 3
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    cfg.one(101, 3, true)
    const leader = cfg.checkOneLeader()
    cfg.disconnect((leader + 2) % servers)
    cfg.one(102, 2, true)
    cfg.crash1(leader)
    cfg.crash1((leader + 1) % servers)
    cfg.connect((leader + 2) % servers)
    cfg.start1(leader)
    cfg.connect(leader)
    cfg.one(103, 2, true)
    cfg.start1((leader + 1) % servers)
    cfg.connect((leader + 1) % servers)
    cfg.one(104, servers, true)
  })

  it('Figure 8', () => {
    const servers = 5
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    cfg.one(cfg.randomInt(), 1, true)
    let up = servers
    for (let iters = 0; iters < 1000; iters++) {
      let leader = -1
      for (let i = 0; i < servers; i++) {
        if (cfg.node(i).alive && cfg.start(i, cfg.randomInt()).ok) leader = i
      }
      figure8Sleep(cfg)
      if (leader !== -1) {
        cfg.crash1(leader)
        up--
      }
      if (up < 3) {
        const s = cfg.randomInt() % servers
        if (!cfg.node(s).alive) {
          cfg.start1(s)
          cfg.connect(s)
          up++
        }
      }
    }
    for (let i = 0; i < servers; i++) {
      if (!cfg.node(i).alive) {
        cfg.start1(i)
        cfg.connect(i)
      }
    }
    cfg.one(cfg.randomInt(), servers, true)
  })

  it('unreliable agreement', () => {
    const servers = 5
    const cfg = new LabConfig({ servers, unreliable: true, snapshot: false, seed })
    const tasks: OneTask[] = []
    for (let iters = 1; iters < 50; iters++) {
      for (let j = 0; j < 4; j++) tasks.push(cfg.oneAsync(100 * iters + j, 1, true))
      cfg.one(iters, 1, true)
    }
    cfg.setUnreliable(false)
    cfg.cluster.runUntil(() => tasks.every((t) => t.done), 30_000, 10)
    for (const t of tasks) expect(t.error).toBeNull()
    cfg.one(100, servers, true)
  })

  it('Figure 8 (unreliable)', () => {
    const servers = 5
    const cfg = new LabConfig({ servers, unreliable: true, snapshot: false, seed })
    cfg.one(cfg.randomInt() % 10000, 1, true)
    let up = servers
    for (let iters = 0; iters < 1000; iters++) {
      if (iters === 200) cfg.setLongReordering(true)
      let leader = -1
      for (let i = 0; i < servers; i++) {
        if (cfg.start(i, cfg.randomInt() % 10000).ok && cfg.connected(i)) leader = i
      }
      figure8Sleep(cfg)
      if (leader !== -1 && cfg.randomInt() % 1000 < electionTimeoutMs / 2) {
        cfg.disconnect(leader)
        up--
      }
      if (up < 3) {
        const s = cfg.randomInt() % servers
        if (!cfg.connected(s)) {
          cfg.connect(s)
          up++
        }
      }
    }
    for (let i = 0; i < servers; i++) cfg.connect(i)
    cfg.one(cfg.randomInt() % 10000, servers, true)
  })

  it.each([false, true])('churn (unreliable: %s)', (unreliable) => {
    const servers = 5
    const cfg = new LabConfig({ servers, unreliable, snapshot: false, seed })
    const clients = [0, 1, 2].map((me) => startChurnClient(cfg, me))
    for (let iters = 0; iters < 20; iters++) {
      if (cfg.randomInt() % 1000 < 200) cfg.disconnect(cfg.randomInt() % servers)
      if (cfg.randomInt() % 1000 < 500) {
        const i = cfg.randomInt() % servers
        if (!cfg.node(i).alive) cfg.start1(i)
        cfg.connect(i)
      }
      if (cfg.randomInt() % 1000 < 200) {
        const i = cfg.randomInt() % servers
        if (cfg.node(i).alive) cfg.crash1(i)
      }
      cfg.sleep((electionTimeoutMs * 7) / 10)
    }
    cfg.sleep(electionTimeoutMs)
    cfg.setUnreliable(false)
    for (let i = 0; i < servers; i++) {
      if (!cfg.node(i).alive) cfg.start1(i)
      cfg.connect(i)
    }
    for (const c of clients) c.stop = true
    cfg.cluster.runUntil(() => clients.every((c) => c.finished), 10_000, 10)
    cfg.sleep(electionTimeoutMs)
    const lastIndex = cfg.one(cfg.randomInt(), servers, true)
    const really = new Set<unknown>()
    for (let index = 1; index <= lastIndex; index++) really.add(cfg.wait(index, servers, -1))
    const values = clients.flatMap((c) => c.values)
    expect(values.length).toBeGreaterThan(0)
    for (const v of values) expect(really.has(v), `didn't find value ${v}`).toBe(true)
  })
})

interface ChurnClient {
  stop: boolean
  finished: boolean
  values: number[]
}

/** The churn test's client goroutine, as a task on the simulated clock. */
function startChurnClient(cfg: LabConfig, me: number): ChurnClient {
  const client: ChurnClient = { stop: false, finished: false, values: [] }
  const loop = (): void => {
    if (client.stop) {
      client.finished = true
      return
    }
    const x = cfg.randomInt()
    let index = -1
    for (let i = 0; i < cfg.n; i++) {
      const r = cfg.start(i, x)
      if (r.ok) index = r.index
    }
    if (index === -1) {
      cfg.cluster.queue.schedule(79 + me * 17, loop)
      return
    }
    const poll = (delays: number[]): void => {
      const { count, command } = cfg.nCommitted(index)
      if (count > 0) {
        if (command === x) client.values.push(x)
        loop()
        return
      }
      const [next, ...rest] = delays
      if (next === undefined) loop()
      else cfg.cluster.queue.schedule(next, () => poll(rest))
    }
    poll([10, 20, 50, 100, 200])
  }
  loop()
  return client
}
