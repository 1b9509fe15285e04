import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)
const script = new URL('../e2e/support/selfcheck-doubles.mjs', import.meta.url).pathname

/**
 * The e2e suites lean on two test doubles (the Actions cache service and the registry fault
 * proxy); their own checks use the real @actions/cache client and real HTTP, no docker.
 */
describe('test doubles', () => {
  it.each(['cache', 'proxy', 'cli'])(
    '%s self-check passes',
    async (part) => {
      const { stdout } = await run(process.execPath, [script, '--only', part], { timeout: 120_000 })
      expect(stdout).toMatch(/^\d+ passed, 0 failed/m)
    },
    150_000
  )
})
