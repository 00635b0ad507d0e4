// Run by process-runtime.test.ts as its own process (node --import tsx):
// starts one pod through a ProcessRuntime, prints what it started as one JSON
// line, then idles until the test SIGKILLs it (the agent dying under its pods).
// Usage: process-runtime-child.ts <stateDir> <leaseDir> <uid>
import { ProcessRuntime } from '../../node/agent/process-runtime.js'

const [stateDir, leaseDir, uid] = process.argv.slice(2)
if (stateDir === undefined || leaseDir === undefined || uid === undefined) throw new Error('usage: process-runtime-child.ts <stateDir> <leaseDir> <uid>')
const runtime = new ProcessRuntime({ nodeName: 'child-node', stateDir, leaseDir })
const pod = { uid, namespace: 'default', name: 'adopted', ports: [{ containerPort: 8080, protocol: 'TCP' as const }], dnsServers: [], dnsSearches: [] }
const sandbox = await runtime.ensureSandbox(pod)
const observation = await runtime.startContainer(pod, {
  name: 'ticker',
  image: 'sh',
  imagePullPolicy: 'IfNotPresent',
  // Prints a numbered line every 100 ms, before and after the agent dies.
  args: ['-c', 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.1; done'],
  env: [],
  ports: [{ containerPort: 8080, protocol: 'TCP' }],
  mounts: [],
  attempt: 0,
})
process.stdout.write(JSON.stringify({ podIp: sandbox.podIp, containerId: observation.containerId }) + '\n')
setInterval(() => undefined, 60_000)
