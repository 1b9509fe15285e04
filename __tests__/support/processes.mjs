// Processes the tests and tools start: the one place that records them and stops them.
//
//  trackProcess(pid)        record it in $BROKKR_E2E_PIDFILE (set by e2e global setup), so global
//                           teardown kills it if a test forgets to
//  stopProcesses(victims)   SIGTERM (to the group when it was spawned detached), SIGKILL after a
//                           grace period: the one process-tree killer of the tests and tools
//  killTracked(file)        stopProcesses() of what a pid file still lists
//  run(cmd, args, o)        a command's exit code, output and wall time (never rejects for an exit code)
//  mapLimit(items, n, fn)   fn over items, at most n at once

import { spawn } from 'node:child_process'
import * as fs from 'node:fs'

/** State and start time (clock ticks since boot) of a pid from /proc, or null. */
function procStat(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { state: fields[0], start: fields[19] ?? null } // start: field 22 overall
  } catch {
    return null
  }
}

/** Start time of a pid, or null: with the pid, it names one process even after the pid is reused. */
export const procStartTime = (pid) => procStat(pid)?.start ?? null

const record = (rec) => {
  const file = process.env.BROKKR_E2E_PIDFILE
  if (!file || !rec.pid) return
  try {
    fs.appendFileSync(file, `${JSON.stringify(rec)}\n`)
  } catch {}
}

/**
 * Records a process the tests started, for global teardown. No-op without BROKKR_E2E_PIDFILE.
 * @param {number} pid
 * @param {string} label
 * @param {{group?: boolean}} [o]  group: it was spawned detached; kill its process group
 */
export function trackProcess(pid, label, o = {}) {
  record({ op: 'add', pid, label, group: !!o.group, start: procStartTime(pid) })
}

/** Marks a tracked process as ended. */
function untrackProcess(pid) {
  record({ op: 'remove', pid })
}

/**
 * Stops processes: SIGTERM, then SIGKILL to those still alive after `graceMs` (0: SIGKILL at once).
 * A group (spawned detached) is signalled as a whole while any member lives; a single pid only
 * while its start time matches, so a reused pid is never hit.
 * @param {{pid: number, group?: boolean, start?: string|null, label?: string}[]} victims
 *   start: the start time recorded with the pid (default: read now)
 * @param {{graceMs?: number}} [o]
 * @returns {Promise<{pid: number, label?: string}[]>} the ones that were alive
 */
export async function stopProcesses(victims, { graceMs = 2000 } = {}) {
  const signal = (v, sig) => {
    try {
      process.kill(v.group ? -v.pid : v.pid, sig)
      return true
    } catch {
      return false
    }
  }
  const alive = (v) => {
    if (v.group) return signal(v, 0)
    const st = procStat(v.pid)
    return st !== null && st.state !== 'Z' && st.start === v.start
  }
  const live = victims.map((v) => ({ ...v, start: v.start === undefined ? procStartTime(v.pid) : v.start })).filter(alive)
  for (const v of live) signal(v, graceMs > 0 ? 'SIGTERM' : 'SIGKILL')
  for (const until = Date.now() + graceMs; live.some(alive) && Date.now() < until;) await new Promise((r) => setTimeout(r, 50))
  for (const v of live) if (alive(v)) signal(v, 'SIGKILL')
  for (const v of victims) untrackProcess(v.pid)
  return live.map(({ pid, label }) => ({ pid, label }))
}

/**
 * Stops every process a pid file (see trackProcess) still lists.
 * @param {string} file
 */
export async function killTracked(file) {
  let text = ''
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch {
    return []
  }
  const live = new Map()
  for (const line of text.split('\n')) {
    try {
      const rec = JSON.parse(line)
      if (rec.op === 'add') live.set(rec.pid, rec)
      else live.delete(rec.pid)
    } catch {}
  }
  return stopProcesses([...live.values()])
}

/**
 * Runs fn over items with at most `limit` at once; with `signal`, starts no new item once it is aborted.
 * @template T, R
 * @param {T[]} items
 * @param {number} limit
 * @param {(item: T, i: number) => Promise<R>} fn
 * @param {AbortSignal} [signal]
 * @returns {Promise<R[]>}
 */
export async function mapLimit(items, limit, fn, signal) {
  const out = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length && !signal?.aborted) {
      const i = next++
      out[i] = await fn(items[i], i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/**
 * Runs a command; resolves with its exit code, output and wall time, never rejects for an exit code.
 * A timeout or an aborted `signal` SIGKILLs it.
 * @param {string} cmd
 * @param {string[]} args
 * @param {{env?: Record<string,string>, cwd?: string, input?: string|Buffer, stderr?: 'pipe'|'inherit', timeoutMs?: number, signal?: AbortSignal}} [o]
 * @returns {Promise<{code: number|null, ms: number, stdout: string, stderr: string}>}
 */
export function run(cmd, args, { env, cwd, input, stderr = 'pipe', timeoutMs, signal } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    const child = spawn(cmd, args, { env, cwd, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', stderr] })
    const out = []
    const err = []
    const kill = () => child.kill('SIGKILL')
    const timer = timeoutMs ? setTimeout(kill, timeoutMs) : null
    signal?.addEventListener('abort', kill, { once: true })
    child.stdout.on('data', (b) => out.push(b))
    child.stderr?.on('data', (b) => err.push(b))
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', kill)
    }
    child.on('error', (e) => {
      done()
      reject(e)
    })
    child.on('close', (code) => {
      done()
      resolve({ code, ms: Date.now() - t0, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') })
    })
    if (input !== undefined) child.stdin.end(input)
  })
}
