import { InputError } from '../../src/errors.js'
import type { GitHubContext } from '../../src/github-context.js'
import { parseConfig, registryOf, imageNameProblem } from '../../src/inputs.js'
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

function parse(overrides: Record<string, string> = {}, gh: GitHubContext = github) {
  const inputs = { ...defaultInputs(), ...overrides }
  return parseConfig((name) => (inputs[name] ?? '').trim(), { github: gh, exists: (p) => existing.has(p) })
}

describe('parseConfig', () => {
  it('resolves the action.yml defaults for a build', () => {
    const config = parse()
    expect(config).toMatchObject({
      mode: 'build',
      component: 'agent',
      platform: { os: 'linux', architecture: 'arm64' },
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' }
      ],
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
      autoTags: true,
      retries: 5,
      retryDelayMs: 1000,
      waitTimeoutMs: 600_000,
      dryRun: false
    })
  })

  it('takes the login registry from an explicit image', () => {
    const config = parse({ image: '127.0.0.1:5000/team/agent', registry: 'ghcr.io' })
    expect(config.image).toBe('127.0.0.1:5000/team/agent')
    expect(config.registry).toBe('127.0.0.1:5000')
  })

  it('names arm/v7 caches and tags arm-v7', () => {
    expect(parse({ platform: 'linux/arm/v7' }).cacheScope).toBe('agent-arm-v7')
    expect(parse({ platform: 'linux/arm64/v8' }).platform).toEqual({ os: 'linux', architecture: 'arm64' })
  })

  it('keeps a custom cache scope and splits newline lists', () => {
    const config = parse({ 'cache-scope': 'nightly', 'build-args': 'A=1\n\n  B=two words \n', labels: 'team=core' })
    expect(config.cacheScope).toBe('nightly')
    expect(config.buildArgs).toEqual(['A=1', 'B=two words'])
    expect(config.labels).toEqual(['team=core'])
  })

  it('does not need a platform or a Dockerfile in manifest mode', () => {
    const config = parse({ mode: 'manifest', platform: '', file: 'docker/missing', tags: 'stable, edge\nstable' })
    expect(config.platform).toBeUndefined()
    expect(config.tags).toEqual(['stable', 'edge'])
  })

  it('lowercases the sha and accepts durations in several units', () => {
    const config = parse({ sha: 'ABCDEF1', 'retry-delay': '250ms', 'wait-timeout': '1m30s' })
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
