// Exec and logs of one engine container: the two calls that stream a
// container's output back (multiplexed, decoded by docker-streams.ts).

import type Docker from 'dockerode'
import type { Duplex } from 'node:stream'
import type { ExecResult, LogLine, LogOptions } from './runtime.js'
import { ContainerNotRunningError, ExecTimeoutError, engineMessage, engineStatusCode, rethrowUnavailable, throwIfUnavailable } from './docker-errors.js'
import { collectOutput, logLinesFrom } from './docker-streams.js'

/** After an exec's output ends, the engine may take a moment to record its exit code: inspected this often, this many times. */
const execExitPollIntervalMs = 20
const execExitPollsMax = 50

/**
 * Runs `command` in the container and returns its exit code and output.
 * Past `timeoutMs` it throws ExecTimeoutError; the command itself is left
 * running (neither Docker nor Podman can kill an exec session).
 */
export async function execInContainer(container: Docker.Container, command: string[], timeoutMs: number, outputBytesMax: number): Promise<ExecResult> {
  let exec: Docker.Exec
  let stream: Duplex
  try {
    exec = await container.exec({ Cmd: command, AttachStdout: true, AttachStderr: true })
    stream = (await exec.start({ hijack: true, stdin: false })) as Duplex
  } catch (err) {
    throwIfUnavailable(err)
    if (engineStatusCode(err) === 409) throw new ContainerNotRunningError(engineMessage(err))
    throw err
  }
  let timer: NodeJS.Timeout | undefined
  const collecting = collectOutput(stream, outputBytesMax)
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ExecTimeoutError(`command ${JSON.stringify(command.join(' '))} timed out after ${timeoutMs} ms`)), timeoutMs)
  })
  let output: string
  try {
    output = await Promise.race([collecting, timedOut])
  } finally {
    clearTimeout(timer)
    collecting.catch(() => undefined) // destroyed below when the timeout won
    stream.destroy()
  }
  return { exitCode: await execExitCode(exec), output }
}

async function execExitCode(exec: Docker.Exec): Promise<number> {
  for (let poll = 0; ; poll++) {
    const info = await exec.inspect()
    if (!info.Running && typeof info.ExitCode === 'number') return info.ExitCode
    if (poll >= execExitPollsMax) return typeof info.ExitCode === 'number' ? info.ExitCode : -1
    await new Promise((resolve) => setTimeout(resolve, execExitPollIntervalMs))
  }
}

/**
 * The container's log lines. Without `follow` it ends at the end of what is
 * written; with it, when the run ends or the signal aborts (the stream is
 * destroyed then, and the iterable simply ends).
 */
export async function* followLogs(container: Docker.Container, options: LogOptions, signal: AbortSignal): AsyncGenerator<LogLine> {
  if (signal.aborted) return
  const request: Docker.ContainerLogsOptions = { stdout: true, stderr: true, timestamps: true }
  if (options.tailLines !== undefined) request.tail = options.tailLines
  // Engines take whole seconds; Podman's lines carry whole seconds too, so no finer filter is possible here.
  if (options.sinceMs !== undefined) request.since = Math.floor(options.sinceMs / 1000)
  if (!options.follow) {
    let written: Buffer
    try {
      written = await container.logs({ ...request, follow: false })
    } catch (err) {
      return rethrowUnavailable(err)
    }
    yield* logLinesFrom([written])
    return
  }
  let stream: NodeJS.ReadableStream & { destroy(): void }
  try {
    stream = (await container.logs({ ...request, follow: true })) as NodeJS.ReadableStream & { destroy(): void }
  } catch (err) {
    return rethrowUnavailable(err)
  }
  const onAbort = (): void => stream.destroy()
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    yield* logLinesFrom(stream as AsyncIterable<Buffer>)
  } catch (err) {
    if (!signal.aborted) throw err
  } finally {
    signal.removeEventListener('abort', onAbort)
    stream.destroy()
  }
}
