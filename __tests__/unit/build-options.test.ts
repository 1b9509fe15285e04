import { cacheActivity } from '../../src/buildx/buildkit-log.js'
import { decideCacheWrite, planCache } from '../../src/buildx/cache.js'
import { planSecrets, secretVariable } from '../../src/buildx/secrets.js'
import { inlineSecretValues } from '../../src/config/secrets.js'
import { InputError } from '../../src/model/errors.js'
import { configWith, envWith, pushToMain } from './helpers.js'

const pullRequest = { ...pushToMain, eventName: 'pull_request', ref: 'refs/pull/7/merge' }
const forkPullRequest = { ...pullRequest, fromFork: true }

describe('build secrets', () => {
  const config = configWith({
    secrets: 'cargo_token=hunter2-value\nnpm=with=equals',
    'secret-envs': 'sccache=SCCACHE_TOKEN',
    'secret-files': 'netrc=ci/netrc',
    ssh: 'default\ngithub=ci/deploy_key,ci/other_key'
  })

  it('hands inline values to buildx through variables of the build alone, never argv', () => {
    const plan = planSecrets(config.secrets, config.ssh, envWith({ SCCACHE_TOKEN: 'sc-value', SSH_AUTH_SOCK: '/tmp/agent.sock' }), false)
    expect(plan.args).toEqual([
      '--secret',
      `id=cargo_token,env=${secretVariable(0)}`,
      '--secret',
      `id=npm,env=${secretVariable(1)}`,
      '--secret',
      'id=sccache,env=SCCACHE_TOKEN',
      '--secret',
      'id=netrc,src=ci/netrc',
      '--ssh',
      'default',
      '--ssh',
      'github=ci/deploy_key,ci/other_key'
    ])
    expect(plan.env).toEqual({ [secretVariable(0)]: 'hunter2-value', [secretVariable(1)]: 'with=equals' })
    expect(plan.values).toEqual(['hunter2-value', 'with=equals', 'sc-value'])
    const visible = JSON.stringify([plan.args, plan.described, plan.skipped])
    for (const value of plan.values) expect(visible).not.toContain(value)
    expect(plan.skipped).toEqual([])
  })

  it('leaves out an empty secret and says why, in words for forks', () => {
    const empty = configWith({ secrets: 'cargo_token=', 'secret-envs': 'sccache=SCCACHE_TOKEN' })
    const own = planSecrets(empty.secrets, empty.ssh, envWith(), false)
    expect(own.args).toEqual([])
    expect(own.skipped).toEqual([
      expect.stringMatching(/^secret cargo_token is empty \(secrets\)/),
      expect.stringMatching(/environment variable SCCACHE_TOKEN/)
    ])
    const fork = planSecrets(empty.secrets, empty.ssh, envWith(), true)
    expect(fork.skipped[0]).toMatch(/runs from forks do not get repository secrets/)
  })

  it('needs an ssh agent for default, except on forks, where it is left out', () => {
    const agent = configWith({ ssh: 'default' })
    expect(() => planSecrets(agent.secrets, agent.ssh, envWith(), false)).toThrow(InputError)
    expect(() => planSecrets(agent.secrets, agent.ssh, envWith(), false)).toThrow(/^ssh: default needs an ssh agent/)
    expect(planSecrets(agent.secrets, agent.ssh, envWith(), true)).toMatchObject({ args: [], skipped: [expect.stringMatching(/^ssh default: no ssh agent/)] })
  })

  it('masks inline values before parsing, whatever the line looks like', () => {
    expect(inlineSecretValues('a=1\n  b = two words \nbroken line\nc=')).toEqual(['1', 'two words', 'broken line'])
  })

  it('never echoes a value in a bad-line error', () => {
    expect(() => configWith({ secrets: 'bad id=hunter2' })).toThrow(/^secrets: line 1 is not id=value/)
    try {
      configWith({ secrets: 'ok=1\nbad id=hunter2' })
    } catch (error) {
      expect((error as Error).message).not.toContain('hunter2')
    }
  })
})

describe('cache policy', () => {
  it.each([
    ['auto', 'push', true],
    ['auto', 'workflow_dispatch', true],
    ['auto', 'schedule', true],
    ['auto', 'pull_request', false],
    ['auto', 'pull_request_target', false],
    ['true', 'pull_request', true],
    ['false', 'push', false]
  ] as const)('cache-write %s on %s writes: %s', (setting, eventName, write) => {
    expect(decideCacheWrite(setting, { ...pushToMain, eventName }).write).toBe(write)
  })

  it('reads but never writes on a pull request, for every backend', () => {
    for (const cache of ['gha', 'registry', 'local'] as const) {
      const config = configWith({ cache }, pullRequest)
      const plan = planCache(config, { push: true, ghaAvailable: true, localDir: '/tmp/c', write: decideCacheWrite(config.cacheWrite, pullRequest).write })
      expect(plan.from.length).toBe(1)
      expect(plan.to).toEqual([])
      expect(plan.localExportDir).toBeUndefined()
    }
  })

  it('counts steps answered from cache and the layers the export wrote', () => {
    const log = [
      '#0 building with "b" instance using docker-container driver',
      '#4 importing cache manifest from gha:123',
      '#4 DONE 0.1s',
      '#5 [deps 1/2] FROM docker.io/library/debian@sha256:' + 'a'.repeat(64),
      '#5 CACHED',
      '#6 [deps 2/2] RUN cargo fetch',
      '#6 CACHED',
      '#7 [app 1/1] COPY src /src',
      '#7 DONE 0.2s',
      '#8 [internal] load build context',
      '#8 DONE 0.0s',
      '#12 exporting to GitHub Actions Cache',
      '#12 preparing build cache for export',
      `#12 writing layer sha256:${'b'.repeat(64)}`,
      `#12 writing layer sha256:${'b'.repeat(64)} 0.1s done`,
      `#12 writing layer sha256:${'c'.repeat(64)} done`,
      '#12 DONE 0.4s'
    ].join('\n')
    expect(cacheActivity(log)).toEqual({ steps: 3, cachedSteps: 2, layersWritten: 2, exported: true })
  })
})

describe('fork secrets', () => {
  it('keeps every fork secret rule in one place: an empty secret on a fork pull request is a notice, not an error', () => {
    const config = configWith({ secrets: 'cargo_token=' }, forkPullRequest)
    expect(planSecrets(config.secrets, config.ssh, envWith(), true).skipped).toHaveLength(1)
  })
})
