// Named pipes made ahead of need. Node cannot make a FIFO itself, so each one
// costs a `mkfifo` child, and a fork of a large peer process is the most
// expensive part of starting a container: 100 pods starting together spent
// more time forking `mkfifo` than anything else. The pool makes them in
// batches (one child for fifoBatchSize pipes) in its own directory on the same
// file system, and a run takes its two by rename, which is one syscall.
import { execFile } from 'node:child_process'
import { mkdir, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

/** FIFOs made per `mkfifo` child. */
export const fifoBatchSize = 64
/** Refill when fewer than this many are left. */
const fifoLowWater = 16

export class FifoPool {
  private readonly ready: string[] = []
  private refilling: Promise<void> | null = null
  private counter = 0
  /** Names unique to this process, even when a dead one with the same pid left pipes here. */
  private readonly prefix = `${process.pid}-${Date.now().toString(36)}`

  constructor(private readonly dir: string) {}

  /** Moves a fresh FIFO to each of `paths`. */
  async take(paths: string[]): Promise<void> {
    for (const path of paths) {
      while (this.ready.length === 0) await this.refill()
      await rename(this.ready.pop()!, path)
    }
    if (this.ready.length < fifoLowWater) void this.refill().catch(() => undefined)
  }

  /** Removes the pipes not handed out (at shutdown; a restart starts a new batch). */
  async clear(): Promise<void> {
    await this.refilling?.catch(() => undefined)
    this.ready.length = 0
    await rm(this.dir, { recursive: true, force: true })
  }

  private refill(): Promise<void> {
    this.refilling ??= this.makeBatch().finally(() => {
      this.refilling = null
    })
    return this.refilling
  }

  private async makeBatch(): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    // Pipes a crashed earlier process left here are as good as new ones.
    if (this.counter === 0) for (const name of await readdir(this.dir)) this.ready.push(join(this.dir, name))
    const paths = Array.from({ length: fifoBatchSize }, () => join(this.dir, `${this.prefix}-${this.counter++}`))
    await promisify(execFile)('mkfifo', ['-m', '600', ...paths])
    this.ready.push(...paths)
  }
}
