import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gitCommitTime } from '../../src/github/commit-time.js'
import { InputError } from '../../src/model/errors.js'
import type { GitHubContext } from '../../src/model/github.js'
import { describeBuildPlan } from '../../src/plan/build-report.js'
import { planBuild, type BuildProbes } from '../../src/plan/build.js'
import { configWith, envWith, pushToMain } from './helpers.js'

// Same commit, same image: what an arch image says about when it was made comes from the commit,
// decided in the plan; the run's start is used only when nothing else knows, and then it is said.

const SHA = '0123456789abcdef0123456789abcdef01234567'
const push: GitHubContext = { ...pushToMain, sha: SHA, commitTime: '2026-11-20T12:00:00.000Z' }
const dispatch: GitHubContext = { ...pushToMain, sha: SHA, eventName: 'workflow_dispatch' }
const probes: BuildProbes = {
  nodeArch: 'x64',
  binfmtRegistered: false,
  dockerContext: 'default',
  workDir: '/w',
  startedAt: Date.parse('2026-12-05T09:30:15.250Z')
}
const plan = (github: GitHubContext, inputs: Record<string, string> = {}, more: Partial<BuildProbes> = {}) =>
  planBuild(configWith({ sha: SHA, ...inputs }, github), github, envWith(), { ...probes, ...more })
const argvOf = (p: ReturnType<typeof plan>) => p.attempts.argv.push ?? p.attempts.argv.none!
const flagValues = (argv: string[], flag: string) => argv.flatMap((a, i) => (argv[i - 1] === flag ? [a] : []))

describe('the time an arch image is made at', () => {
  it.each([
    ['a push: the head commit of the event', push, {}, '2026-11-20T12:00:00.000Z', 'push event'],
    ['workflow_dispatch: the commit in git', dispatch, { gitCommitTime: '2026-11-19T08:00:00.000Z' }, '2026-11-19T08:00:00.000Z', 'git'],
    [
      'a sha input of another commit: that commit in git',
      { ...push, sha: 'f'.repeat(40) },
      { gitCommitTime: '2026-11-19T08:00:00.000Z' },
      '2026-11-19T08:00:00.000Z',
      'git'
    ],
    ['nothing knows: the run start, in whole seconds', dispatch, {}, '2026-12-05T09:30:15.000Z', 'run start']
  ] as const)('%s', (_name, github, more, created, origin) => {
    const p = plan(github, {}, more)
    const epoch = Date.parse(created) / 1000
    expect(p.sourceDate).toMatchObject({ created, epoch, origin })
    const argv = argvOf(p)
    expect(flagValues(argv, '--label')).toContain(`org.opencontainers.image.created=${created}`)
    // to the exporter, never as a build-arg: the frontend would put it into WORKDIR's cache key
    expect(flagValues(argv, '--build-arg')).toEqual([])
    expect(argv.slice(-3)).toEqual(['--output', `type=image,push=true,rewrite-timestamp=true,source-date-epoch=${epoch}`, '.'])
  })

  it('is the same for two runs of one commit, whenever they start', () => {
    const later = { startedAt: probes.startedAt + 3 * 3600_000 }
    expect(plan(push, {}, later).attempts).toEqual(plan(push).attempts)
    expect(plan(dispatch, {}, { gitCommitTime: '2026-11-19T08:00:00.000Z', ...later }).attempts).toEqual(
      plan(dispatch, {}, { gitCommitTime: '2026-11-19T08:00:00.000Z' }).attempts
    )
  })

  it('says so before the build when the run start is all there is and the image is pushed', () => {
    expect(plan(dispatch).notices).toEqual([
      expect.stringMatching(/^No commit time for 0123456789ab \(no head commit in the workflow_dispatch event, .*a re-run pushes a different image/)
    ])
    expect(plan({ ...push, sha: 'f'.repeat(40) }).notices).toEqual([expect.stringMatching(/the push event's head commit is ffffffffffff, another commit/)])
    expect(plan(dispatch, { push: 'false' }).notices).toEqual([])
    expect(plan(push).notices).toEqual([])
  })

  it("leaves the user's SOURCE_DATE_EPOCH build-arg alone and dates the label by it", () => {
    const p = plan(push, { 'build-args': 'SOURCE_DATE_EPOCH=1700000000\nRUST_VERSION=1.80' })
    expect(flagValues(argvOf(p), '--build-arg')).toEqual(['SOURCE_DATE_EPOCH=1700000000', 'RUST_VERSION=1.80'])
    expect(p.sourceDate).toMatchObject({ created: '2023-11-14T22:13:20.000Z', origin: 'build-args', rewriteTimestamps: true })
    expect(flagValues(argvOf(p), '--label')).toContain('org.opencontainers.image.created=2023-11-14T22:13:20.000Z')
  })

  it('refuses a SOURCE_DATE_EPOCH build-arg that is not seconds, naming the input', () => {
    expect(() => plan(push, { 'build-args': 'SOURCE_DATE_EPOCH=2026-11-20' })).toThrow(InputError)
    expect(() => plan(push, { 'build-args': 'SOURCE_DATE_EPOCH=' })).toThrow(/^build-args: SOURCE_DATE_EPOCH='' is not a whole number of seconds/)
  })

  it('lets a label the user sets win over ours', () => {
    const labels = flagValues(argvOf(plan(push, { labels: 'org.opencontainers.image.created=2020-01-01T00:00:00Z' })), '--label')
    expect(labels.filter((l) => l.startsWith('org.opencontainers.image.created=')).pop()).toBe('org.opencontainers.image.created=2020-01-01T00:00:00Z')
  })
})

describe('layer timestamps', () => {
  it('are rewritten by the image output of a docker-container or remote builder, the layout fallback too', () => {
    for (const driver of ['docker-container', 'remote']) {
      const p = plan(push, { driver, ...(driver === 'remote' ? { endpoint: 'tcp://buildkitd:1234' } : {}) })
      expect(p.attempts.argv.push!.slice(-3)).toEqual(['--output', 'type=image,push=true,rewrite-timestamp=true,source-date-epoch=1795176000', '.'])
      expect(p.attempts.argv.layout!.slice(-3)).toEqual(['--output', 'type=oci,dest=/w/oci,tar=false,rewrite-timestamp=true,source-date-epoch=1795176000', '.'])
      expect(p.notices).toEqual([])
    }
  })

  it('are kept on the docker driver (BuildKit refuses rewrite-timestamp with its unpack), which the Plan group says', () => {
    const p = plan(push, { driver: 'docker' })
    expect(p.attempts.argv.push).toContain('--push')
    expect(p.attempts.argv.push!.join(' ')).not.toContain('rewrite-timestamp')
    expect(p.attempts.argv.layout!.join(' ')).not.toContain('rewrite-timestamp')
    expect(flagValues(p.attempts.argv.push!, '--build-arg')).toEqual([])
    expect(p.notices).toEqual([])
  })

  it('are not asked for when nothing is exported', () => {
    expect(argvOf(plan(push, { push: 'false' })).slice(-3)).toEqual(['--output', 'type=cacheonly', '.'])
  })

  it('are named in the Plan group', () => {
    expect(describeBuildPlan(plan(push))).toContain(
      "created: 2026-11-20T12:00:00.000Z (the head commit's time in the push event), source-date-epoch=1795176000, layer timestamps rewritten to it"
    )
    expect(describeBuildPlan(plan(push, { driver: 'docker' }))).toContainEqual(expect.stringMatching(/, the label only: the docker driver pushes with --push/))
  })
})

describe("the commit time in the checkout's git", () => {
  let repo = ''
  let sha = ''
  beforeAll(() => {
    repo = mkdtempSync(join(tmpdir(), 'brokkr-git-'))
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', repo, ...args], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, GIT_COMMITTER_DATE: '2026-11-19T08:00:00Z', GIT_AUTHOR_DATE: '2026-11-01T00:00:00Z', HOME: repo }
      }).trim()
    git('init', '-q')
    writeFileSync(join(repo, 'f'), 'x')
    git('add', 'f')
    git('-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-q', '-m', 'c')
    sha = git('rev-parse', 'HEAD')
  })
  afterAll(() => rmSync(repo, { recursive: true, force: true }))

  it('is the committer time of the commit', async () => {
    await expect(gitCommitTime(repo, sha)).resolves.toBe('2026-11-19T08:00:00.000Z')
  })

  it('is unknown for a commit the checkout lacks, outside a checkout, or for a sha that is no sha', async () => {
    await expect(gitCommitTime(repo, 'f'.repeat(40))).resolves.toBeUndefined()
    await expect(gitCommitTime(tmpdir(), sha)).resolves.toBeUndefined()
    await expect(gitCommitTime(repo, '--help')).resolves.toBeUndefined()
  })
})
