import { execFile } from 'node:child_process'

const script = new URL('../e2e/support/selfcheck-cache-v2.mjs', import.meta.url).pathname

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * The e2e suites' double of the Actions cache service v2 (Twirp API + Azurite behind signed URLs):
 * its self-check drives it with the real @actions/cache client and the raw dialect BuildKit speaks,
 * then stops everything it started. Its slowest check waits out the Azure SDK's own retries of a
 * blob that answers 503 every time (about 16 s).
 */
describe('cache service v2 double', () => {
  it('self-check passes and leaves no process behind', async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [script], { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr })
      )
    })
    const summary = /^(\d+) passed, (\d+) failed/m.exec(stdout)
    if (!summary || summary[2] !== '0' || code !== 0) {
      const failures = stderr
        .split('\n')
        .filter((l) => l.includes('FAIL'))
        .join('\n')
      throw new Error(`self-check failed (exit ${code}): ${summary?.[0] ?? 'no summary'}\n${failures || stderr.slice(-4000)}`)
    }
    expect(Number(summary[1])).toBeGreaterThan(50)

    const pids = JSON.parse(/^pids: (.*)$/m.exec(stdout)?.[1] ?? '[]') as number[]
    expect(pids.length).toBeGreaterThanOrEqual(3) // an Azurite per double, the CLI processes
    expect(pids.filter(alive)).toEqual([])
  }, 150_000)
})
