// What the doubles' checks share: data to cache, the runner's environment for the real
// @actions/cache client, and the workflow commands (::warning:: ...) it writes.
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export const sha = (data: Buffer | string): string => crypto.createHash('sha256').update(data).digest('hex')
export const tmpDir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'doubles-'))

/** Fills `dir` with a small text file and `size` random bytes; returns the sha256 of those bytes. */
export function writeData(dir: string, size = 300 * 1024): string {
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true })
  const bytes = crypto.randomBytes(size)
  fs.writeFileSync(path.join(dir, 'sub', 'big.bin'), bytes)
  fs.writeFileSync(path.join(dir, 'a.txt'), 'hello\n')
  return sha(bytes)
}

/** The sha256 of what writeData wrote, '' when it is not there. */
export function dataSha(dir: string): string {
  const file = path.join(dir, 'sub', 'big.bin')
  return fs.existsSync(file) ? sha(fs.readFileSync(file)) : ''
}

/** The cache variables a runner gives a step (nothing else of the cache kind), for @actions/cache. */
export function runnerEnv(vars: Record<string, string>, runnerTemp: string): void {
  for (const k of Object.keys(process.env)) if (/^ACTIONS_(CACHE|RESULTS|RUNTIME)_/.test(k)) delete process.env[k]
  fs.mkdirSync(runnerTemp, { recursive: true })
  Object.assign(process.env, { GITHUB_SERVER_URL: 'https://github.com', RUNNER_TEMP: runnerTemp }, vars)
}

/**
 * Until restore(), what is written on stdout (the workflow commands and info lines of @actions/core)
 * is kept in `lines` instead of printed; `since(mark)` is what came after `lines.length` was `mark`.
 */
export function captureStdout(): { lines: string[]; since: (mark: number) => string; restore: () => void } {
  const lines: string[] = []
  const write = process.stdout.write
  process.stdout.write = ((chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter(Boolean))
    return true
  }) as typeof process.stdout.write
  return { lines, since: (mark) => lines.slice(mark).join('\n'), restore: () => void (process.stdout.write = write) }
}
