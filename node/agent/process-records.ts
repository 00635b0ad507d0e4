// What the process runtime keeps on disk so a restarted agent (the old one
// SIGKILLed) rebuilds its view: one file per pod and one per run, under
//   <stateDir>/pods/<uid>/pod.json                  the pod and its IP
//   <stateDir>/pods/<uid>/work/                     default working directory
//   <stateDir>/pods/<uid>/runs/<name>.<attempt>.*   pid file (.json), log (.log, .log.1), FIFOs
// Files are replaced by rename, so a crash never leaves half a record.
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { podRecordPath } from './loopback-ips.js'
import type { ContainerObservation } from './runtime.js'

export interface PodRecord {
  uid: string
  namespace: string
  name: string
  podIp: string
  /** The pod's grace period, for stopping it after a restart when its spec is gone from the store. */
  terminationGracePeriodMs?: number
}

export interface RunRecord {
  containerName: string
  attempt: number
  image: string
  /** The program's resolved path (the observation's imageId). */
  program: string
  pid: number
  /** /proc/<pid>/stat field 22: with the pid, names this process and no later one. */
  pidStartTime: string
  startedAt: string
  finishedAt?: string
  exitCode?: number
  reason?: string
  /** The environment and directory the run got: exec probes run with the same. */
  env: Record<string, string>
  workingDir: string
}

export function podDir(stateDir: string, uid: string): string {
  return join(stateDir, 'pods', uid)
}

export function podWorkDir(stateDir: string, uid: string): string {
  return join(podDir(stateDir, uid), 'work')
}

export function runsDir(stateDir: string, uid: string): string {
  return join(podDir(stateDir, uid), 'runs')
}

export function runBase(stateDir: string, uid: string, containerName: string, attempt: number): string {
  return join(runsDir(stateDir, uid), `${containerName}.${attempt}`)
}

export const runFiles = (base: string) => ({
  record: `${base}.json`,
  log: `${base}.log`,
  stdoutFifo: `${base}.stdout.fifo`,
  stderrFifo: `${base}.stderr.fifo`,
})

async function writeJsonAtomically(path: string, value: unknown): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`
  await writeFile(temporary, JSON.stringify(value))
  await rename(temporary, path)
}

export async function writePodRecord(stateDir: string, record: PodRecord): Promise<void> {
  await mkdir(runsDir(stateDir, record.uid), { recursive: true })
  await writeJsonAtomically(podRecordPath(stateDir, record.uid), record)
}

export async function writeRunRecord(stateDir: string, uid: string, record: RunRecord): Promise<void> {
  await writeJsonAtomically(runFiles(runBase(stateDir, uid, record.containerName, record.attempt)).record, record)
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T
  } catch {
    return undefined
  }
}

export interface StoredPod {
  pod: PodRecord
  runs: RunRecord[]
}

/** Every pod and run on disk (unreadable files are skipped: a crash between mkdir and rename). */
export async function readStoredPods(stateDir: string): Promise<StoredPod[]> {
  const uids = await readdir(join(stateDir, 'pods')).catch(() => [] as string[])
  const pods: StoredPod[] = []
  for (const uid of uids) {
    const pod = await readJson<PodRecord>(podRecordPath(stateDir, uid))
    if (pod === undefined) continue
    const names = await readdir(runsDir(stateDir, uid)).catch(() => [] as string[])
    const runs: RunRecord[] = []
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const run = await readJson<RunRecord>(join(runsDir(stateDir, uid), name))
      if (run !== undefined) runs.push(run)
    }
    runs.sort((a, b) => a.attempt - b.attempt)
    pods.push({ pod, runs })
  }
  return pods
}

/** Deletes one run's files (record, logs, FIFOs). */
export async function removeRunFiles(stateDir: string, uid: string, containerName: string, attempt: number): Promise<void> {
  const prefix = `${containerName}.${attempt}.`
  const dir = runsDir(stateDir, uid)
  const names = await readdir(dir).catch(() => [] as string[])
  await Promise.all(names.filter((n) => n.startsWith(prefix)).map((n) => rm(join(dir, n), { force: true })))
}

export async function removePodFiles(stateDir: string, uid: string): Promise<void> {
  // pod.json goes first: from then on the IP lease counts as stale even if the rest fails.
  await rm(podRecordPath(stateDir, uid), { force: true })
  await rm(podDir(stateDir, uid), { recursive: true, force: true })
}

/** What the runtime reports of a run: running until its exit is recorded. */
export function observationOf(record: RunRecord): ContainerObservation {
  return {
    name: record.containerName,
    containerId: `process://${record.pid}`,
    attempt: record.attempt,
    image: record.image,
    imageId: record.program,
    state: record.exitCode === undefined ? 'running' : 'exited',
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    exitCode: record.exitCode,
    reason: record.reason,
  }
}
