// The child processes of `npm run bench -- proxy` (echo server, load generator,
// proxy peers), started with tsx, optionally inside a network namespace, each
// answering one JSON line on stdout.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export interface BenchChild {
  process: ChildProcess
  /** The first JSON line the child printed. */
  firstLine: Promise<Record<string, unknown>>
  /** Asks the child to exit (stdin closes) and waits until it has. */
  stop(): Promise<void>
}

export interface ChildOptions {
  /** Run inside this network namespace (`ip netns exec`). */
  namespace?: string
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[]
  env?: Record<string, string>
}

/** A child's stderr kept for error messages, at most this much. */
const stderrKeptBytesMax = 8192

export function startChild(script: string, args: string[], options: ChildOptions = {}): BenchChild {
  const file = fileURLToPath(new URL(script, import.meta.url))
  const nodeArgs = ['--import', 'tsx', ...(options.nodeFlags ?? []), file, ...args]
  const [command, commandArgs] = options.namespace === undefined ? [process.execPath, nodeArgs] : ['ip', ['netns', 'exec', options.namespace, process.execPath, ...nodeArgs]]
  const child = spawn(command, commandArgs, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env } })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-stderrKeptBytesMax)
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const firstLine = new Promise<Record<string, unknown>>((resolve, reject) => {
    let out = ''
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      out += text
      const newline = out.indexOf('\n')
      if (newline >= 0) resolve(JSON.parse(out.slice(0, newline)) as Record<string, unknown>)
    })
    child.once('exit', (code) => reject(new Error(`${script} ${args.join(' ')} exited (${code}) before answering: ${stderr.trim()}`)))
  })
  firstLine.catch(() => undefined)
  return {
    process: child,
    firstLine,
    async stop(): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.stdin!.end()
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(killer)
    },
  }
}

export interface BulkResult {
  bytesPerSec: number
}

export interface RequestResponseResult {
  requestsPerSec: number
  p50Ms: number
  p99Ms: number
}

/** Runs the load generator against host:port to the end and returns its result. */
export async function runLoad<T>(host: string, port: number, mode: 'bulk' | 'rr', connections: number, seconds: number, namespace?: string): Promise<T> {
  const child = startChild('./proxy-load.ts', [host, String(port), mode, String(connections), String(seconds), '1'], namespace === undefined ? {} : { namespace })
  try {
    return (await child.firstLine) as T
  } finally {
    await child.stop()
  }
}
