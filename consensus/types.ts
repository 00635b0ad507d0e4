// The data the Raft core speaks: entries, hard state, snapshots, messages and
// the Ready it hands back. Plain objects so the codec can encode them directly.

/** A peer's identity (a libp2p PeerId string in production, 'n1'... in simulation). */
export type NodeId = string

export const EntryType = {
  Normal: 0,
  ConfChange: 1,
} as const
export type EntryType = (typeof EntryType)[keyof typeof EntryType]

export interface Entry {
  term: number
  index: number
  type: EntryType
  data: Uint8Array
}

/** What must survive a crash before any message that depends on it leaves. */
export interface HardState {
  term: number
  vote: NodeId | null
  commit: number
}

export interface ConfState {
  voters: NodeId[]
  learners: NodeId[]
}

export interface SnapshotMetadata {
  index: number
  term: number
  confState: ConfState
}

export interface Snapshot {
  metadata: SnapshotMetadata
  data: Uint8Array
}

export const ConfChangeType = {
  AddLearner: 0,
  AddVoter: 1,
  PromoteLearner: 2,
  RemoveNode: 3,
} as const
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType]

export interface ConfChange {
  type: ConfChangeType
  nodeId: NodeId
}

export const MessageType = {
  /** local: start an election now */
  Hup: 0,
  /** local: leader broadcasts a heartbeat now */
  Beat: 1,
  /** a proposal forwarded to or stepped on the leader */
  Prop: 2,
  App: 3,
  AppResp: 4,
  Vote: 5,
  VoteResp: 6,
  PreVote: 7,
  PreVoteResp: 8,
  /** one chunk of an InstallSnapshot */
  Snap: 9,
  SnapResp: 10,
  Heartbeat: 11,
  HeartbeatResp: 12,
  TransferLeader: 13,
  TimeoutNow: 14,
  ReadIndex: 15,
  ReadIndexResp: 16,
} as const
export type MessageType = (typeof MessageType)[keyof typeof MessageType]

/** A chunk of a snapshot in flight: `offset` into the snapshot's data. */
export interface SnapshotChunk {
  metadata: SnapshotMetadata
  totalBytes: number
  offset: number
  data: Uint8Array
}

/**
 * One flat message shape for every type (as etcd's raftpb.Message), so the
 * codec stays simple. Fields unused by a type are left out.
 */
export interface Message {
  type: MessageType
  from: NodeId
  to: NodeId
  term: number
  /** App: term of the entry before `entries`; votes: term of the candidate's last entry */
  logTerm?: number
  /** App: index before `entries`; AppResp: last index matched (or rejected); votes: last index */
  index?: number
  entries?: Entry[]
  commit?: number
  reject?: boolean
  /** AppResp reject: the follower's hint of where the logs may agree */
  rejectHint?: number
  /** ReadIndex request context; a vote forced by leadership transfer carries `transfer` */
  context?: Uint8Array
  snapshot?: SnapshotChunk
  /** SnapResp: bytes of the snapshot received so far; equals totalBytes when installed */
  snapshotAcked?: number
}

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader'

export interface SoftState {
  leaderId: NodeId | null
  role: Role
}

/** A linearizable read point: serve the read once applied >= index. */
export interface ReadState {
  index: number
  context: Uint8Array
}

export interface PendingSnapshot {
  snapshot: Snapshot
  /** true: received from the leader, the whole stored log is replaced; false: local compaction */
  replacesLog: boolean
}

/**
 * What the core asks of its driver. Handle in this order: persist `hardState`,
 * `snapshot` and `entries` in one synced batch; then send `messagesAfterPersist`;
 * apply the snapshot and `committedEntries`; release `readStates` once applied;
 * then call `advance(ready)`. `messages` may be sent at once, even before persisting.
 */
export interface Ready {
  softState: SoftState | null
  hardState: HardState | null
  snapshot: PendingSnapshot | null
  /** Contiguous; any stored entry at or after entries[0].index is overwritten. */
  entries: Entry[]
  committedEntries: Entry[]
  /** Messages that do not depend on unpersisted state (a leader's appends and heartbeats). */
  messages: Message[]
  /** Messages that may leave only after this Ready's state is durable. */
  messagesAfterPersist: Message[]
  readStates: ReadState[]
}

/** What a restarted node recovers from its log store. */
export interface PersistedState {
  hardState: HardState
  snapshot: Snapshot | null
  /** Entries after the snapshot, contiguous. */
  entries: Entry[]
}
