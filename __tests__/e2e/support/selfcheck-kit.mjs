// What the doubles' self-check scripts (selfcheck-doubles.mjs, selfcheck-cache-v2.mjs) share:
// named checks with a pass/fail count, sections that turn an exception into a failed check,
// and spawning a double's CLI to read its one JSON line.
//
// Node 20 built-ins only.

import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import path from 'node:path'

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
export const sha = (b) => crypto.createHash('sha256').update(b).digest('hex')

/** Counts named checks, printing `ok`/`FAIL` lines on stderr. */
export function makeChecks() {
  const state = { passed: 0, failed: 0, failures: [] }
  function check(name, cond, detail) {
    if (cond) {
      state.passed++
      process.stderr.write(`  ok   ${name}\n`)
    } else {
      state.failed++
      state.failures.push(name)
      process.stderr.write(`  FAIL ${name}${detail !== undefined ? ` :: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}` : ''}\n`)
    }
  }
  async function section(name, fn) {
    process.stderr.write(`\n# ${name}\n`)
    try {
      await fn()
    } catch (err) {
      check(`${name}: no exception`, false, err?.stack ?? String(err))
    }
  }
  /** The closing lines: the failures on stderr, and the summary line the unit tests match. */
  function summary(t0, write = (s) => process.stdout.write(s)) {
    process.stderr.write(`\n${state.failures.length ? `failed: ${state.failures.join('; ')}\n` : ''}`)
    write(`${state.passed} passed, ${state.failed} failed (${((Date.now() - t0) / 1000).toFixed(1)}s)\n`)
    return state.failed ? 1 : 0
  }
  return { check, section, summary, state }
}

/**
 * Runs a double's CLI (a script in this folder) and reads the one JSON line it prints when it listens.
 * @param {string} script  file name in this folder
 * @param {string[]} args
 * @param {{onSpawn?: (pid: number) => void}} [o]
 */
export function spawnCli(script, args, { onSpawn } = {}) {
  const here = path.dirname(new URL(import.meta.url).pathname)
  const child = spawn(process.execPath, [path.join(here, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  onSpawn?.(child.pid)
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const first = new Promise((resolve, reject) => {
    let buf = ''
    child.stdout.on('data', (d) => {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)))
    })
    exited.then(({ code }) => reject(new Error(`${script} exited ${code}: ${stderr}`)))
  })
  first.catch(() => {}) // awaited by the caller when it cares
  return { child, first, exited, stderr: () => stderr }
}
