import { describe, expect, it } from 'vitest'
import { desiredVoters, planNextChange, type AutopilotView } from '../../node/autopilot.js'
import { ConfChangeType } from '../../consensus/types.js'

const names = ['add-learner', 'add-voter', 'promote', 'remove']

function view(partial: Partial<Omit<AutopilotView, 'departed' | 'healthy' | 'deadBeyondGrace' | 'caughtUp'>> & { departed?: string[]; healthy?: string[]; dead?: string[]; caughtUp?: string[] }): AutopilotView {
  const members = partial.members ?? [...(partial.voters ?? []), ...(partial.learners ?? [])]
  return {
    leaderId: partial.leaderId ?? 'a',
    voters: partial.voters ?? [],
    learners: partial.learners ?? [],
    members,
    departed: new Set(partial.departed ?? []),
    healthy: new Set(partial.healthy ?? members.filter((id) => !(partial.dead ?? []).includes(id))),
    deadBeyondGrace: new Set(partial.dead ?? []),
    caughtUp: new Set(partial.caughtUp ?? partial.learners ?? []),
    votersMax: partial.votersMax ?? 5,
  }
}

function plan(v: AutopilotView): string {
  const change = planNextChange(v)
  return change === null ? 'nothing' : `${names[change.type]} ${change.nodeId}`
}

describe('autopilot', () => {
  it('wants 3 voters, 5 once 5 peers are healthy, never more than --voters, always odd', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 9].map((h) => desiredVoters(h, 5))).toEqual([3, 3, 3, 3, 5, 5, 5, 5])
    expect([1, 3, 5, 7, 9].map((h) => desiredVoters(h, 7))).toEqual([3, 3, 5, 7, 7])
    expect(desiredVoters(9, 3)).toBe(3)
    expect(desiredVoters(9, 1)).toBe(1)
    expect(desiredVoters(9, 4)).toBe(3)
  })

  it('adds a newcomer as a learner first, and removes departed peers before anything else', () => {
    expect(plan(view({ voters: ['a'], members: ['a', 'b'] }))).toBe('add-learner b')
    expect(plan(view({ voters: ['a', 'b', 'c'], members: ['a', 'b', 'c', 'd'], departed: ['b'] }))).toBe('remove b')
  })

  it('grows from one voter to three in pairs, only with two caught-up learners', () => {
    expect(plan(view({ voters: ['a'], learners: ['b'] }))).toBe('nothing')
    expect(plan(view({ voters: ['a'], learners: ['b', 'c'], caughtUp: ['b'] }))).toBe('nothing')
    expect(plan(view({ voters: ['a'], learners: ['b', 'c'] }))).toBe('promote b')
    // Mid-pair (an even count): finish it.
    expect(plan(view({ voters: ['a', 'b'], learners: ['c'] }))).toBe('promote c')
    expect(plan(view({ voters: ['a', 'b', 'c'], learners: ['d'] }))).toBe('nothing')
  })

  it('grows to five once five peers are healthy', () => {
    expect(plan(view({ voters: ['a', 'b', 'c'], learners: ['d', 'e'] }))).toBe('promote d')
    expect(plan(view({ voters: ['a', 'b', 'c'], learners: ['d', 'e'], votersMax: 3 }))).toBe('nothing')
  })

  it('replaces a voter dead beyond the grace period with a healthy caught-up learner', () => {
    expect(plan(view({ voters: ['a', 'b', 'c'], learners: ['d'], dead: ['c'] }))).toBe('promote d')
    expect(plan(view({ voters: ['a', 'b', 'c', 'd'], dead: ['c'] }))).toBe('remove c')
  })

  it('keeps a dead voter when nobody can replace it and removing it would not help', () => {
    expect(plan(view({ voters: ['a', 'b', 'c'], dead: ['c'] }))).toBe('nothing')
    expect(plan(view({ voters: ['a', 'b', 'c', 'd', 'e'], dead: ['e'] }))).toBe('nothing')
  })

  it('sheds two dead voters of five, so one more failure is survivable', () => {
    expect(plan(view({ voters: ['a', 'b', 'c', 'd', 'e'], dead: ['d', 'e'] }))).toBe('remove d')
    expect(plan(view({ voters: ['a', 'b', 'c', 'e'], dead: ['e'] }))).toBe('remove e')
  })

  it('never removes the leader for being unhealthy, and waits with two voters and no candidate', () => {
    expect(plan(view({ leaderId: 'a', voters: ['a', 'b', 'c'], learners: ['d'], dead: ['a'] }))).toBe('nothing')
    expect(plan(view({ voters: ['a', 'b'] }))).toBe('nothing')
  })

  it('shrinks by two when --voters is lowered', () => {
    expect(plan(view({ voters: ['a', 'b', 'c', 'd', 'e'], votersMax: 3 }))).toBe('remove e')
    expect(plan(view({ voters: ['a', 'b', 'c', 'd'], votersMax: 3 }))).toBe('remove d')
  })

  it('ignores learners that are not healthy or not caught up', () => {
    expect(plan(view({ voters: ['a', 'b', 'c'], learners: ['d'], dead: ['c'], caughtUp: [] }))).toBe('nothing')
    expect(plan(view({ voters: ['a', 'b', 'c'], learners: ['d'], dead: ['c', 'd'] }))).toBe('nothing')
  })

  it('uses the real membership change types', () => {
    expect(planNextChange(view({ voters: ['a'], members: ['a', 'b'] }))).toEqual({ type: ConfChangeType.AddLearner, nodeId: 'b' })
  })
})
