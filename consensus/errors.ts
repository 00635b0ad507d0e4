// One error class per condition; callers match on `name`, which survives
// serialization across the network layer where `instanceof` would not.
import type { NodeId } from './types.js'

export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError'
  /** The leader this node knows of, or null during an election. */
  readonly leaderId: NodeId | null

  constructor(leaderId: NodeId | null) {
    super(leaderId === null ? 'not the leader; no leader is known' : `not the leader; the leader is ${leaderId}`)
    this.leaderId = leaderId
  }
}

export class LeadershipTransferInProgressError extends Error {
  override readonly name = 'LeadershipTransferInProgressError'

  constructor(transferee: NodeId) {
    super(`proposal refused: leadership is being transferred to ${transferee}`)
  }
}

export class TransferTargetError extends Error {
  override readonly name = 'TransferTargetError'

  constructor(target: NodeId) {
    super(`cannot transfer leadership to ${target}: it is not a voter`)
  }
}

export class UncommittedLogFullError extends Error {
  override readonly name = 'UncommittedLogFullError'

  constructor(limitBytes: number) {
    super(`proposal refused: uncommitted entries exceed ${limitBytes} bytes; retry once the log drains`)
  }
}

export class ConfChangeInProgressError extends Error {
  override readonly name = 'ConfChangeInProgressError'

  constructor(pendingIndex: number) {
    super(`a membership change at index ${pendingIndex} is not applied yet; one change at a time`)
  }
}

export class InvalidConfChangeError extends Error {
  override readonly name = 'InvalidConfChangeError'
}

export class LearnerNotCaughtUpError extends Error {
  override readonly name = 'LearnerNotCaughtUpError'

  constructor(nodeId: NodeId, match: number, required: number) {
    super(`learner ${nodeId} has replicated up to ${match}; it must reach ${required} before promotion`)
  }
}

export class SnapshotOutOfDateError extends Error {
  override readonly name = 'SnapshotOutOfDateError'
}

export class CompactionError extends Error {
  override readonly name = 'CompactionError'
}

/** The stored log cannot be trusted: never repaired silently into another history. */
export class LogCorruptionError extends Error {
  override readonly name = 'LogCorruptionError'
  readonly directory: string

  constructor(directory: string, detail: string) {
    super(`Raft log store in ${directory} is corrupt: ${detail}. Refusing to start; restore this directory from a backup or remove it and rejoin the peer as new.`)
    this.directory = directory
  }
}
