import * as core from '@actions/core'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { startProcess } from './process.js'
import { ClassifiedError, classifyDockerOutput, type Outcome } from '../model/errors.js'

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

export interface MustRunOptions extends RunOptions {
  /** how a failure is treated, from the whole output and its last error lines; default: by the error lines */
  classify?: (output: string, errorText: string) => Outcome
}

/** Quotes an argv for display, so a printed command can be pasted into a shell. */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')
}

/**
 * The only door to the docker CLI. `probe` runs read-only commands even in dry-run;
 * `run` changes state, so in dry-run it prints the exact command and runs nothing.
 */
export class Docker {
  /** every command `run` was asked for, in order: the plan a dry-run prints */
  readonly planned: string[] = []

  constructor(readonly dryRun: boolean) {}

  async probe(args: string[]): Promise<DockerResult> {
    return this.exec(args, {})
  }

  async run(args: string[], options: RunOptions = {}): Promise<DockerResult> {
    const line = `docker ${shellQuote(args)}${options.input !== undefined ? ' < (secret on stdin)' : ''}`
    this.planned.push(line)
    if (this.dryRun) {
      core.info(`[dry-run] ${line}`)
      return { code: 0, stdout: '', stderr: '' }
    }
    return this.exec(args, options)
  }

  /** Like `run`, but a non-zero exit becomes a ClassifiedError built from the command's last error lines. */
  async mustRun(what: string, args: string[], options: MustRunOptions = {}): Promise<DockerResult> {
    const result = await this.run(args, options)
    if (result.code !== 0 && !result.stopped) {
      const output = `${result.stdout}\n${result.stderr}`
      const reason = lastErrorLines(result.stderr || result.stdout)
      const outcome = options.classify ? options.classify(output, reason) : classifyDockerOutput(reason)
      throw new ClassifiedError(`${what} failed: ${reason}`, outcome)
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

/** Where the docker CLI keeps config.json (logins, the current context). */
export function dockerConfigDir(env: NodeJS.ProcessEnv): string {
  return env.DOCKER_CONFIG || join(homedir(), '.docker')
}
