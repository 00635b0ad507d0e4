// Captures one run's stdout and stderr into a size-capped, rotated CRI log
// file. The child writes into two named pipes (FIFOs) under the state
// directory; this writer reads them, stamps each line with the time it
// arrived and appends it to `<run>.log` (rotating to `<run>.log.1`, ...).
//
// Why FIFOs rather than pipes through Node or raw files: a pipe created by
// spawn() dies with the agent (a SIGKILLed agent would leave the child
// writing into a closed pipe: SIGPIPE). A FIFO has a name, so the child holds
// it open read-write (it is then its own reader and never gets SIGPIPE) and a
// restarted agent opens it again and drains what was buffered. Raw files
// would keep everything but lose the time of each line (no `sinceSeconds`)
// and cannot be capped without losing bytes. The price, as with Docker's
// live-restore (same design): while no agent runs, a child that writes more
// than the pipe buffer (64 KiB) blocks in write() until an agent returns,
// and what is still buffered when such a child exits is lost.
import { EventEmitter } from 'node:events'
import { closeSync, constants, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { Socket } from 'node:net'
import { formatCriLine, logLineBytesMax, rfc3339NanoNow, type LogStream } from './process-log-format.js'

/** Size at which a run's log file is rotated. */
export const logFileBytesMax = 10 * 1024 * 1024
/** Files kept per run: the current one and `logFilesMax - 1` rotated ones. */
export const logFilesMax = 2

export interface LogFileBounds {
  fileBytesMax: number
  filesMax: number
}

export const defaultLogFileBounds: LogFileBounds = { fileBytesMax: logFileBytesMax, filesMax: logFilesMax }

/** A run's log files, oldest first (the current one last). */
export function logFilePaths(logPath: string, filesMax: number): string[] {
  const rotated: string[] = []
  for (let i = filesMax - 1; i >= 1; i--) rotated.push(`${logPath}.${i}`)
  return [...rotated, logPath]
}

/** The child's end of a FIFO: read-write, so opening never blocks and writing never raises SIGPIPE. */
export function openFifoForChild(path: string): number {
  return openSync(path, constants.O_RDWR)
}

export class RunLogWriter {
  private fd: number
  private sizeBytes: number
  private readonly sockets = new Set<Socket>()
  private readonly pending = new Map<LogStream, string>()
  private openStreams = 0
  private done = false
  private readonly events = new EventEmitter()

  constructor(
    private readonly logPath: string,
    private readonly bounds: LogFileBounds = defaultLogFileBounds,
  ) {
    this.fd = openSync(logPath, 'a')
    this.sizeBytes = fstatSync(this.fd).size
    this.events.setMaxListeners(0)
  }

  /** True once every attached stream has ended and all of it is in the file. */
  get finished(): boolean {
    return this.done
  }

  /** Called after each append and once when finished; returns the unsubscribe. */
  onWritten(listener: () => void): () => void {
    this.events.on('written', listener)
    return () => this.events.off('written', listener)
  }

  /**
   * Starts reading a FIFO. Someone must already hold its write end (the
   * child, or the runtime until the child has it), else it reads as ended.
   */
  attach(stream: LogStream, fifoPath: string): void {
    const readFd = openSync(fifoPath, constants.O_RDONLY | constants.O_NONBLOCK)
    const socket = new Socket({ fd: readFd, readable: true, writable: false })
    this.sockets.add(socket)
    this.openStreams++
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => this.append(stream, chunk))
    socket.on('error', () => socket.destroy())
    socket.on('close', () => {
      this.sockets.delete(socket)
      if (this.done) return
      this.flushRest(stream)
      if (--this.openStreams === 0) this.finish()
    })
  }

  /** Stops reading without finishing (the agent is going away; the child keeps its FIFOs). */
  detach(): void {
    this.done = true
    for (const socket of this.sockets) socket.destroy()
    this.closeFile()
  }

  private append(stream: LogStream, chunk: string): void {
    const all = (this.pending.get(stream) ?? '') + chunk
    const time = rfc3339NanoNow()
    const out: string[] = []
    let start = 0
    for (let end = all.indexOf('\n'); end >= 0; end = all.indexOf('\n', start)) {
      out.push(formatCriLine(time, stream, false, all.slice(start, end)))
      start = end + 1
    }
    let rest = all.slice(start)
    while (rest.length >= logLineBytesMax) {
      out.push(formatCriLine(time, stream, true, rest.slice(0, logLineBytesMax)))
      rest = rest.slice(logLineBytesMax)
    }
    this.pending.set(stream, rest)
    if (out.length > 0) this.write(out)
  }

  private flushRest(stream: LogStream): void {
    const rest = this.pending.get(stream) ?? ''
    this.pending.delete(stream)
    if (rest.length > 0) this.write([formatCriLine(rfc3339NanoNow(), stream, false, rest)])
  }

  /** Appends whole CRI lines, rotating between lines so no file grows past the cap (a longer single line aside). */
  private write(lines: string[]): void {
    if (this.fd < 0) return
    let batch: Buffer[] = []
    let batchBytes = 0
    for (const line of lines) {
      const bytes = Buffer.from(line, 'utf8')
      if (this.sizeBytes + batchBytes > 0 && this.sizeBytes + batchBytes + bytes.length > this.bounds.fileBytesMax) {
        this.flush(batch, batchBytes)
        if (this.sizeBytes > 0) this.rotate()
        batch = []
        batchBytes = 0
      }
      batch.push(bytes)
      batchBytes += bytes.length
    }
    this.flush(batch, batchBytes)
    this.events.emit('written')
  }

  private flush(batch: Buffer[], batchBytes: number): void {
    if (batchBytes === 0) return
    writeSync(this.fd, Buffer.concat(batch, batchBytes))
    this.sizeBytes += batchBytes
  }

  /** `<run>.log` becomes `<run>.log.1`, `.1` becomes `.2`, ...; the oldest beyond `filesMax` goes. */
  private rotate(): void {
    closeSync(this.fd)
    const paths = logFilePaths(this.logPath, this.bounds.filesMax)
    if (this.bounds.filesMax <= 1) rmSync(this.logPath, { force: true })
    else rmSync(paths[0]!, { force: true })
    for (let i = 1; i < paths.length; i++) {
      try {
        renameSync(paths[i]!, paths[i - 1]!)
      } catch {
        // a rotated file that never existed yet
      }
    }
    this.fd = openSync(this.logPath, 'a')
    this.sizeBytes = 0
  }

  private finish(): void {
    this.done = true
    this.closeFile()
    this.events.emit('written')
  }

  private closeFile(): void {
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
  }
}
