import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import ts from 'typescript'

// The shape of src/, checked: folders import only the layers below them, and no function takes
// more than five parameters (a sixth means a value wants to be passed instead).

const src = new URL('../../src/', import.meta.url).pathname
const files = readdirSync(src, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.ts'))
  .map((f) => join(src, f))
const layerOf = (file: string) => (relative(src, file).includes('/') ? relative(src, file).split('/')[0] : 'entry')

/** Each layer and the layers it may import; nothing imports upwards. */
const MAY_IMPORT: Record<string, string[]> = {
  model: [],
  config: ['model'],
  runtime: ['model'],
  registry: ['model', 'config', 'runtime'],
  github: ['model', 'config', 'runtime'],
  buildx: ['model', 'config', 'runtime'],
  manifest: ['model', 'config', 'runtime', 'registry', 'github'],
  plan: ['model', 'config', 'runtime', 'registry', 'github', 'buildx', 'manifest'],
  run: ['model', 'config', 'runtime', 'registry', 'github', 'buildx', 'manifest', 'plan'],
  entry: ['model', 'config', 'runtime', 'registry', 'github', 'buildx', 'manifest', 'plan', 'run']
}

describe('src/ architecture', () => {
  it('has a known layer for every folder', () => {
    expect(files.map(layerOf).filter((l) => !(l in MAY_IMPORT))).toEqual([])
  })

  it('imports only downwards', () => {
    const wrong: string[] = []
    for (const file of files) {
      const from = layerOf(file)
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
        const to = layerOf(join(file, '..', spec))
        if (to !== from && !MAY_IMPORT[from].includes(to)) wrong.push(`${relative(src, file)} imports ${spec}`)
      }
    }
    expect(wrong).toEqual([])
  })

  it('has no function with more than five parameters', () => {
    const long: string[] = []
    for (const file of files) {
      const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
      const visit = (node: ts.Node): void => {
        if (ts.isFunctionLike(node) && node.parameters.length > 5) {
          const { line } = source.getLineAndCharacterOfPosition(node.getStart())
          long.push(`${relative(src, file)}:${line + 1} (${node.parameters.length} parameters)`)
        }
        ts.forEachChild(node, visit)
      }
      visit(source)
    }
    expect(long).toEqual([])
  })

  it('reads the environment only at the entry points', () => {
    const readers = files.filter((f) => layerOf(f) !== 'entry' && /process\.env\b/.test(readFileSync(f, 'utf8'))).map((f) => relative(src, f))
    // readEnvironment is what the entry points call; docker and the process helper hand the environment
    // on to the commands they start; the summary is written only where the runner gave it a file
    expect(readers.sort()).toEqual(['config/environment.ts', 'runtime/docker.ts', 'runtime/process.ts', 'runtime/summary.ts'])
  })
})
