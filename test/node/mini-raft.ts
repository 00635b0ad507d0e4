// A Raft log in miniature for controller tests on a real object store: each
// submit is one entry, applied before submit resolves, its changes published
// to the watches in the same turn (as a peer applying an entry does).
import type { SubmitResult, Submitter } from '../../node/api/submit.js'
import type { ControlContext } from '../../node/control/controllers.js'
import { EventRecorder } from '../../node/control/events.js'
import type { KindRegistry } from '../../node/kinds/kind.js'
import type { StoreCommand } from '../../node/store/commands.js'
import { ObjectStore } from '../../node/store/object-store.js'
import type { WatchEvent } from '../../node/store/watch.js'

export class MiniRaft implements Submitter {
  readonly store: ObjectStore
  /** Entries a previous leader committed that this peer has not applied yet; they apply before any new entry. */
  committedUnapplied: StoreCommand[] = []
  /** Entries applied so far: a round that writes nothing leaves it unchanged. */
  entries = 0

  constructor(readonly kinds: KindRegistry) {
    this.store = new ObjectStore(kinds)
  }

  async submit(command: StoreCommand): Promise<SubmitResult> {
    for (const c of this.committedUnapplied.splice(0)) this.apply(c)
    return { index: this.apply(command), outcomes: this.store.outcomeOf(this.store.appliedIndex)! }
  }

  apply(command: StoreCommand): number {
    const index = this.store.appliedIndex + 1
    const events: WatchEvent[] = []
    this.store.apply(index, command, [], events)
    this.store.appliedIndex = index
    for (const e of events) this.store.watches.publish(e)
    this.entries++
    return index
  }

  /** What a leader's controllers get, with their clock (and their events' timestamps) from `nowMs`. */
  context(nowMs: () => number = () => Date.now()): ControlContext {
    const nowIso = (): string => new Date(nowMs()).toISOString()
    const events = new EventRecorder({ store: this.store, submitter: this, source: { component: 'test', host: 'h' }, nowIso })
    return { store: this.store, kinds: this.kinds, submitter: this, events, nowMs, nowIso }
  }
}
