// MIT 6.5840 Raft lab, part 3A (leader election), ported to our core over the
// simulator. Each scenario runs under several seeds.
import { describe, expect, it } from 'vitest'
import { LabConfig, electionTimeoutMs } from './harness.js'

const seeds = [1, 2, 3]

describe.each(seeds)('lab 3A, seed %i', (seed) => {
  it('initial election', () => {
    const cfg = new LabConfig({ servers: 3, unreliable: false, snapshot: false, seed })
    cfg.checkOneLeader()
    cfg.sleep(50)
    const term1 = cfg.checkTerms()
    expect(term1).toBeGreaterThanOrEqual(1)
    // With no failures the leader and term stay put (the lab only warns; PreVote and CheckQuorum let us insist).
    cfg.sleep(2 * electionTimeoutMs)
    expect(cfg.checkTerms()).toBe(term1)
    cfg.checkOneLeader()
  })

  it('election after network failure', () => {
    const servers = 3
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    const leader1 = cfg.checkOneLeader()
    cfg.disconnect(leader1)
    cfg.checkOneLeader()
    // The old leader rejoining does not disturb the new one.
    cfg.connect(leader1)
    const leader2 = cfg.checkOneLeader()
    // Without a quorum, no leader.
    cfg.disconnect(leader2)
    cfg.disconnect((leader2 + 1) % servers)
    cfg.sleep(2 * electionTimeoutMs)
    cfg.checkNoLeader()
    cfg.connect((leader2 + 1) % servers)
    cfg.checkOneLeader()
    cfg.connect(leader2)
    cfg.checkOneLeader()
  })

  it('multiple elections', () => {
    const servers = 7
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: false, seed })
    cfg.checkOneLeader()
    for (let ii = 1; ii < 10; ii++) {
      const [i1, i2, i3] = [cfg.randomInt() % servers, cfg.randomInt() % servers, cfg.randomInt() % servers]
      cfg.disconnect(i1)
      cfg.disconnect(i2)
      cfg.disconnect(i3)
      cfg.checkOneLeader()
      cfg.connect(i1)
      cfg.connect(i2)
      cfg.connect(i3)
    }
    cfg.checkOneLeader()
  })
})
