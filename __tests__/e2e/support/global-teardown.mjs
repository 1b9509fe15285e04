// Jest globalTeardown of the e2e project: kills the processes the tests left
// running that it knows of (recorded in BROKKR_E2E_PIDFILE, or cache-double /
// fault-proxy CLIs that wrote a state file into BROKKR_E2E_STATE_DIR), then
// stops the stack only if global setup started it (and no other run sharing it
// is still alive — see the leases in stack.mjs).

import * as fs from 'node:fs'
import * as path from 'node:path'

import { killTracked, procStartTime, releaseStackLease, stopStack } from './stack.mjs'
import { setupRecordFile } from './global-setup.mjs'

/** Whether /proc/<pid>/cmdline mentions one of the names. */
function cmdlineMentions(pid, names) {
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    return names.some((n) => cmd.includes(n))
  } catch {
    return false
  }
}

/** Kills the cache double / fault proxy CLIs whose state files are in dir. */
async function killStateFileProcesses(dir) {
  let names = []
  try {
    names = fs.readdirSync(dir)
  } catch {
    return []
  }
  const victims = []
  for (const n of names) {
    let rec
    try {
      rec = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8'))
    } catch {
      continue
    }
    const pid = Number(rec?.pid)
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue
    if (!cmdlineMentions(pid, ['cache-double', 'fault-proxy'])) continue
    victims.push({ pid, start: procStartTime(pid), label: n })
  }
  for (const v of victims) {
    try {
      process.kill(v.pid, 'SIGTERM')
    } catch {}
  }
  if (victims.length) {
    await new Promise((resolve) => setTimeout(resolve, 2000))
    for (const v of victims)
      if (procStartTime(v.pid) === v.start) {
        try {
          process.kill(v.pid, 'SIGKILL')
        } catch {}
      }
  }
  return victims
}

export default async function globalTeardown() {
  const file = setupRecordFile()
  let record = null
  try {
    record = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch {}
  if (!record) {
    process.stderr.write(`e2e: teardown: no setup record (${file}); leaving the stack alone\n`)
    return
  }
  const errors = []
  try {
    const killed = [...(await killTracked(record.pidFile)), ...(await killStateFileProcesses(record.stateDir))]
    if (killed.length)
      process.stderr.write(`e2e: teardown: killed ${killed.length} leftover process(es): ${killed.map((k) => `${k.label} (${k.pid})`).join(', ')}\n`)
  } catch (e) {
    errors.push(e)
  }

  if (!record.skipped) {
    const { shouldStop, others } = releaseStackLease({ started: record.startedStack })
    if (shouldStop) {
      process.stderr.write('e2e: teardown: stopping the stack this run started (stack.sh down)\n')
      const res = await stopStack()
      if (res.code !== 0) errors.push(new Error(`stack.sh down failed (exit ${res.code})`))
    } else if (record.startedStack) {
      process.stderr.write(`e2e: teardown: leaving the stack up for pid(s) ${others.join(', ')} still using it (the last one stops it)\n`)
    }
  }

  try {
    fs.rmSync(record.work, { recursive: true, force: true })
  } catch {}
  try {
    fs.rmSync(file, { force: true })
  } catch {}
  if (errors.length) throw errors[0]
}
