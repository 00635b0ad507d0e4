// Controllers write many objects per round: in Raft entries of at most
// batchCommandsMax commands each, sent together, every command with its own
// outcome. A batch that fails as a whole (no quorum, leadership lost) gives
// its commands that error as outcome, so the others still count.
import { batchCommandsMax, submit, type Submitter } from '../api/submit.js'
import type { CommandOutcome, StoreCommand } from '../store/commands.js'

export type BatchOutcome = CommandOutcome | { ok: false; error: Error }

/** Submit `commands` in entries of at most batchCommandsMax; outcomes in the order of `commands`. */
export async function submitInBatches(submitter: Submitter, commands: readonly StoreCommand[]): Promise<BatchOutcome[]> {
  const chunks: StoreCommand[][] = []
  for (let k = 0; k < commands.length; k += batchCommandsMax) chunks.push(commands.slice(k, k + batchCommandsMax))
  const settled = await Promise.allSettled(chunks.map((chunk) => submit(submitter, { op: 'obj.batch', commands: chunk })))
  return settled.flatMap((s, k): BatchOutcome[] => {
    if (s.status === 'fulfilled') return s.value.outcomes
    const error = s.reason instanceof Error ? s.reason : new Error(String(s.reason))
    return chunks[k]!.map(() => ({ ok: false as const, error }))
  })
}

/**
 * Wait until this peer's store holds everything committed before now: an empty
 * entry through Raft, answered once applied here. A new leader may still have
 * committed entries of the old one to apply; a round that creates or deletes
 * from such a stale view would do the old leader's work a second time.
 */
export async function catchUp(submitter: Submitter): Promise<void> {
  await submit(submitter, { op: 'obj.batch', commands: [] })
}

/** Why a command failed, in one line. */
export function failureMessage(outcome: BatchOutcome): string {
  if (outcome.ok) return ''
  return 'error' in outcome ? outcome.error.message : outcome.failure.message
}
