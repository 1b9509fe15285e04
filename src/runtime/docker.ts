import * as core from '@actions/core'
import { startProcess } from './process.js'
import { ClassifiedError, classifyDockerOutput } from '../model/errors.js'

export interface DockerResult {
  code: number
  stdout: string
  stderr: string
  /** stopped by `onLine`'s stop (a time bound), not ended by docker itself */
  stopped?: boolean
}

export interface RunOptions {
  /** written to the command's stdin (passwords travel only this way) */
  input?: string
  /** extra environment for this command alone (build secrets travel this way, never in argv) */
  env?: Record<string, string>
  /** echo the command and print its output live (builds); otherwise it runs quietly */
  stream?: boolean
  /** sees each output line as it comes; `stop` ends the command and everything it started */
  onLine?: (line: string, stop: () => void) => void
}

/** Quotes an argv for display, so a printed command can be pasted into a shell. */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')
}

/**
 * The only door to the docker CLI. `probe` is for the read-only questions a plan asks (a dry run
 * asks them too); `run` carries out a planned command, which a dry run never does.
 */
export class Docker {
  async probe(args: string[]): Promise<DockerResult> {
    return this.exec(args, {})
  }

  async run(args: string[], options: RunOptions = {}): Promise<DockerResult> {
    return this.exec(args, options)
  }

  /** Like `run`, but a non-zero exit becomes a ClassifiedError built from the command's last error lines. */
  async mustRun(what: string, args: string[], options: RunOptions = {}): Promise<DockerResult> {
    const result = await this.run(args, options)
    if (result.code !== 0 && !result.stopped) {
      const reason = lastErrorLines(result.stderr || result.stdout)
      throw new ClassifiedError(`${what} failed: ${reason}`, classifyDockerOutput(reason))
    }
    return result
  }

  private async exec(args: string[], options: RunOptions): Promise<DockerResult> {
    if (options.stream) core.info(`[command]docker ${shellQuote(args)}`)
    const onLine = options.onLine
    let stoppedByCaller = false
    const child = startProcess('docker', args, {
      input: options.input,
      env: options.env && { ...process.env, ...options.env },
      stream: options.stream,
      onLine:
        onLine &&
        ((line) =>
          onLine(line, () => {
            stoppedByCaller = true
            void child.stop()
          }))
    })
    const { code, stdout, stderr } = await child.done
    return { code, stdout, stderr, stopped: stoppedByCaller }
  }
}

/** What a failed docker command said last: buildx ends with `ERROR: ...`, the CLI with `Error ...`. */
export function lastErrorLines(text: string): string {
  const all = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
  const errors = all.filter((l) => /^(error|ERROR)\b/.test(l) || /^#\d+ ERROR:/.test(l))
  const chosen = errors.length ? errors.slice(-2) : all.slice(-2)
  return chosen.join(' | ').slice(0, 600) || 'no output'
}
