import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

const root = new URL('../../', import.meta.url).pathname
const bin = (name: string) => join(root, 'node_modules', '.bin', name)

/** Runs a checker; a failure shows what it printed. */
function check(command: string, args: string[]): string {
  try {
    execFileSync(command, args, { cwd: root, stdio: 'pipe', encoding: 'utf8' })
    return ''
  } catch (error: any) {
    return `${error.stdout ?? ''}${error.stderr ?? ''}`.trim() || String(error)
  }
}

describe('code style (npm run lint, npm run format)', () => {
  it('passes eslint', () => {
    expect(check(bin('eslint'), ['.'])).toBe('')
  }, 120_000)

  it('is formatted with prettier', () => {
    expect(check(bin('prettier'), ['--check', '--log-level', 'warn', '.'])).toBe('')
  }, 120_000)
})
