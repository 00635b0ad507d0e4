// How the process runtime turns a container spec into a program, its
// arguments and its environment (the convention is described at the top of
// process-runtime.ts).
import { spawn, type ChildProcess } from 'node:child_process'
import { constants } from 'node:fs'
import { access, stat } from 'node:fs/promises'
import { delimiter, isAbsolute, join, resolve } from 'node:path'
import { ImagePullError, InvalidImageNameError, RunContainerError } from './runtime-errors.js'
import type { ContainerSpec, SandboxSpec } from './runtime.js'

/**
 * The program an image names: an absolute path as is; otherwise the image
 * reference's last path component without tag or digest, so
 * `docker.io/kubeguide/redis-master:v1` names the program `redis-master`.
 */
export function programNameOfImage(image: string): string {
  if (isAbsolute(image)) return image
  const withoutDigest = image.split('@')[0] ?? ''
  const lastComponent = withoutDigest.slice(withoutDigest.lastIndexOf('/') + 1)
  const name = lastComponent.split(':')[0] ?? ''
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(name)) throw new InvalidImageNameError(`image "${image}" does not name a program (expected an absolute path or a name such as "redis-server")`)
  return name
}

type Lookup = { kind: 'found'; path: string } | { kind: 'missing' } | { kind: 'not-executable'; path: string; why: string }

async function checkExecutable(path: string): Promise<Lookup> {
  const info = await stat(path).catch(() => undefined)
  if (info === undefined) return { kind: 'missing' }
  if (!info.isFile()) return { kind: 'not-executable', path, why: 'is not a regular file' }
  try {
    await access(path, constants.X_OK)
    return { kind: 'found', path }
  } catch {
    return { kind: 'not-executable', path, why: 'is not executable (chmod +x)' }
  }
}

async function lookUp(name: string, searchPath: string, workingDir: string): Promise<Lookup> {
  if (isAbsolute(name)) return checkExecutable(name)
  if (name.includes('/')) return checkExecutable(resolve(workingDir, name))
  let notExecutable: Lookup | undefined
  for (const dir of searchPath.split(delimiter).filter((d) => d !== '')) {
    const found = await checkExecutable(join(dir, name))
    if (found.kind === 'found') return found
    if (found.kind === 'not-executable') notExecutable ??= found
  }
  return notExecutable ?? { kind: 'missing' }
}

function missingMessage(what: string, name: string, searchPath: string): string {
  const where = isAbsolute(name) ? '' : ` on PATH (${searchPath})`
  return `${what} "${name}" not found${where}: install it, or give the program's absolute path as the image`
}

/**
 * Resolves what to run. `command` replaces the image's entrypoint, as in
 * Kubernetes: then command[0] is the program and the image must only exist.
 */
export async function resolveLaunch(container: ContainerSpec, searchPath: string, workingDir: string): Promise<{ imageProgram: string; program: string; args: string[] }> {
  const imageName = programNameOfImage(container.image)
  const image = await lookUp(imageName, searchPath, workingDir)
  if (image.kind === 'missing') throw new ImagePullError(missingMessage('program', imageName, searchPath) + ` (image "${container.image}")`)
  if (image.kind === 'not-executable') throw new RunContainerError(`program "${image.path}" ${image.why}`)
  const command = container.command ?? []
  if (command.length === 0) return { imageProgram: image.path, program: image.path, args: container.args ?? [] }
  const commandName = command[0]!
  const program = await lookUp(commandName, searchPath, workingDir)
  if (program.kind === 'missing') throw new RunContainerError(missingMessage('command', commandName, searchPath))
  if (program.kind === 'not-executable') throw new RunContainerError(`command "${program.path}" ${program.why}`)
  return { imageProgram: image.path, program: program.path, args: [...command.slice(1), ...(container.args ?? [])] }
}

/** `my-port` -> `MY_PORT`: the suffix of PORT_<name> and SHOAL_VOLUME_<name>. */
export function envNameSuffix(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')
}

/**
 * The run's environment: PATH (the runtime's search path) and HOME, then
 * what the pod offers (HOSTNAME, POD_IP, PORT, PORT_<name>,
 * SHOAL_VOLUME_<name> for each mount, since a process cannot see a volume at
 * its mountPath, and SHOAL_DNS / SHOAL_DNS_SEARCH for cluster DNS), then the
 * container's own env, which wins.
 */
export function containerEnv(pod: SandboxSpec, container: ContainerSpec, podIp: string, searchPath: string): Record<string, string> {
  const env: Record<string, string> = { PATH: searchPath }
  if (process.env.HOME !== undefined) env.HOME = process.env.HOME
  env.HOSTNAME = pod.name
  env.POD_IP = podIp
  const firstPort = container.ports[0] ?? pod.ports[0]
  if (firstPort !== undefined) env.PORT = String(firstPort.containerPort)
  // Assigned in reverse so that, for a shared name, the container's own ports and earlier ones win.
  for (const port of [...[...pod.ports].reverse(), ...[...container.ports].reverse()]) {
    if (port.name !== undefined && port.name !== '') env[`PORT_${envNameSuffix(port.name)}`] = String(port.containerPort)
  }
  for (const mount of container.mounts) env[`SHOAL_VOLUME_${envNameSuffix(mount.name)}`] = mount.hostPath
  // Cluster DNS as HOST:PORT (a process cannot be given a resolver, and it may not be on port 53), and its search list.
  if (pod.dnsServers.length > 0) env.SHOAL_DNS = pod.dnsServers[0]!
  if (pod.dnsSearches.length > 0) env.SHOAL_DNS_SEARCH = pod.dnsSearches.join(' ')
  for (const { name, value } of container.env) env[name] = value
  return env
}

export interface Spawned {
  child: ChildProcess
  /** Listened to from the spawn on: a short run may end before its record is written. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Spawns in a new process group (detached) and resolves once the program runs, or rejects why it could not. */
export function spawnDetached(program: string, args: string[], options: { cwd: string; env: Record<string, string>; stdio: ['ignore', number, number] }): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { ...options, detached: true })
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((onExit) => child.once('exit', (code, signal) => onExit({ code, signal })))
    child.once('error', reject)
    child.once('spawn', () => {
      child.off('error', reject)
      child.on('error', () => undefined) // a failed kill() later; stops are done by process group
      // The agent must be able to exit (or be killed) while its runs go on.
      child.unref()
      resolve({ child, exit })
    })
  })
}
