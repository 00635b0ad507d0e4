// Elections: PreVote (a partitioned node cannot inflate terms and depose a
// healthy leader), real votes, and the forced campaign of a leadership transfer.
import { handleAppend, handleHeartbeat, handleSnapshotChunk } from './follower.js'
import { campaignTransferContext, type Raft } from './raft.js'
import { MessageType, type Message } from './types.js'

export type CampaignKind = 'pre-vote' | 'election' | 'transfer'

export function campaign(r: Raft, kind: CampaignKind): void {
  let voteTerm: number
  let voteType: MessageType
  if (kind === 'pre-vote') {
    r.becomePreCandidate()
    voteTerm = r.term + 1
    voteType = MessageType.PreVote
  } else {
    r.becomeCandidate()
    voteTerm = r.term
    voteType = MessageType.Vote
  }
  r.tracker.recordVote(r.id, true)
  if (r.tracker.tallyVotes() === 'won') {
    // A single voter wins at once.
    if (kind === 'pre-vote') campaign(r, 'election')
    else r.becomeLeader()
    return
  }
  for (const id of r.tracker.voters) {
    if (id === r.id) continue
    const m: Message = {
      type: voteType,
      from: r.id,
      to: id,
      term: voteTerm,
      index: r.log.lastIndex(),
      logTerm: r.log.lastTerm(),
    }
    if (kind === 'transfer') m.context = campaignTransferContext()
    r.send(m)
  }
}

export function handleVoteRequest(r: Raft, m: Message): void {
  const isPreVote = m.type === MessageType.PreVote
  const canVote =
    r.vote === m.from ||
    (r.vote === null && r.leaderId === null) ||
    // A pre-vote for a future term commits us to nothing.
    (isPreVote && m.term > r.term)
  const responseType = isPreVote ? MessageType.PreVoteResp : MessageType.VoteResp
  if (canVote && r.log.isUpToDate(m.index ?? 0, m.logTerm ?? 0)) {
    // Answer in the candidate's term so it does not drop the grant as stale.
    r.send({ type: responseType, from: r.id, to: m.from, term: m.term })
    if (!isPreVote) {
      r.electionElapsed = 0
      r.vote = m.from
    }
    return
  }
  r.send({ type: responseType, from: r.id, to: m.from, term: r.term, reject: true })
}

/** Both pre-candidates and candidates. */
export function stepCandidate(r: Raft, m: Message): void {
  const myResponse = r.role === 'pre-candidate' ? MessageType.PreVoteResp : MessageType.VoteResp
  switch (m.type) {
    case MessageType.App:
      r.becomeFollower(m.term, m.from)
      handleAppend(r, m)
      return
    case MessageType.Heartbeat:
      r.becomeFollower(m.term, m.from)
      handleHeartbeat(r, m)
      return
    case MessageType.Snap:
      r.becomeFollower(m.term, m.from)
      handleSnapshotChunk(r, m)
      return
    case myResponse:
      r.tracker.recordVote(m.from, m.reject !== true)
      switch (r.tracker.tallyVotes()) {
        case 'won':
          if (r.role === 'pre-candidate') campaign(r, 'election')
          else r.becomeLeader()
          return
        case 'lost':
          r.becomeFollower(r.term, null)
          return
        case 'pending':
          return
      }
  }
}
