// Processes the tests and tools start: the one place that records them and stops them.
//
//  trackProcess(pid)        record it in $BROKKR_E2E_PIDFILE (set by e2e global setup), so global
//  untrackProcess(pid)      teardown kills it if a test forgets to
//  stopProcesses(victims)   SIGTERM (to the group when it was spawned detached), SIGKILL after a
//                           grace period; a pid is signalled only while its start time still matches,
//                           so a recycled pid is never hit
//  killTracked(file)        stopProcesses() of what a pid file still lists
//  mapLimit(items, n, fn)   fn over items, at most n at once

import * as fs from 'node:fs'

/** Start time (clock ticks since boot) of a pid from /proc, or null. */
export function procStartTime(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null // field 22 overall
  } catch {
    return null
  }
}

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
export function untrackProcess(pid) {
  record({ op: 'remove', pid })
}

/**
 * Stops processes: SIGTERM, then SIGKILL to those still alive after `graceMs` (0: SIGKILL at once).
 * @param {{pid: number, group?: boolean, start?: string|null, label?: string}[]} victims
 *   start: the start time recorded with the pid (default: read now)
 * @param {{graceMs?: number}} [o]
 * @returns {Promise<{pid: number, label?: string}[]>} the ones that were alive
 */
export async function stopProcesses(victims, { graceMs = 2000 } = {}) {
  const alive = (v) => v.start !== null && procStartTime(v.pid) === v.start
  const live = victims.map((v) => ({ ...v, start: v.start === undefined ? procStartTime(v.pid) : v.start })).filter(alive)
  const signal = (v, sig) => {
    for (const target of v.group ? [-v.pid, v.pid] : [v.pid]) {
      try {
        return process.kill(target, sig)
      } catch {}
    }
  }
  for (const v of live) signal(v, graceMs > 0 ? 'SIGTERM' : 'SIGKILL')
  for (const until = Date.now() + graceMs; live.some(alive) && Date.now() < until;) await new Promise((r) => setTimeout(r, 50))
  for (const v of live) if (alive(v)) signal(v, 'SIGKILL')
  for (const v of live) untrackProcess(v.pid)
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
