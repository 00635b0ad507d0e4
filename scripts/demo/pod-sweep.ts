// The pods' processes still running under a folder of peer data dirs. The
// process runtime records every run it starts (pid and start time, under
// <dataDir>/runtime/process/). A peer that was SIGKILLed leaves its runs
// running on purpose (a restarted peer adopts them); when the demo ends nobody
// will, so it ends them here, by process group (each run leads its own), and
// only while the pid still names the process that was recorded.
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { readStoredPods } from '../../node/agent/process-records.js'
import { isSameProcess, signalProcessGroup } from '../../node/agent/process-tree.js'

export interface LiveRun {
  pid: number
  /** The data dir's name: the peer that started it. */
  peer: string
  /** `peer2 default/frontend-x7k2p php-redis` */
  what: string
}

/** Runs recorded under `root` (a folder of data dirs) whose process still lives. */
export async function liveRuns(root: string): Promise<LiveRun[]> {
  const found: LiveRun[] = []
  for (const peer of await readdir(root).catch(() => [] as string[])) {
    for (const { pod, runs } of await readStoredPods(join(root, peer, 'runtime', 'process'))) {
      for (const run of runs) {
        if (run.exitCode !== undefined || run.pidStartTime === '' || !(await isSameProcess(run.pid, run.pidStartTime))) continue
        found.push({ pid: run.pid, peer, what: `${peer} ${pod.namespace}/${pod.name} ${run.containerName}` })
      }
    }
  }
  return found
}

/** SIGTERM to each live run's process group, SIGKILL to what still runs after `graceMs`; returns what was found. */
export async function endLiveRuns(root: string, graceMs = 3000): Promise<LiveRun[]> {
  const runs = await liveRuns(root)
  for (const run of runs) signalProcessGroup(run.pid, 'SIGTERM')
  const deadline = Date.now() + graceMs
  while ((await liveRuns(root)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  for (const run of await liveRuns(root)) signalProcessGroup(run.pid, 'SIGKILL')
  return runs
}
