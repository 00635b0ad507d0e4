// Runs an agent started but never recorded. The run record is written just
// after the spawn; an agent SIGKILLed in between leaves a process that no
// record names, so its restarted self cannot adopt it and starts the container
// again, which then finds the pod's port taken and crash-loops (seen in the
// Deployment failover test). Every run therefore carries a marker in its
// environment; at adoption, a marked process group that no record names is
// killed, and the agent starts that container afresh.
import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'

/** The environment variable that names a run: `RUNTIME/UID/ATTEMPT/CONTAINER`. */
export const runMarkerEnv = 'SHOAL_RUN'

/** One id per runtime state directory, so peers sharing a host never touch each other's runs. */
export function runtimeIdOf(stateDir: string): string {
  return createHash('sha256').update(stateDir).digest('hex').slice(0, 16)
}

export function runMarker(runtimeId: string, uid: string, containerName: string, attempt: number): string {
  return `${runtimeId}/${uid}/${attempt}/${containerName}`
}

export interface MarkedProcess {
  pid: number
  uid: string
  containerName: string
  attempt: number
}

/** The process-group leaders on this host whose environment names a run of this runtime. */
export async function markedGroupLeaders(runtimeId: string): Promise<MarkedProcess[]> {
  const found: MarkedProcess[] = []
  const prefix = `${runMarkerEnv}=${runtimeId}/`
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue
    // Only group leaders: a run's own children inherit the marker but belong to its group.
    if ((await processGroupOf(pid)) !== pid) continue
    const environ = await readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '')
    const marker = environ.split('\0').find((v) => v.startsWith(prefix))
    if (marker === undefined) continue
    const [uid, attemptText, ...name] = marker.slice(prefix.length).split('/')
    if (uid === undefined || attemptText === undefined || name.length === 0) continue
    found.push({ pid, uid, attempt: Number(attemptText), containerName: name.join('/') })
  }
  return found
}

async function processGroupOf(pid: number): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'latin1').catch(() => undefined)
  if (stat === undefined) return undefined
  // After the command name in parentheses: state, ppid, pgrp.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[2])
}

/** Kills the groups of marked runs whose pid no record holds; returns what it killed. */
export async function killUnrecordedRuns(runtimeId: string, recordedPids: ReadonlySet<number>): Promise<MarkedProcess[]> {
  const killed: MarkedProcess[] = []
  for (const p of await markedGroupLeaders(runtimeId)) {
    if (recordedPids.has(p.pid)) continue
    try {
      process.kill(-p.pid, 'SIGKILL')
      killed.push(p)
    } catch {
      // Gone meanwhile.
    }
  }
  return killed
}
