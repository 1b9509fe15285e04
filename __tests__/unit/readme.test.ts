import { readFileSync } from 'node:fs'
import { parse } from 'yaml'

const root = new URL('../../', import.meta.url)
const action = parse(readFileSync(new URL('action.yml', root), 'utf8'))
const readme = readFileSync(new URL('README.md', root), 'utf8')

/** Rows of the markdown table whose header starts with `| <first> |`. */
function table(first: string): string[][] {
  const lines = readme.split('\n')
  const start = lines.findIndex((l) => l.startsWith(`| ${first} |`))
  expect(start).toBeGreaterThanOrEqual(0)
  const rows: string[][] = []
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break
    rows.push(
      line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim())
    )
  }
  return rows
}

describe('README', () => {
  it('documents every input with its action.yml default, in order', () => {
    const rows = table('input')
    const expected = Object.entries<any>(action.inputs).map(([name, spec]) => [
      `\`${name}\``,
      spec.required ? 'required' : spec.default === '' ? '(empty)' : `\`${spec.default}\``
    ])
    expect(rows.map((r) => r.slice(0, 2))).toEqual(expected)
  })

  it('documents every output, in order', () => {
    expect(table('output').map((r) => r[0])).toEqual(Object.keys(action.outputs).map((n) => `\`${n}\``))
  })

  it('has a two-command quick start whose test command CI runs', () => {
    const quick = readme.split('## Quick start')[1].split('```sh')[1].split('```')[0].trim().split('\n')
    expect(quick).toHaveLength(2)
    expect(quick[0]).toMatch(/^npm ci && npm run demo\b/)
    expect(quick[1]).toMatch(/^npm ci && npm test\b/)
    expect(readFileSync(new URL('.ci/run', root), 'utf8')).toContain('npm ci && npm test')
  })

  it('describes every input in action.yml and runs on node20 with a post step', () => {
    for (const spec of Object.values<any>(action.inputs)) expect(spec.description).toBeTruthy()
    expect(action.runs).toEqual({ using: 'node20', main: 'dist/index.js', post: 'dist/post/index.js' })
  })
})
