#!/usr/bin/env node
// The `shoal` command. The polyfill must load before anything that loads libp2p.
import '../../net/polyfill.js'
import { existsSync, readFileSync } from 'node:fs'

interface Command {
  summary: string
  run: (args: string[]) => Promise<number> | number
}

/** The nearest package.json above this file: the same from `dist/` and from source. */
function packageVersion(): string {
  for (let dir = new URL('.', import.meta.url); dir.pathname !== '/'; dir = new URL('..', dir)) {
    const candidate = new URL('package.json', dir)
    if (existsSync(candidate)) return (JSON.parse(readFileSync(candidate, 'utf8')) as { version: string }).version
  }
  return 'unknown'
}

const commands: Record<string, Command> = {
  up: { summary: 'start this host\'s peer (bootstrap, join, or rejoin)', run: async (args) => (await import('./up.js')).up(args) },
  members: { summary: 'list the peers of the cluster', run: async (args) => (await import('./members.js')).members(args) },
  leave: { summary: 'remove a peer from the cluster cleanly and stop it', run: async (args) => (await import('./members.js')).leave(args) },
  version: {
    summary: 'print the version',
    run: () => {
      console.log(`shoal ${packageVersion()}`)
      return 0
    },
  },
  help: {
    summary: 'list the commands',
    run: () => {
      console.log('usage: shoal COMMAND [ARGS]\n\ncommands:')
      for (const [name, c] of Object.entries(commands)) console.log(`  ${name.padEnd(12)} ${c.summary}`)
      return 0
    },
  },
}

async function main(argv: string[]): Promise<number> {
  const [name = 'help', ...args] = argv
  const command = commands[name === '--version' ? 'version' : name === '--help' || name === '-h' ? 'help' : name]
  if (command === undefined) {
    console.error(`shoal: unknown command '${name}'; run 'shoal help' for the list`)
    return 2
  }
  try {
    return await command.run(args)
  } catch (err) {
    // One clear line: the error's message, not a stack trace.
    console.error(`shoal ${name}: ${(err as Error).message}`)
    return (err as Error).name === 'UsageError' ? 2 : 1
  }
}

process.exitCode = await main(process.argv.slice(2))
