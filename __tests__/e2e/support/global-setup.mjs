// Jest globalSetup of the e2e project.
//
// Brings the e2e stack up (ensureStack) and records, in a file under
// os.tmpdir(), whether this run started it, so global teardown stops only what
// the tests started. Building dist/ (`npm run package`) is not its job; the unit
// project proves dist/ is the bundle of src/ (__tests__/unit/bundle.test.ts).
//
// The e2e suites are never skipped: without the stack they fail.
//
// For the suites (jest workers inherit process.env set here):
//   BROKKR_E2E_PIDFILE   processes started by tests are recorded here (see trackProcess in
//                        __tests__/support/processes.mjs) and killed by teardown if still running
//   BROKKR_E2E_TMP      scratch directories of the suites (removed whole by teardown)
//   BROKKR_E2E_STACK=1   the stack is up (both engine generations: see engineEnv() in stack.mjs)

import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { ensureStack, stackEnvFile } from './stack.mjs'

/** Where setup records what it did, for teardown (same process, keyed by pid). */
export function setupRecordFile(pid = process.pid) {
  return path.join(os.tmpdir(), `brokkr-e2e-setup-${pid}.json`)
}

export default async function globalSetup() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'brokkr-e2e-run-'))
  const pidFile = path.join(work, 'processes.jsonl')
  fs.writeFileSync(pidFile, '')
  process.env.BROKKR_E2E_PIDFILE = pidFile
  // scratch directories of the suites (runner temp, tool cache, DOCKER_CONFIGs) go here
  process.env.BROKKR_E2E_TMP = work

  const record = { pid: process.pid, work, pidFile, startedStack: false, stackEnvFile: stackEnvFile() }
  const save = () => fs.writeFileSync(setupRecordFile(), JSON.stringify(record, null, 2))
  save()

  const t0 = Date.now()
  process.stderr.write('e2e: bringing the stack up (stack.sh up)…\n')
  let stack
  try {
    stack = await ensureStack({ lease: true })
  } catch (e) {
    throw new Error(`e2e: the stack could not be brought up: ${e.message}`)
  }
  record.startedStack = stack.started
  save()
  process.env.BROKKR_E2E_STACK = '1'
  process.stderr.write(
    `e2e: stack ${stack.started ? 'started' : 'already running'} in ${((Date.now() - t0) / 1000).toFixed(1)}s — registry ${stack.env.BROKKR_REGISTRY}, DOCKER_HOST ${stack.env.DOCKER_HOST}\n`
  )
  const e = stack.env
  process.stderr.write(
    `e2e: engines — previous: Docker ${e.BROKKR_DOCKER_VERSION}, buildx ${e.BROKKR_BUILDX_VERSION}` +
      (e.BROKKR_CURRENT_DOCKER_HOST
        ? `; current: Docker ${e.BROKKR_CURRENT_DOCKER_VERSION}, buildx ${e.BROKKR_CURRENT_BUILDX_VERSION}, containerd ${e.BROKKR_CURRENT_CONTAINERD_VERSION} (${e.BROKKR_CURRENT_DOCKER_HOST}, bridge ${e.BROKKR_CURRENT_BRIDGE_IP})`
        : '; current: not running (BROKKR_STACK_CURRENT=0)') +
      (e.BROKKR_BUILDKIT_IMAGE
        ? `; ${e.BROKKR_BUILDKIT_IMAGE} = BuildKit ${e.BROKKR_BUILDKIT_VERSION}`
        : '; no BuildKit image for the docker-container driver') +
      '\n'
  )
}
