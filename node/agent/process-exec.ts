// `exec` of the process runtime: the command runs as a child with the run's
// environment and working directory (there is no namespace to enter), in
// its own process group so a timeout kills all it started.
import { spawn } from 'node:child_process'
import { constants as osConstants } from 'node:os'
import { execOutputBytesMax, type ExecResult } from './runtime.js'
import { signalProcessGroup } from './process-tree.js'
import { ExecTimeoutError } from './runtime-errors.js'

export function execInRun(command: string[], env: Record<string, string>, cwd: string, timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const [program, ...args] = command
    if (program === undefined) {
      resolve({ exitCode: 126, output: 'exec: no command given' })
      return
    }
    let output = Buffer.alloc(0)
    const keep = (chunk: Buffer): void => {
      if (output.length < execOutputBytesMax) output = Buffer.concat([output, chunk.subarray(0, execOutputBytesMax - output.length)])
    }
    // PATH lookup uses env.PATH (node's spawn does so when env is given).
    const child = spawn(program, args, { env, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      if (child.pid !== undefined) signalProcessGroup(child.pid, 'SIGKILL')
    }, timeoutMs)
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    child.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      // Docker's codes: 127 when the command does not exist, 126 when it cannot be run.
      const exitCode = error.code === 'ENOENT' ? 127 : 126
      resolve({ exitCode, output: `exec: "${program}": ${error.code === 'ENOENT' ? 'executable file not found in $PATH' : error.message}` })
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      const text = output.toString('utf8')
      if (timedOut) reject(new ExecTimeoutError(`command timed out after ${timeoutMs} ms and was killed${text === '' ? '' : `; it printed: ${text.slice(-200)}`}`))
      else resolve({ exitCode: code ?? 128 + (signal === null ? 0 : (osConstants.signals[signal] ?? 0)), output: text })
    })
  })
}
