// Processes as /proc shows them: whether a pid is still the process we
// started (pids are reused, so a pid file also keeps the process's start
// time), and stopping a whole process group. Zombies count as gone: on hosts
// whose init does not reap orphans (some sandboxes) they linger forever.
import { readdir, readFile } from 'node:fs/promises'

/** How often a stop or an exit wait looks again. */
export const processPollIntervalMs = 25

interface ProcStat {
  state: string
  /** Process group id. */
  pgrp: number
  /** Start time in clock ticks since boot (field 22): with the pid, names one process. */
  startTime: string
}

/** Fields of /proc/<pid>/stat; undefined when the process does not exist. */
async function readProcStat(pid: number): Promise<ProcStat | undefined> {
  let text: string
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  const state = fields[0]
  const pgrp = Number(fields[2])
  const startTime = fields[19]
  if (state === undefined || startTime === undefined || !Number.isInteger(pgrp)) return undefined
  return { state, pgrp, startTime }
}

/** The start time of a live (not zombie) process, to store next to its pid. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  const stat = await readProcStat(pid)
  return stat === undefined || stat.state === 'Z' || stat.state === 'X' ? undefined : stat.startTime
}

/** True while `pid` is the live process that started at `startTime` (not a reuse of its pid). */
export async function isSameProcess(pid: number, startTime: string): Promise<boolean> {
  return (await processStartTime(pid)) === startTime
}

/** Live (not zombie) members of a process group. */
export async function processGroupMembers(pgid: number): Promise<number[]> {
  // Signal 0 checks cheaply whether the group exists at all (zombies included).
  if (!signalProcessGroup(pgid, 0)) return []
  let entries: string[]
  try {
    entries = await readdir('/proc')
  } catch {
    return []
  }
  const members: number[] = []
  for (const entry of entries) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid <= 0) continue
    const stat = await readProcStat(pid)
    if (stat !== undefined && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') members.push(pid)
  }
  return members
}

/** Sends a signal to a whole group; false when no process is in it any more. */
export function signalProcessGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until no live process is left in the group; false if `timeoutMs` passed first. */
export async function waitForGroupExit(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if ((await processGroupMembers(pgid)).length === 0) return true
    if (Date.now() >= deadline) return false
    await sleep(processPollIntervalMs)
  }
}

/** How long a SIGKILLed group may take to disappear before we give up waiting. */
const killSettleMs = 5_000

/**
 * SIGTERM to every process of the group, SIGKILL to what is left after
 * `gracePeriodMs`; resolves once none is left (or the kill did not settle).
 */
export async function stopProcessGroup(pgid: number, gracePeriodMs: number): Promise<void> {
  if (gracePeriodMs > 0 && signalProcessGroup(pgid, 'SIGTERM')) {
    if (await waitForGroupExit(pgid, gracePeriodMs)) return
  }
  signalProcessGroup(pgid, 'SIGKILL')
  await waitForGroupExit(pgid, killSettleMs)
}
