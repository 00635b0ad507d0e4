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

const resourceHelp = `
resource commands (get, describe, create, apply, delete, scale, set, rollout, rolling-update, logs) talk to a peer's
Kubernetes API, the one kubectl uses. Resource types are what the server lists
(pods/pod/po, replicationcontrollers/rc, replicasets/rs, deployments/deploy, services/svc, namespaces/ns,
nodes/no, endpoints/ep, events/ev, ...); TYPE/NAME works too. Flags:
  -n, --namespace NS        the namespace (default: the kubeconfig context's, else default)
  -A, --all-namespaces      list across namespaces
  -l, --selector SEL        label selector, e.g. name=frontend,tier!=db
  --field-selector SEL      field selector, e.g. spec.nodeName=host-a
  -o, --output FORMAT       wide, json, yaml or name
  -w, --watch               keep printing changes (get)
  -f, --filename PATH       a manifest, a directory of them, or - (YAML or JSON, --- separated)
  --kubeconfig FILE, --data-dir DIR, --context NAME   which cluster (default: ~/.shoal/kubeconfig)`

const commands: Record<string, Command> = {
  up: { summary: 'start this host\'s peer (bootstrap, join, or rejoin)', run: async (args) => (await import('./up.js')).up(args) },
  members: { summary: 'list the peers of the cluster', run: async (args) => (await import('./members.js')).members(args) },
  leave: { summary: 'remove a peer from the cluster cleanly and stop it', run: async (args) => (await import('./members.js')).leave(args) },
  get: { summary: 'list objects as a table (-o wide|json|yaml|name, -l, -A, -w)', run: async (args) => (await import('./get.js')).get(args) },
  describe: { summary: 'show objects in detail, with their events', run: async (args) => (await import('./describe.js')).describe(args) },
  create: { summary: 'create the objects in -f FILE|DIR|-, or: create deployment NAME --image=IMAGE [--replicas N] [--port P]', run: async (args) => (await import('./write-commands.js')).create(args) },
  apply: { summary: 'create or update the objects in -f FILE|DIR|- (three-way merge)', run: async (args) => (await import('./apply.js')).apply(args) },
  delete: { summary: 'delete objects by name, -l selector, --all, or -f FILE', run: async (args) => (await import('./write-commands.js')).remove(args) },
  scale: { summary: 'set the replicas of a controller: scale rc|rs|deployment NAME --replicas=N', run: async (args) => (await import('./write-commands.js')).scale(args) },
  set: { summary: 'set image (deployment|rc|rs|pod)/NAME CONTAINER=IMAGE ...: change images in a pod template', run: async (args) => (await import('./set-image.js')).set(args) },
  rollout: { summary: 'rollout status|history|undo|pause|resume|restart deployment/NAME', run: async (args) => (await import('./rollout.js')).rollout(args) },
  'rolling-update': { summary: 'replace an RC\'s pods one at a time: rolling-update RC --image=IMAGE [--update-period 1m0s] [--rollback]', run: async (args) => (await import('./rolling-update.js')).rollingUpdate(args) },
  logs: { summary: "print a pod's logs: logs [-f] [-c CONTAINER] [--tail N] [--since DURATION] [--previous] [--timestamps] POD", run: async (args) => (await import('./write-commands.js')).logs(args) },
  cordon: { summary: 'mark a node unschedulable: cordon NODE', run: async (args) => (await import('./node-commands.js')).cordon(args) },
  uncordon: { summary: 'mark a node schedulable again: uncordon NODE', run: async (args) => (await import('./node-commands.js')).uncordon(args) },
  drain: { summary: 'cordon a node and delete its pods (--force: even those without a controller)', run: async (args) => (await import('./node-commands.js')).drain(args) },
  kubeconfig: { summary: 'print a kubeconfig for this peer (--server URL to point elsewhere)', run: async (args) => (await import('./kubeconfig-command.js')).kubeconfig(args) },
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
      for (const [name, c] of Object.entries(commands)) console.log(`  ${name.padEnd(14)} ${c.summary}`)
      console.log(resourceHelp)
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
