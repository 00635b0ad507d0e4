// MIT 6.5840 Raft lab, part 3D (log compaction), over the simulator. The
// application snapshots every 10 commands; the log must stay small and
// lagging or restarted followers catch up through InstallSnapshot.
import { describe, expect, it } from 'vitest'
import { LabConfig } from './harness.js'

const seeds = [1, 2, 3]
const snapshotInterval = 10
const logSizeMaxBytes = 2000

function snapCommon(seed: number, disconnect: boolean, reliable: boolean, crash: boolean): LabConfig {
  const servers = 3
  const cfg = new LabConfig({ servers, unreliable: !reliable, snapshot: true, seed })
  cfg.one(cfg.randomInt(), servers, true)
  let leader1 = cfg.checkOneLeader()
  for (let i = 0; i < 30; i++) {
    let victim = (leader1 + 1) % servers
    let sender = leader1
    if (i % 3 === 1) {
      sender = (leader1 + 1) % servers
      victim = leader1
    }
    if (disconnect) {
      cfg.disconnect(victim)
      cfg.one(cfg.randomInt(), servers - 1, true)
    }
    if (crash) {
      cfg.crash1(victim)
      cfg.one(cfg.randomInt(), servers - 1, true)
    }
    const nn = snapshotInterval / 2 + (cfg.randomInt() % snapshotInterval)
    for (let k = 0; k < nn; k++) cfg.start(sender, cfg.randomInt())
    // Without faults every follower keeps up, so no InstallSnapshot is needed.
    cfg.one(cfg.randomInt(), disconnect || crash ? servers - 1 : servers, true)
    expect(cfg.logSize(), 'log size too large').toBeLessThan(logSizeMaxBytes)
    if (disconnect) {
      cfg.connect(victim)
      cfg.one(cfg.randomInt(), servers, true)
      leader1 = cfg.checkOneLeader()
    }
    if (crash) {
      cfg.start1(victim)
      cfg.connect(victim)
      cfg.one(cfg.randomInt(), servers, true)
      leader1 = cfg.checkOneLeader()
    }
  }
  return cfg
}

describe.each(seeds)('lab 3D, seed %i', (seed) => {
  it('snapshots basic', () => {
    snapCommon(seed, false, true, false)
  })

  it('install snapshots (disconnect)', () => {
    snapCommon(seed, true, true, false)
  })

  it('install snapshots (disconnect + unreliable)', () => {
    snapCommon(seed, true, false, false)
  })

  it('install snapshots (crash)', () => {
    snapCommon(seed, false, true, true)
  })

  it('install snapshots (unreliable + crash)', () => {
    snapCommon(seed, false, false, true)
  })

  it('crash and restart all servers', () => {
    const servers = 3
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: true, seed })
    cfg.one(cfg.randomInt(), servers, true)
    for (let i = 0; i < 5; i++) {
      const nn = snapshotInterval / 2 + (cfg.randomInt() % snapshotInterval)
      for (let k = 0; k < nn; k++) cfg.one(cfg.randomInt(), servers, true)
      const index1 = cfg.one(cfg.randomInt(), servers, true)
      for (let s = 0; s < servers; s++) cfg.crash1(s)
      for (let s = 0; s < servers; s++) {
        cfg.start1(s)
        cfg.connect(s)
      }
      const index2 = cfg.one(cfg.randomInt(), servers, true)
      expect(index2, 'index decreased').toBeGreaterThanOrEqual(index1 + 1)
    }
  })

  it('snapshot initialization after crash', () => {
    const servers = 3
    const cfg = new LabConfig({ servers, unreliable: false, snapshot: true, seed })
    cfg.one(cfg.randomInt(), servers, true)
    for (let k = 0; k < snapshotInterval + 1; k++) cfg.one(cfg.randomInt(), servers, true)
    for (let round = 0; round < 2; round++) {
      for (let s = 0; s < servers; s++) cfg.crash1(s)
      for (let s = 0; s < servers; s++) {
        cfg.start1(s)
        cfg.connect(s)
      }
      cfg.one(cfg.randomInt(), servers, true)
    }
  })
})
