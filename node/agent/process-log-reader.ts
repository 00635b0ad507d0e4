// Reads a run's CRI log files back as LogLines: the whole history (rotated
// files first), `sinceMs` and `tailLines` applied, then, when following,
// tails the current file (across rotations, like `tail -F`) until the writer
// says the run's output has ended, or the caller aborts.
import { open, readFile, stat, type FileHandle } from 'node:fs/promises'
import { StringDecoder } from 'node:string_decoder'
import { CriLineParser, rfc3339ToMs } from './process-log-format.js'
import { logFilePaths } from './process-log-writer.js'
import type { LogLine, LogOptions } from './runtime.js'

/** How often a follower looks at the file when no append was announced (another process may write it). */
export const logFollowPollMs = 250
/** Bytes read from a log file at once while following. */
const followReadBytes = 64 * 1024

export interface RunLogSource {
  logPath: string
  filesMax: number
  /** True once nothing more will be appended (the run's output has ended, or nobody captures it). */
  finished(): boolean
  /** Told after each append; returns the unsubscribe. */
  onWritten(listener: () => void): () => void
}

async function openIfExists(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'r')
  } catch {
    return undefined
  }
}

/** Reads from `offset` to the end of the file; returns the text and the new offset. */
async function readFrom(handle: FileHandle, offset: number, decoder: StringDecoder): Promise<{ text: string; offset: number }> {
  const buffer = Buffer.alloc(followReadBytes)
  let text = ''
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset)
    if (bytesRead === 0) return { text, offset }
    text += decoder.write(buffer.subarray(0, bytesRead))
    offset += bytesRead
  }
}

function keepSince(lines: LogLine[], sinceMs: number | undefined): LogLine[] {
  if (sinceMs === undefined) return lines
  return lines.filter((line) => rfc3339ToMs(line.time) >= sinceMs)
}

/** The current file was rotated away when its path now names another file. */
async function wasRotated(path: string, handle: FileHandle): Promise<boolean> {
  const [onPath, open] = await Promise.all([stat(path).catch(() => undefined), handle.stat()])
  return onPath !== undefined && onPath.ino !== open.ino
}

export async function* readRunLogs(source: RunLogSource, options: LogOptions, signal: AbortSignal): AsyncGenerator<LogLine> {
  let announced = false
  let wake: (() => void) | undefined
  const unsubscribe = source.onWritten(() => {
    announced = true
    wake?.()
  })
  const onAbort = (): void => wake?.()
  signal.addEventListener('abort', onAbort)
  const parser = new CriLineParser()
  // Open the current file first: a rotation while we read the older ones then cannot hide lines from us.
  let handle = await openIfExists(source.logPath)
  try {
    const paths = logFilePaths(source.logPath, source.filesMax)
    let history: LogLine[] = []
    for (const path of paths.slice(0, -1)) {
      const text = await readFile(path, 'utf8').catch(() => '')
      history.push(...parser.push(text.endsWith('\n') || text === '' ? text : `${text}\n`))
    }
    let decoder = new StringDecoder('utf8')
    let offset = 0
    if (handle !== undefined) {
      const read = await readFrom(handle, 0, decoder)
      offset = read.offset
      history.push(...parser.push(read.text))
    }
    history = keepSince(history, options.sinceMs)
    if (options.tailLines !== undefined) history = options.tailLines <= 0 ? [] : history.slice(-options.tailLines)
    yield* history
    if (!options.follow) return
    for (;;) {
      if (signal.aborted) return
      const endedBefore = source.finished()
      announced = false
      if (handle === undefined) {
        handle = await openIfExists(source.logPath)
        offset = 0
      }
      if (handle !== undefined) {
        const read = await readFrom(handle, offset, decoder)
        offset = read.offset
        yield* keepSince(parser.push(read.text), options.sinceMs)
        if (await wasRotated(source.logPath, handle)) {
          // The old file is complete once renamed (the writer opens the new one at once): continue in the new one.
          const rest = await readFrom(handle, offset, decoder)
          yield* keepSince(parser.push(rest.text), options.sinceMs)
          await handle.close()
          handle = await openIfExists(source.logPath)
          offset = 0
          decoder = new StringDecoder('utf8')
          continue
        }
      }
      if (endedBefore) return
      if (!announced) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, logFollowPollMs)
          wake = () => {
            clearTimeout(timer)
            resolve()
          }
          if (announced || signal.aborted) wake()
        })
        wake = undefined
      }
    }
  } finally {
    unsubscribe()
    signal.removeEventListener('abort', onAbort)
    await handle?.close()
  }
}
