import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'

const root = new URL('../../', import.meta.url).pathname

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : [path]
  })
}

describe('dist/', () => {
  it('is exactly the bundle of src/ (users run dist, not src)', () => {
    const out = mkdtempSync(join(tmpdir(), 'brokkr-dist-'))
    try {
      // the same two ncc calls as `npm run package`, into a scratch directory
      // only its ncc calls: the script first empties dist/, which must not happen to the real one here
      const script = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts.package as string)
        .split('&&')
        .map((part) => part.trim())
        .filter((part) => part.startsWith('ncc '))
        .join(' && ')
      execFileSync('bash', ['-c', script.replace(/-o dist\/post/g, `-o ${out}/post`).replace(/-o dist /g, `-o ${out} `)], { cwd: root, stdio: 'pipe' })
      const built = files(out)
        .map((f) => relative(out, f))
        .sort()
      const committed = files(join(root, 'dist'))
        .map((f) => relative(join(root, 'dist'), f))
        .sort()
      expect(committed).toEqual(built)
      for (const file of built) {
        expect({ file, same: readFileSync(join(out, file)).equals(readFileSync(join(root, 'dist', file))) }).toEqual({ file, same: true })
      }
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  }, 120_000)
})
