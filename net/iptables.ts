// Running iptables-restore / iptables-save / sysctl for the kernel proxy,
// optionally inside another network namespace (commandPrefix, e.g.
// ['ip', 'netns', 'exec', NAME]). Callers serialize: KernelProxy runs one
// command at a time.
import { spawn } from 'node:child_process'

export interface CommandOutput {
  code: number
  stdout: string
  stderr: string
}

export interface CommandRunnerOptions {
  /** Prepended to every command, e.g. ['ip', 'netns', 'exec', 'ns1']. */
  commandPrefix: string[]
  /** A command still running after this is killed (its batch fails as a whole). */
  commandTimeoutMs: number
}

/** iptables-restore (or another command we depend on) failed; the kernel state is what it was before the batch. */
export class IptablesCommandError extends Error {
  override readonly name = 'IptablesCommandError'
  constructor(
    readonly command: string,
    readonly code: number,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${code}): ${stderr.trim().split('\n').slice(0, 3).join(' | ')}`)
  }
}

/** Runs one command to completion with optional stdin; never rejects (a spawn failure is code 127). */
export function runCommand(argv: string[], stdin: string | undefined, timeoutMs: number): Promise<CommandOutput> {
  return new Promise((resolve) => {
    const [command, ...args] = argv
    const child = spawn(command!, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${timeoutMs} ms]`
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('error', (error) => {
      clearTimeout(timer)
      resolve({ code: 127, stdout, stderr: stderr + String(error) })
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr })
    })
    // EPIPE if the command died early: its exit code says what went wrong.
    child.stdin.on('error', () => {})
    child.stdin.end(stdin ?? '')
  })
}

export class IptablesRunner {
  constructor(private readonly options: CommandRunnerOptions) {}

  private async checked(argv: string[], stdin?: string): Promise<string> {
    const full = [...this.options.commandPrefix, ...argv]
    const result = await runCommand(full, stdin, this.options.commandTimeoutMs)
    if (result.code !== 0) throw new IptablesCommandError(full.join(' '), result.code, result.stderr)
    return result.stdout
  }

  /** Applies a batch atomically per table, leaving every chain it does not name as it was. */
  async restore(batch: string): Promise<void> {
    if (batch === '') return
    // -w: iptables-legacy takes the machine-wide xtables lock; iptables-nft accepts and ignores it.
    await this.checked(['iptables-restore', '--noflush', '-w', '5'], batch)
  }

  async save(table: 'nat' | 'filter'): Promise<string> {
    return this.checked(['iptables-save', '-t', table])
  }

  async readSysctl(key: string): Promise<string> {
    return (await this.checked(['sysctl', '-n', key])).trim()
  }

  async writeSysctl(key: string, value: string): Promise<void> {
    await this.checked(['sysctl', '-q', '-w', `${key}=${value}`])
  }
}
