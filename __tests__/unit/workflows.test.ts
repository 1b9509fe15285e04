/**
 * Every YAML users meet is checked as GitHub would read it: action.yml, our workflows and the
 * examples pass @action-validator/cli (the schemas of action and workflow files) and actionlint
 * (the real one, compiled to WebAssembly: expressions, `needs`, untrusted input in scripts, the
 * inputs of well-known actions and of this one, read from our action.yml; see actionlint.mjs).
 * Each check is shown to fail on a broken copy.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const ACTIONLINT = join(ROOT, '__tests__', 'support', 'actionlint.mjs')
const VALIDATOR = join(ROOT, 'node_modules', '.bin', 'action-validator')

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return yamlFiles(path)
    return /\.ya?ml$/.test(name) ? [path] : []
  })
}

const workflows = [...yamlFiles(join(ROOT, '.github', 'workflows')), ...yamlFiles(join(ROOT, 'examples'))]
const rel = (path: string) => relative(ROOT, path)

/** action-validator's verdict: '' when valid, else what it printed. */
function actionValidator(path: string): string {
  try {
    execFileSync(VALIDATOR, [path], { stdio: 'pipe' })
    return ''
  } catch (error) {
    const e = error as { stdout?: Buffer; stderr?: Buffer; status?: number }
    return `exit ${e.status}: ${String(e.stdout ?? '')}${String(e.stderr ?? '')}`.trim() || 'failed'
  }
}

/** actionlint's findings for several files in one go, one line each (it runs in a child process, see actionlint.mjs). */
function actionlintAll(files: Array<{ path: string; text: string }>): string[] {
  const out = execFileSync(process.execPath, [ACTIONLINT], { input: JSON.stringify(files), cwd: ROOT })
  return (JSON.parse(out.toString()) as Array<{ path: string; line: number; kind: string; message: string }>).map(
    (r) => `${r.path}:${r.line}: ${r.message} [${r.kind}]`
  )
}

const actionlint = (text: string, path: string) => actionlintAll([{ path, text }])

describe('action.yml', () => {
  it('passes action-validator', () => {
    expect(actionValidator(join(ROOT, 'action.yml'))).toBe('')
  })

  it('declares node20 (github.com runs it on Node 24; both are tested)', () => {
    expect(parse(readFileSync(join(ROOT, 'action.yml'), 'utf8')).runs).toMatchObject({ using: 'node20', main: 'dist/index.js', post: 'dist/post/index.js' })
  })
})

describe('workflows and examples', () => {
  it('there are the three workflows and the examples', () => {
    expect(workflows.map(rel).sort()).toEqual(
      expect.arrayContaining([
        '.github/workflows/ci.yml',
        '.github/workflows/e2e.yml',
        '.github/workflows/release.yml',
        'examples/brokkr-images.yml',
        'examples/emulated-only.yml',
        'examples/act/images.yml'
      ])
    )
  })

  // one actionlint process for all of them: starting its Go runtime is most of the time
  let findings: string[] = []
  beforeAll(() => {
    findings = actionlintAll(workflows.map((w) => ({ path: rel(w), text: readFileSync(w, 'utf8') })))
  }, 60_000)

  it.each(workflows.map((w) => [rel(w), w]))('%s passes action-validator and actionlint', (name, path) => {
    expect(actionValidator(path)).toBe('')
    expect(findings.filter((f) => f.startsWith(`${name}:`))).toEqual([])
  })

  it('every example uses the published action, never the local one', () => {
    for (const path of workflows.filter((w) => rel(w).startsWith('examples/'))) {
      const uses = [...readFileSync(path, 'utf8').matchAll(/uses: (\S+)/g)].map((m) => m[1])
      expect(uses).toContain('colliery-io/brokkr-build-action@v1')
      expect(uses).not.toContain('./')
    }
  })
})

describe('the checks fail on broken files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'brokkr-workflows-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const example = readFileSync(join(ROOT, 'examples', 'brokkr-images.yml'), 'utf8')

  it('a misspelled input of this action, which also leaves a required one out', () => {
    const broken = example.replace(
      '          component: ${{ matrix.component }}\n          platform',
      '          componnet: ${{ matrix.component }}\n          platform'
    )
    expect(broken).not.toBe(example)
    expect(actionlint(broken, 'broken.yml')).toEqual([
      expect.stringMatching(/^broken.yml:\d+: missing input "component" which is required by action "Brokkr build" defined at "\.\/"/),
      expect.stringMatching(/^broken.yml:\d+: input "componnet" is not defined in action "Brokkr build" defined at "\.\/"\. available inputs are .*"component"/)
    ])
  })

  it('a job that needs a job that does not exist', async () => {
    const broken = example.replace('needs: build', 'needs: buld')
    expect(actionlint(broken, 'broken.yml')).toEqual([
      expect.stringMatching(/job "manifest" needs job "buld" which does not exist in this workflow \[job-needs\]/)
    ])
  })

  it('a misspelled input of a well-known action, and an untrusted expression in a script', async () => {
    const broken = example
      .replace('      - uses: actions/checkout@v4\n', '      - uses: actions/checkout@v4\n        with:\n          reff: main\n')
      .replace('      - run: echo "', '      - run: echo "${{ github.event.head_commit.message }} ')
    const problems = actionlint(broken, 'broken.yml')
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/input "reff" is not defined in action "actions\/checkout@v4"/),
        expect.stringMatching(/"github.event.head_commit.message" is potentially untrusted/)
      ])
    )
  })

  it('a workflow job with an unknown key, and an action.yml with an unknown runtime', () => {
    const workflow = join(dir, 'workflow.yml')
    writeFileSync(workflow, example.replace('    runs-on: ${{ matrix.runner }}', '    runs-on: ${{ matrix.runner }}\n    stepz: []'))
    expect(actionValidator(workflow)).toMatch(/Additional property 'stepz' is not allowed/)
    const action = join(dir, 'action.yml')
    writeFileSync(action, readFileSync(join(ROOT, 'action.yml'), 'utf8').replace('using: node20', 'using: node99'))
    expect(actionValidator(action)).toMatch(/"path": "\/runs\/using"/)
  })
})
