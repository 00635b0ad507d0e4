// One line of progress: on a terminal it is redrawn in place with a spinner
// and the seconds elapsed; elsewhere (a pipe, a test) each new text is printed
// once on its own line.
const spinnerFrames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
const redrawEveryMs = 100

export class Progress {
  private text = 'starting'
  private printed = ''
  private frame = 0
  private readonly startedAt = Date.now()
  private timer: ReturnType<typeof setInterval> | null = null
  private readonly tty: boolean

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    this.tty = out.isTTY === true
    if (this.tty) this.timer = setInterval(() => this.redraw(), redrawEveryMs)
  }

  update(text: string): void {
    this.text = text
    if (this.tty) this.redraw()
    else if (text !== this.printed) {
      this.printed = text
      this.out.write(`  ${text}\n`)
    }
  }

  /** Ends the line with a check mark and the final text. */
  finish(text: string): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    const line = `✓ ${text} (${this.elapsedSeconds()} s)`
    this.out.write(this.tty ? `\r\x1b[2K${line}\n` : `${line}\n`)
  }

  /** Stops redrawing and clears the line (the work it showed was abandoned). */
  cancel(): void {
    if (this.timer === null) return
    clearInterval(this.timer)
    this.timer = null
    if (this.tty) this.out.write('\r\x1b[2K')
  }

  /** Prints a line above the progress line without disturbing it. */
  note(line: string): void {
    this.out.write(this.tty ? `\r\x1b[2K${line}\n` : `${line}\n`)
    if (this.tty) this.redraw()
  }

  private elapsedSeconds(): string {
    return ((Date.now() - this.startedAt) / 1000).toFixed(1)
  }

  private redraw(): void {
    if (this.timer === null) return
    this.frame = (this.frame + 1) % spinnerFrames.length
    // A terminal that does not say its width (columns 0) gets 100.
    const columns = this.out.columns || 100
    const line = `${spinnerFrames[this.frame]} ${this.text} [${this.elapsedSeconds()} s]`
    this.out.write(`\r\x1b[2K${line.slice(0, columns - 1)}`)
  }
}
