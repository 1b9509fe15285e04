import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

export interface ProcessResult {
  code: number
  stdout: string
  stderr: string
  /** the run was stopped by `stop` (cancellation or a time bound), not by the command itself */
  stopped: boolean
}

export interface ProcessOptions {
  /** written to stdin, then stdin is closed (passwords travel only this way) */
  input?: string
  /** print the output live */
  stream?: boolean
  /** every complete output line, stdout and stderr alike, as it arrives */
  onLine?: (line: string) => void
  env?: NodeJS.ProcessEnv
}

/** A running command that can be stopped with everything it started. */
export interface RunningProcess {
  done: Promise<ProcessResult>
  stop: () => Promise<void>
}

const running = new Set<RunningProcess>()

/**
 * Starts a command. `stop` ends the whole process tree, not just the child: the docker CLI runs
 * `docker-buildx` in a process group of its own and outlives a SIGTERM, so killing only the CLI
 * would leave the build (and its cache export) running.
 */
export function startProcess(command: string, args: string[], options: ProcessOptions = {}): RunningProcess {
  const child = spawn(command, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let stopped = false
  const pending = { out: '', err: '' }
  const feed = (which: 'out' | 'err', chunk: Buffer) => {
    const text = chunk.toString('utf8')
    if (which === 'out') stdout += text
    else stderr += text
    if (options.stream) (which === 'out' ? process.stdout : process.stderr).write(text)
    if (!options.onLine) return
    const parts = (pending[which] + text).split(/\r?\n/)
    pending[which] = parts.pop() ?? ''
    for (const line of parts) options.onLine(line)
  }
  child.stdout.on('data', (c: Buffer) => feed('out', c))
  child.stderr.on('data', (c: Buffer) => feed('err', c))
  child.stdin.on('error', () => undefined)
  child.stdin.end(options.input ?? '')

  const done = new Promise<ProcessResult>((resolve) => {
    child.on('error', (error) => {
      stderr += `${error.message}\n`
      resolve({ code: 127, stdout, stderr, stopped })
    })
    child.on('close', (code, signal) => {
      for (const which of ['out', 'err'] as const) if (pending[which]) options.onLine?.(pending[which])
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, stopped })
    })
  })
  const handle: RunningProcess = {
    done,
    stop: async () => {
      stopped = true
      if (child.pid !== undefined) await killTree(child.pid, done)
      await done
    }
  }
  running.add(handle)
  void done.then(() => running.delete(handle))
  return handle
}

/** Stops every command still running (cancellation of the job). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()))
}

/** Pids of every descendant of `pid`, children first, read from /proc (empty where there is none). */
export function descendants(pid: number, procRoot = '/proc'): number[] {
  const children = new Map<number, number[]>()
  let entries: string[] = []
  try {
    entries = readdirSync(procRoot).filter((e) => /^\d+$/.test(e))
  } catch {
    return []
  }
  for (const entry of entries) {
    try {
      // the command name is in parentheses and may hold spaces: the ppid follows the last ')'
      const stat = readFileSync(`${procRoot}/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)])
    } catch {
      // the process ended while we looked
    }
  }
  const found: number[] = []
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      found.push(c)
      walk(c)
    }
  }
  walk(pid)
  return found
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig)
    } catch {
      // already gone
    }
  }
}

/**
 * SIGINT first (buildx then cancels the build in BuildKit and leaves cleanly), SIGKILL to whatever
 * is left after a grace period.
 */
async function killTree(pid: number, done: Promise<unknown>, graceMs = 5_000): Promise<void> {
  const tree = [pid, ...descendants(pid)]
  signal(tree.slice(1), 'SIGINT')
  signal([pid], 'SIGINT')
  const ended = await Promise.race([done.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref())])
  // the CLI may have ended while a plugin it started goes on: look again
  const left = [pid, ...tree.slice(1), ...descendants(pid)].filter((p) => isAlive(p))
  if (!ended || left.length > 0) signal(left, 'SIGKILL')
}

/** Running, and not a zombie waiting for a parent that may never reap it. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return true
  }
}
