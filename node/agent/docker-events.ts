// Watches the engine's event stream for this node's containers and says which
// pod container changed, so the agent reconciles at once instead of polling.
// The stream can end (engine restart, socket hiccup): it is resubscribed with
// bounded back-off, asking for the events since the last one seen.

import type Docker from 'dockerode'
import { labelContainerName, labelNode, labelPodUid } from './docker-labels.js'

/** First wait before resubscribing; doubles up to the maximum, back to the first once events flow. */
export const eventResubscribeDelayFirstMs = 100
export const eventResubscribeDelayMaxMs = 5_000
/** Bytes of an unfinished event line kept; beyond it the line is dropped (events are a few hundred bytes). */
const eventLineBytesMax = 1024 * 1024

/** Actions that change what the agent sees. Podman also sends init, cleanup, exec, exec_died, ...: ignored. */
const changeActions = new Set(['start', 'die', 'died', 'stop', 'oom', 'kill', 'remove'])

export type EngineChangeHandler = (uid: string, containerName: string) => void

interface EngineEvent {
  Type?: string
  Action?: string
  status?: string
  time?: number
  Actor?: { Attributes?: Record<string, string> }
}

type DestroyableStream = NodeJS.ReadableStream & { destroy(): void }

export class EngineEventWatcher {
  private stream: DestroyableStream | undefined
  private closed = false
  private retryDelayMs = eventResubscribeDelayFirstMs
  private retryTimer: NodeJS.Timeout | undefined
  /** Seconds since the epoch of the latest event (or subscription) seen: where a resubscription resumes. */
  private resumeFromSec: number | undefined

  constructor(
    private readonly docker: Docker,
    private readonly nodeName: string,
    private readonly onChange: EngineChangeHandler,
  ) {}

  start(): void {
    void this.subscribe()
  }

  close(): void {
    this.closed = true
    clearTimeout(this.retryTimer)
    this.stream?.destroy()
    this.stream = undefined
  }

  private async subscribe(): Promise<void> {
    if (this.closed) return
    const filters = JSON.stringify({ label: [`${labelNode}=${this.nodeName}`], type: ['container'] })
    let stream: DestroyableStream
    try {
      const options: Docker.GetEventsOptions = { filters }
      if (this.resumeFromSec !== undefined) options.since = this.resumeFromSec
      stream = (await this.docker.getEvents(options)) as DestroyableStream
    } catch {
      this.scheduleResubscribe()
      return
    }
    if (this.closed) {
      stream.destroy()
      return
    }
    this.stream = stream
    this.resumeFromSec ??= Math.floor(Date.now() / 1000)
    let pending = ''
    stream.on('data', (chunk: Buffer | string) => {
      this.retryDelayMs = eventResubscribeDelayFirstMs
      const lines = (pending + chunk.toString()).split('\n')
      pending = lines.pop() ?? ''
      if (pending.length > eventLineBytesMax) pending = ''
      for (const line of lines) this.handleLine(line)
    })
    let ended = false
    const onEnd = (): void => {
      if (ended) return
      ended = true
      if (this.stream === stream) this.stream = undefined
      this.scheduleResubscribe()
    }
    stream.once('end', onEnd)
    stream.once('close', onEnd)
    stream.once('error', onEnd)
  }

  private handleLine(line: string): void {
    if (line.trim() === '') return
    let event: EngineEvent
    try {
      event = JSON.parse(line) as EngineEvent
    } catch {
      return
    }
    if (typeof event.time === 'number') this.resumeFromSec = event.time
    const action = event.Action ?? event.status ?? ''
    const attributes = event.Actor?.Attributes ?? {}
    const uid = attributes[labelPodUid]
    const containerName = attributes[labelContainerName]
    if (!changeActions.has(action) || uid === undefined || containerName === undefined) return
    try {
      this.onChange(uid, containerName)
    } catch {
      // A listener's failure must not end the watch.
    }
  }

  private scheduleResubscribe(): void {
    if (this.closed) return
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => void this.subscribe(), this.retryDelayMs)
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, eventResubscribeDelayMaxMs)
  }
}
