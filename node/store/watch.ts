// Watches: every change is an event with the resourceVersion (Raft index)
// that made it. A window of recent events lets a watch resume from any
// resourceVersion still in it; an older one gets 410 Gone and relists.
import type { ApiObject } from '../kinds/meta.js'

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED'

export interface WatchEvent {
  type: WatchEventType
  object: ApiObject
  /** The Raft index of the change. */
  resourceVersion: number
  /** The kind's key (group/version/kind), for filtering. */
  kindKey: string
}

export class ResourceVersionTooOldError extends Error {
  override readonly name = 'ResourceVersionTooOldError'

  constructor(asked: number, oldest: number) {
    super(`too old resource version: ${asked} (${oldest})`)
  }
}

export class TooManyWatchesError extends Error {
  override readonly name = 'TooManyWatchesError'

  constructor(limit: number) {
    super(`too many watches: ${limit} are open on this peer`)
  }
}

export type WatchListener = (event: WatchEvent) => void

export interface WatchWindowOptions {
  /** Events kept for resuming watches (up to a quarter more between trims). */
  eventsMax: number
  /** Open watches allowed on this peer. */
  watchersMax: number
}

export class WatchWindow {
  private readonly events: WatchEvent[] = []
  /** The resourceVersion before the oldest event kept: a watch from here or later can resume. */
  private floor = 0
  private readonly listeners = new Set<WatchListener>()

  constructor(private readonly options: WatchWindowOptions) {}

  /** After a restart or a snapshot install, history starts again at `resourceVersion`. */
  reset(resourceVersion: number): void {
    this.events.length = 0
    this.floor = resourceVersion
  }

  publish(event: WatchEvent): void {
    this.events.push(event)
    // Trimmed a quarter at a time: splicing one off the front of a full window on every publish moved the whole array each time.
    if (this.events.length > this.options.eventsMax + Math.max(1, this.options.eventsMax >> 2)) {
      const dropped = this.events.splice(0, this.events.length - this.options.eventsMax)
      this.floor = dropped[dropped.length - 1]!.resourceVersion
    }
    for (const l of this.listeners) l(event)
  }

  /**
   * Events after `resourceVersion` (which must be in the window), then every
   * new one, to `listener`. Returns the function that stops the watch.
   */
  watchFrom(resourceVersion: number, listener: WatchListener): () => void {
    if (resourceVersion < this.floor) throw new ResourceVersionTooOldError(resourceVersion, this.floor)
    if (this.listeners.size >= this.options.watchersMax) throw new TooManyWatchesError(this.options.watchersMax)
    for (const e of this.events) if (e.resourceVersion > resourceVersion) listener(e)
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  get watchers(): number {
    return this.listeners.size
  }

  get watchersMax(): number {
    return this.options.watchersMax
  }

  /** No room for another watch. */
  get full(): boolean {
    return this.listeners.size >= this.options.watchersMax
  }
}
