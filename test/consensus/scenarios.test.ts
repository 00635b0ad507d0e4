// Runs every test/consensus/testdata/*.txt scenario: blocks of
//   command args
//   ----
//   expected output
// separated by blank lines; `#` lines are comments. SCENARIO_REWRITE=1 rewrites
// the expected outputs from what the code prints (then read the diff!).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Scenario } from './scenario.js'

const dir = new URL('./testdata/', import.meta.url).pathname

interface Block {
  line: number
  command: string
  expected: string
  /** Lines [line - 1, end) hold the block in the file. */
  end: number
}

function parse(text: string): Block[] {
  const lines = text.split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (line.trim() === '' || line.startsWith('#')) continue
    if (lines[i + 1] !== '----') throw new Error(`line ${i + 1}: expected ---- after "${line}"`)
    let j = i + 2
    const expected: string[] = []
    while (j < lines.length && lines[j] !== '') expected.push(lines[j++]!)
    blocks.push({ line: i + 1, command: line, expected: expected.join('\n'), end: j })
    i = j
  }
  return blocks
}

describe('Raft scenarios (testdata/*.txt)', () => {
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()) {
    it(file, () => {
      const path = join(dir, file)
      const text = readFileSync(path, 'utf8')
      const scenario = new Scenario()
      const lines = text.split('\n')
      const out: string[] = []
      let copied = 0
      let failure: string | null = null
      for (const block of parse(text)) {
        const [command, ...args] = block.command.trim().split(/\s+/)
        const actual = scenario.run(command!, args)
        out.push(...lines.slice(copied, block.line - 1), block.command, '----', ...actual.split('\n'))
        copied = block.end
        if (failure === null && actual !== block.expected) {
          failure = `${file}:${block.line}: ${block.command}\n--- expected\n${block.expected}\n--- actual\n${actual}`
        }
      }
      if (process.env.SCENARIO_REWRITE === '1') {
        writeFileSync(path, [...out, ...lines.slice(copied)].join('\n'))
        return
      }
      expect(failure, failure ?? '').toBeNull()
    })
  }
})
