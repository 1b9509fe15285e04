import { InputError } from '../../src/model/errors.js'
import type { GitHubContext } from '../../src/model/github.js'
import { parseConfig, type BuildConfig, type Config, type ManifestConfig } from '../../src/config/parse.js'
import { imageNameProblem, registryOf } from '../../src/model/image.js'
import { BAD_INPUTS, defaultInputs } from '../fixtures/inputs.js'

const github: GitHubContext = {
  eventName: 'push',
  ref: 'refs/heads/main',
  sha: '0123456789abcdef0123456789abcdef01234567',
  repository: 'Colliery-IO/brokkr',
  owner: 'Colliery-IO',
  serverUrl: 'https://github.com',
  fromFork: false
}
const existing = new Set(['.', 'docker/Dockerfile.agent', 'docker/Dockerfile.broker'])

function parse(overrides: Record<string, string> = {}, gh: GitHubContext = github): Config {
  const inputs = { ...defaultInputs(), ...overrides }
  return parseConfig((name) => (inputs[name] ?? '').trim(), { github: gh, exists: (p) => existing.has(p) })
}

const build = (overrides: Record<string, string> = {}): BuildConfig => {
  const config = parse(overrides)
  if (config.mode !== 'build') throw new Error('expected a build config')
  return config
}
const manifest = (overrides: Record<string, string> = {}): ManifestConfig => {
  const config = parse({ mode: 'manifest', ...overrides })
  if (config.mode !== 'manifest') throw new Error('expected a manifest config')
  return config
}

describe('parseConfig', () => {
  it('resolves the action.yml defaults for a build', () => {
    const config = parse()
    expect(config).toMatchObject({
      mode: 'build',
      component: 'agent',
      platform: { os: 'linux', architecture: 'arm64' },
      image: 'ghcr.io/colliery-io/brokkr-agent',
      registry: 'ghcr.io',
      file: 'docker/Dockerfile.agent',
      context: '.',
      cache: 'gha',
      cacheScope: 'agent-arm64',
      cacheTimeoutMs: 600_000,
      driver: 'docker-container',
      builder: 'brokkr-builder',
      push: 'auto',
      retries: 5,
      retryDelayMs: 1000,
      dryRun: false
    })
  })

  it('takes the login registry from an explicit image', () => {
    const config = parse({ image: '127.0.0.1:5000/team/agent', registry: 'ghcr.io' })
    expect(config.image).toBe('127.0.0.1:5000/team/agent')
    expect(config.registry).toBe('127.0.0.1:5000')
  })

  it('names arm/v7 caches and tags arm-v7', () => {
    expect(build({ platform: 'linux/arm/v7' }).cacheScope).toBe('agent-arm-v7')
    expect(build({ platform: 'linux/arm64/v8' }).platform).toEqual({ os: 'linux', architecture: 'arm64' })
  })

  it('keeps a custom cache scope and splits newline lists', () => {
    const config = build({ 'cache-scope': 'nightly', 'build-args': 'A=1\n\n  B=two words \n', labels: 'team=core' })
    expect(config.cacheScope).toBe('nightly')
    expect(config.buildArgs).toEqual(['A=1', 'B=two words'])
    expect(config.labels).toEqual(['team=core'])
  })

  it('does not need a platform or a Dockerfile in manifest mode', () => {
    const config = manifest({ platform: '', file: 'docker/missing', tags: 'stable, edge\nstable' })
    expect(config).not.toHaveProperty('platform')
    expect(config.tags).toEqual(['stable', 'edge'])
  })

  it('gives each mode only its own fields', () => {
    const b = build()
    const m = manifest()
    for (const field of ['platforms', 'tags', 'autoTags', 'waitTimeoutMs']) expect(b).not.toHaveProperty(field)
    for (const field of ['platform', 'cache', 'cacheScope', 'cacheTimeoutMs', 'builder', 'driver', 'qemu', 'dockerHub']) expect(m).not.toHaveProperty(field)
    expect(m.platforms).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' }
    ])
    expect(m).toMatchObject({ autoTags: true, waitTimeoutMs: 600_000, retries: 5, image: 'ghcr.io/colliery-io/brokkr-agent' })
  })

  it('still checks the inputs of the other mode, in the same order as before', () => {
    expect(() => parse({ platforms: 'linux/amd64,linux/amd64' })).toThrow('platforms: linux/amd64 is listed twice')
    expect(() => parse({ mode: 'manifest', 'cache-scope': 'bad scope' })).toThrow('cache-scope:')
  })

  it('lowercases the sha and accepts durations in several units', () => {
    const config = manifest({ sha: 'ABCDEF1', 'retry-delay': '250ms', 'wait-timeout': '1m30s' })
    expect(config.sha).toBe('abcdef1')
    expect(config.retryDelayMs).toBe(250)
    expect(config.waitTimeoutMs).toBe(90_000)
  })

  it('needs an owner to derive the image', () => {
    expect(() => parse({}, { ...github, owner: '' })).toThrow('image:')
  })

  it.each(BAD_INPUTS)('rejects $name, naming $input', ({ input, set }) => {
    let caught: unknown
    try {
      parse(set)
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(InputError)
    expect((caught as InputError).input).toBe(input)
    expect((caught as Error).message.startsWith(`${input}: `)).toBe(true)
    expect((caught as Error).message).not.toContain('\n')
  })

  it('has at least 40 bad-input cases', () => {
    expect(BAD_INPUTS.length).toBeGreaterThanOrEqual(40)
  })
})

describe('image names', () => {
  it.each([
    ['ghcr.io/colliery-io/brokkr-agent', 'ghcr.io'],
    ['localhost:5000/a', 'localhost:5000'],
    ['brokkr/agent', 'docker.io'],
    ['agent', 'docker.io']
  ])('%s lives in %s', (image, registry) => {
    expect(registryOf(image)).toBe(registry)
    expect(imageNameProblem(image)).toBeUndefined()
  })
  it.each(['ghcr.io/a/b:tag', 'ghcr.io/a/b@sha256:00', 'ghcr.io/A/b', 'ghcr.io/a//b', 'ghcr.io/a/-b'])('rejects %s', (image) => {
    expect(imageNameProblem(image)).toBeDefined()
  })
})
