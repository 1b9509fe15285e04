import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { ensureNode24, NODE24 } from '../support/paths.mjs'

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

  // declared node20, run on Node 24 by github.com: both must load it, and nothing Node 22+-only may slip in
  it.each([
    ['Node 20', '/usr/bin/node'],
    ['Node 24', NODE24]
  ])('loads and runs on %s', (_name, node) => {
    if (node === NODE24) ensureNode24()
    for (const file of ['dist/index.js', 'dist/post/index.js']) execFileSync(node, ['--check', join(root, file)])
    // no inputs at all: the action must start, read them and fail in one line on the first
    let out = ''
    try {
      execFileSync(node, [join(root, 'dist/index.js')], { env: { PATH: process.env.PATH ?? '' }, stdio: 'pipe' })
    } catch (error) {
      out = String((error as { stdout?: Buffer }).stdout)
    }
    expect(out).toMatch(/^::error::mode: '' is not one of build, manifest$/m)
  })
})
