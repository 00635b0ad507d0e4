import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const entry = new URL('../../node/cli/main.ts', import.meta.url).pathname

function shoal(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('shoal CLI', () => {
  it('prints its version', () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    expect(shoal('--version')).toMatchObject({ status: 0, stdout: `shoal ${version}\n` })
  })

  it('rejects an unknown command with one clear line and a non-zero exit', () => {
    const r = shoal('frobnicate')
    expect(r.status).toBe(2)
    expect(r.stderr).toBe("shoal: unknown command 'frobnicate'; run 'shoal help' for the list\n")
  })
})
