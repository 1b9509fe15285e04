import { createBuilderArgv, decideBuilder, parseInspect, shouldRemoveBuilder } from '../../src/build/builder.js'
import { ghaCacheAvailable, planCache } from '../../src/build/cache.js'
import { buildArgv, defaultProvenance, ociLabels } from '../../src/build/plan.js'
import { decideQemu, qemuInstallArgv } from '../../src/build/qemu.js'
import { decidePush } from '../../src/model/push.js'
import { loginArgv } from '../../src/registry/auth.js'
import { configWith, pushToMain } from './helpers.js'

const ghaEnv = { ACTIONS_RUNTIME_TOKEN: 'x.y.z', ACTIONS_CACHE_URL: 'http://cache/' }

describe('push decision', () => {
  it.each([
    ['auto', 'push', false, true],
    ['auto', 'workflow_dispatch', false, true],
    ['auto', 'release', false, true],
    ['auto', 'pull_request', false, false],
    ['auto', 'pull_request_target', false, false],
    ['auto', 'issue_comment', false, false],
    ['auto', 'push', true, false],
    ['true', 'push', false, true],
    ['true', 'issue_comment', false, true],
    ['true', 'pull_request', false, false],
    ['true', 'push', true, false],
    ['false', 'push', false, false]
  ] as const)('push: %s on %s (fork %s) pushes: %s', (setting, eventName, fromFork, expected) => {
    expect(decidePush(setting, { ...pushToMain, eventName, fromFork }).push).toBe(expected)
  })

  it('warns when push: true meets a pull request', () => {
    expect(decidePush('true', { ...pushToMain, eventName: 'pull_request' }).warning).toMatch(/push: true is ignored/)
  })
})

describe('build argv', () => {
  const config = configWith({ 'build-args': 'RUST_VERSION=1.80', labels: 'team=core', target: 'runtime', provenance: 'mode=max' })
  const cache = planCache(config, true, ghaEnv, '/tmp/c', true)
  const labels = ociLabels(config, pushToMain, '2026-01-01T00:00:00Z')

  it('is one buildx build with every flag in order', () => {
    expect(
      buildArgv(config, {
        builder: 'brokkr-builder',
        output: { kind: 'push' },
        metadataFile: '/tmp/m.json',
        labels,
        cache,
        includeCacheFrom: true,
        defaultProvenance: 'mode=min',
        secretArgs: []
      })
    ).toEqual([
      'buildx',
      'build',
      '--builder',
      'brokkr-builder',
      '--platform',
      'linux/arm64',
      '--file',
      'docker/Dockerfile.agent',
      '--target',
      'runtime',
      '--tag',
      'ghcr.io/colliery-io/brokkr-agent:abc1234-arm64',
      '--build-arg',
      'RUST_VERSION=1.80',
      '--label',
      'org.opencontainers.image.source=https://github.com/colliery-io/brokkr',
      '--label',
      'org.opencontainers.image.revision=abc1234',
      '--label',
      'org.opencontainers.image.created=2026-01-01T00:00:00Z',
      '--label',
      'org.opencontainers.image.title=brokkr-agent',
      '--label',
      'org.opencontainers.image.version=main',
      '--label',
      'team=core',
      '--provenance=mode=max',
      '--cache-from',
      'type=gha,scope=agent-arm64',
      '--cache-to',
      'type=gha,scope=agent-arm64,mode=max,ignore-error=true',
      '--metadata-file',
      '/tmp/m.json',
      '--push',
      '.'
    ])
  })

  it('keeps the result in the build cache when not pushing', () => {
    const argv = buildArgv(config, {
      builder: 'b',
      output: { kind: 'none' },
      metadataFile: 'm',
      labels: [],
      cache,
      includeCacheFrom: true,
      defaultProvenance: 'mode=min',
      secretArgs: []
    })
    expect(argv.slice(-3)).toEqual(['--output', 'type=cacheonly', '.'])
    expect(argv.join(' ')).not.toMatch(/--push|type=oci|type=image/)
  })

  it('exports an OCI layout for our own pusher after BuildKit failed to push', () => {
    const argv = buildArgv(config, {
      builder: 'b',
      output: { kind: 'layout', dir: '/t/oci' },
      metadataFile: 'm',
      labels: [],
      cache,
      includeCacheFrom: true,
      defaultProvenance: 'mode=min',
      secretArgs: []
    })
    expect(argv.slice(-3)).toEqual(['--output', 'type=oci,dest=/t/oci,tar=false', '.'])
    expect(argv).not.toContain('--push')
  })

  it('attests the layout push as buildx attests its own push, so one index never mixes shapes', () => {
    const layout = (provenance: string, defaults: string) =>
      buildArgv(
        { ...config, provenance },
        {
          builder: 'b',
          output: { kind: 'layout', dir: '/o' },
          metadataFile: 'm',
          labels: [],
          cache,
          includeCacheFrom: true,
          defaultProvenance: defaults,
          secretArgs: []
        }
      )
    expect(layout('', 'mode=min')).toContain('--provenance=mode=min')
    expect(layout('', 'false')).toContain('--provenance=false')
    expect(layout('mode=max', 'mode=min')).toContain('--provenance=mode=max')
    const pushed = buildArgv(
      { ...config, provenance: '' },
      {
        builder: 'b',
        output: { kind: 'push' },
        metadataFile: 'm',
        labels: [],
        cache,
        includeCacheFrom: true,
        defaultProvenance: 'mode=min',
        secretArgs: []
      }
    )
    expect(pushed.join(' ')).not.toContain('--provenance')
    expect(defaultProvenance({})).toBe('mode=min')
    expect(defaultProvenance({ BUILDX_NO_DEFAULT_ATTESTATIONS: '1' })).toBe('false')
    expect(defaultProvenance({ BUILDX_NO_DEFAULT_ATTESTATIONS: 'false' })).toBe('mode=min')
  })

  it('labels a release with its version', () => {
    const tagged = ociLabels(config, { ...pushToMain, ref: 'refs/tags/v1.4.2' }, 'now')
    expect(tagged).toContain('org.opencontainers.image.version=1.4.2')
  })
})

describe('cache plan', () => {
  const config = configWith()
  it('uses gha only when the runner handed out the cache service', () => {
    expect(ghaCacheAvailable(ghaEnv)).toBe(true)
    expect(ghaCacheAvailable({ ACTIONS_RUNTIME_TOKEN: 't', ACTIONS_RESULTS_URL: 'http://r/' })).toBe(true)
    expect(ghaCacheAvailable({ ACTIONS_CACHE_URL: 'http://c/' })).toBe(false)
    const off = planCache(config, true, {}, '/d', true)
    expect(off).toMatchObject({ status: 'unavailable', from: [], to: [] })
    expect(off.note).toMatch(/not available/)
  })
  it('exports registry cache only when pushing', () => {
    const c = configWith({ cache: 'registry' })
    expect(planCache(c, true, {}, '/d', true)).toMatchObject({
      from: ['type=registry,ref=ghcr.io/colliery-io/brokkr-agent:buildcache-arm64'],
      to: ['type=registry,ref=ghcr.io/colliery-io/brokkr-agent:buildcache-arm64,mode=max,ignore-error=true']
    })
    expect(planCache(c, false, {}, '/d', true).to).toEqual([])
  })
  it('exports a local cache to a fresh directory', () => {
    const c = configWith({ cache: 'local' })
    expect(planCache(c, true, {}, '/tmp/agent-arm64', true)).toMatchObject({
      from: ['type=local,src=/tmp/agent-arm64'],
      to: ['type=local,dest=/tmp/agent-arm64-next,mode=max,ignore-error=true'],
      localExportDir: '/tmp/agent-arm64-next'
    })
  })
  it('has no flags for none', () => {
    const c = configWith({ cache: 'none' })
    expect(planCache(c, true, ghaEnv, '/d', true)).toMatchObject({ from: [], to: [], status: 'off' })
  })
})

describe('other commands', () => {
  it('logs in with the password on stdin only', () => {
    expect(loginArgv('ghcr.io', 'bot')).toEqual(['login', 'ghcr.io', '--username', 'bot', '--password-stdin'])
  })
  it('installs one emulator', () => {
    expect(qemuInstallArgv('tonistiigi/binfmt:latest', { os: 'linux', architecture: 'arm64' })).toEqual([
      'run',
      '--privileged',
      '--rm',
      'tonistiigi/binfmt:latest',
      '--install',
      'arm64'
    ])
  })
  it('creates builders per driver', () => {
    expect(createBuilderArgv(configWith())).toEqual(['buildx', 'create', '--name', 'brokkr-builder', '--driver', 'docker-container', '--bootstrap'])
    expect(createBuilderArgv(configWith({ driver: 'remote', endpoint: 'tcp://bk:1234' }))).toEqual([
      'buildx',
      'create',
      '--name',
      'brokkr-builder',
      '--driver',
      'remote',
      '--bootstrap',
      'tcp://bk:1234'
    ])
    expect(createBuilderArgv(configWith({ driver: 'docker' }))).toBeUndefined()
  })
})

describe('qemu decision', () => {
  const arm = configWith()
  const amd = configWith({ platform: 'linux/amd64' })
  it.each([
    ['arm64 target on x64, not registered', arm, 'x64', false, true, true],
    ['arm64 target on x64, registered', arm, 'x64', true, false, true],
    ['arm64 target on arm64', arm, 'arm64', false, false, false],
    ['amd64 target on x64', amd, 'x64', false, false, false],
    ['amd64 target on arm64', amd, 'arm64', false, true, true],
    ['qemu false', configWith({ qemu: 'false' }), 'x64', false, false, true],
    ['qemu true even when registered', configWith({ qemu: 'true' }), 'x64', true, true, true],
    ['remote driver', configWith({ driver: 'remote', endpoint: 'tcp://x:1' }), 'x64', false, false, false]
  ])('%s', (_name, config, nodeArch, registered, install, emulated) => {
    expect(decideQemu(config, nodeArch as string, registered as boolean)).toMatchObject({ install, emulated })
  })
})

describe('builder decision', () => {
  it('uses the docker context for the docker driver', () => {
    expect(decideBuilder(configWith({ driver: 'docker' }), { DOCKER_HOST: 'unix:///x.sock' }, undefined)).toEqual({ kind: 'docker-context', name: 'default' })
    expect(decideBuilder(configWith({ driver: 'docker' }), { DOCKER_CONTEXT: 'desktop' }, undefined)).toEqual({ kind: 'docker-context', name: 'desktop' })
  })
  it('creates, reuses or refuses a builder of another driver', () => {
    const config = configWith()
    expect(decideBuilder(config, {}, undefined).kind).toBe('create')
    expect(decideBuilder(config, {}, parseInspect('Name: brokkr-builder\nDriver:   docker-container\n')).kind).toBe('reuse')
    const clash = decideBuilder(config, {}, parseInspect('Name: brokkr-builder\nDriver: docker\n'))
    expect(clash.kind).toBe('conflict')
  })
  it('removes only a builder this run created, unless kept', () => {
    expect(shouldRemoveBuilder('brokkr-builder', false)).toBe(true)
    expect(shouldRemoveBuilder('brokkr-builder', true)).toBe(false)
    expect(shouldRemoveBuilder(undefined, false)).toBe(false)
  })
})
