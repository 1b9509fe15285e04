// Jest globalTeardown of the e2e project: kills the processes the tests left
// running (recorded in BROKKR_E2E_PIDFILE), then stops the stack only if global
// setup started it (and no other run sharing it is still alive — see the leases
// in stack.mjs).

import * as fs from 'node:fs'

import { killTracked } from '../../support/processes.mjs'
import { releaseStackLease, stopStack } from './stack.mjs'
import { setupRecordFile } from './global-setup.mjs'

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
    const killed = await killTracked(record.pidFile)
    if (killed.length)
      process.stderr.write(`e2e: teardown: killed ${killed.length} leftover process(es): ${killed.map((k) => `${k.label} (${k.pid})`).join(', ')}\n`)
  } catch (e) {
    errors.push(e)
  }

  const { shouldStop, others } = releaseStackLease({ started: record.startedStack })
  if (shouldStop) {
    process.stderr.write('e2e: teardown: stopping the stack this run started (stack.sh down)\n')
    const res = await stopStack()
    if (res.code !== 0) errors.push(new Error(`stack.sh down failed (exit ${res.code})`))
  } else if (record.startedStack) {
    process.stderr.write(`e2e: teardown: leaving the stack up for pid(s) ${others.join(', ')} still using it (the last one stops it)\n`)
  }

  try {
    fs.rmSync(record.work, { recursive: true, force: true })
  } catch {}
  try {
    fs.rmSync(file, { force: true })
  } catch {}
  if (errors.length) throw errors[0]
}
