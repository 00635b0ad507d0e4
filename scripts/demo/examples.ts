// The apps `npm run demo` can run on the process runtime: the guestbook when
// Debian's redis-server (or any) is on PATH, else an app that needs nothing
// but Node. Each says which manifests to create, in which order, what the
// peers' PATH must hold, and how to tell that its page works end to end.
import { spawn, spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { httpCall } from './app-status.js'
import { repoRoot, type ShoalCli } from './local-peers.js'

export type ExampleName = 'guestbook' | 'hello'
export const exampleNames: readonly ExampleName[] = ['guestbook', 'hello']

export interface DemoExample {
  name: ExampleName
  /** What the summary calls it. */
  title: string
  /** Created in this order: services that pods find through their environment come before those pods. */
  files: string[]
  /** Folders the peers' PATH must start with, for the programs the manifests name. */
  pathDirs: string[]
  /** The NodePort service. */
  service: string
  /** Proves the page works end to end; resolves with what it proved, rejects while it does not yet. */
  check(baseUrl: string): Promise<string>
}

const welcomeMessage = 'Hello from npm run demo: this went in through redis-master and came back from redis-slave.'

const guestbook: DemoExample = {
  name: 'guestbook',
  title: 'the guestbook (redis-master ×1, redis-slave ×2, frontend ×3)',
  files: ['redis-master.yaml', 'redis-slave.yaml', 'frontend.yaml'].map((f) => join(repoRoot, 'examples/guestbook-process', f)),
  pathDirs: [join(repoRoot, 'examples/guestbook-process/bin')],
  service: 'frontend',
  async check(baseUrl) {
    const page = await httpCall(`${baseUrl}/`)
    if (page.status !== 200 || !page.body.includes('Guestbook')) throw new Error(`the page answered ${page.status}`)
    const listed = async (): Promise<string[]> => {
      const answer = await httpCall(`${baseUrl}/messages`)
      if (answer.status !== 200) throw new Error(`GET /messages answered ${answer.status}: ${answer.body}`)
      return (JSON.parse(answer.body) as { messages: string[] }).messages
    }
    if (!(await listed()).includes(welcomeMessage)) {
      const added = await httpCall(`${baseUrl}/messages`, { method: 'POST', body: JSON.stringify({ message: welcomeMessage }) })
      if (added.status !== 201) throw new Error(`adding a message answered ${added.status}: ${added.body}`)
      const deadline = Date.now() + 5000
      while (!(await listed()).includes(welcomeMessage)) {
        if (Date.now() > deadline) throw new Error('the message added through redis-master does not show through redis-slave')
        await new Promise((r) => setTimeout(r, 200))
      }
    }
    return 'the page answers; a message went in through redis-master and came back from redis-slave'
  },
}

const hello: DemoExample = {
  name: 'hello',
  title: 'hello (a Node.js web server ×3)',
  files: [join(repoRoot, 'examples/hello/hello.yaml')],
  pathDirs: [],
  service: 'hello',
  async check(baseUrl) {
    const page = await httpCall(`${baseUrl}/`)
    if (page.status !== 200 || !page.body.includes('Hello from')) throw new Error(`the page answered ${page.status}`)
    return 'the page answers'
  },
}

export function exampleByName(name: ExampleName): DemoExample {
  return name === 'guestbook' ? guestbook : hello
}

export function onPath(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0
}

/** The guestbook when redis-server is installed, else hello. */
export function defaultExample(): DemoExample {
  return onPath('redis-server') ? guestbook : hello
}

/** PATH for the peers: the example's program folders, the node running this script, then ours. */
export function peerPath(example: DemoExample): string {
  return [...example.pathDirs, dirname(process.execPath), process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'].join(':')
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the `shoal` command to completion (killed after `timeoutMs`). */
export function runShoal(cli: ShoalCli, args: string[], timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(cli.command, [...cli.args, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('error', (err) => resolve({ code: null, stdout, stderr: `${stderr}${err.message}` }))
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}
