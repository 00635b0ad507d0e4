// shoal kubeconfig: print a kubeconfig for a peer (the local one, the one whose
// --data-dir is given, or a --kubeconfig file's context), optionally pointing
// at another server URL: for kubectl on another machine, say.
import { readFile } from 'node:fs/promises'
import { parseKubeconfig, renderKubeconfig } from '../security/kubeconfig.js'
import { parse, UsageError } from './args.js'
import { kubeconfigPath } from './client.js'

export async function kubeconfig(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { kubeconfig: { type: 'string' }, 'data-dir': { type: 'string' }, context: { type: 'string' }, server: { type: 'string' } })
  if (positionals.length > 0) throw new UsageError(`kubeconfig takes no arguments (got "${positionals.join(' ')}")`)
  if (values.server !== undefined && !/^https?:\/\/[^/]+/.test(values.server)) throw new UsageError(`--server wants a URL such as https://10.0.0.5:7947, not "${values.server}"`)
  const path = kubeconfigPath(values)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch {
    throw new UsageError(`no kubeconfig at ${path}: run \`shoal up\` (it writes one into its data dir), or pass --data-dir DIR or --kubeconfig FILE`)
  }
  const k = parseKubeconfig(text, { path, ...(values.context === undefined ? {} : { context: values.context }) })
  if (k.caPem === undefined || k.token === undefined) throw new UsageError(`the kubeconfig at ${path} has no cluster CA or no token, so it is not one a peer wrote`)
  process.stdout.write(
    renderKubeconfig({
      clusterName: k.contextName,
      server: values.server ?? k.server,
      caPem: k.caPem,
      token: k.token,
      userName: 'admin',
      contextName: k.contextName,
      ...(k.namespace === 'default' ? {} : { namespace: k.namespace }),
    }),
  )
  return 0
}
