import { reachableAttempts, shapeOf } from '../../src/buildx/attempts.js'
import { containerdImageStore, currentContext, parseInspect, shouldRemoveBuilder } from '../../src/buildx/builder.js'
import type { GitHubContext } from '../../src/model/github.js'
import { decidePush } from '../../src/model/push.js'
import { buildResult, describeBuildPlan, plannedCommands } from '../../src/plan/build-report.js'
import { planBuild, type BuildProbes } from '../../src/plan/build.js'
import { registryCredentials } from '../../src/registry/auth.js'
import { configWith, envWith, pushToMain } from './helpers.js'

// The build planner, input to plan: every decision a build run makes is in the value planBuild
// returns, so these tables check the whole run without running docker.

const probes: BuildProbes = {
  nodeArch: 'x64',
  binfmtRegistered: false,
  dockerContext: 'default',
  workDir: '/w',
  startedAt: Date.parse('2026-01-01T00:00:00Z'),
  // the sha input abc1234 is not the event's commit: its time comes from git
  gitCommitTime: '2025-12-31T10:00:00.000Z'
}
const gha = envWith({ ACTIONS_RUNTIME_TOKEN: 'x.y.z', ACTIONS_RESULTS_URL: 'http://results/' })
const pullRequest: GitHubContext = { ...pushToMain, eventName: 'pull_request', ref: 'refs/pull/7/merge' }
const plan = (inputs: Record<string, string> = {}, o: { github?: GitHubContext; env?: typeof gha; probes?: Partial<BuildProbes> } = {}) =>
  planBuild(configWith(inputs, o.github), o.github ?? pushToMain, o.env ?? gha, { ...probes, ...o.probes })

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

  it('warns before anything runs when push: true meets a pull request', () => {
    expect(plan({ push: 'true' }, { github: pullRequest }).warnings).toEqual([expect.stringMatching(/push: true is ignored/)])
  })
})

describe('the build command of every attempt', () => {
  const p = plan({ 'build-args': 'RUST_VERSION=1.80', labels: 'team=core', target: 'runtime', provenance: 'mode=max' })

  it('is one buildx build with every flag in order', () => {
    // prettier-ignore
    expect(p.attempts.argv.push).toEqual([
      'buildx', 'build', '--builder', 'brokkr-builder', '--platform', 'linux/arm64', '--file', 'docker/Dockerfile.agent',
      '--target', 'runtime', '--tag', 'ghcr.io/colliery-io/brokkr-agent:abc1234-arm64', '--build-arg', 'RUST_VERSION=1.80',
      '--label', 'org.opencontainers.image.source=https://github.com/colliery-io/brokkr',
      '--label', 'org.opencontainers.image.revision=abc1234',
      '--label', 'org.opencontainers.image.created=2025-12-31T10:00:00.000Z',
      '--label', 'org.opencontainers.image.title=brokkr-agent',
      '--label', 'org.opencontainers.image.version=main',
      '--label', 'team=core', '--provenance=mode=max',
      '--cache-from', 'type=gha,scope=agent-arm64', '--cache-to', 'type=gha,scope=agent-arm64,mode=max,ignore-error=true',
      '--metadata-file', '/w/metadata.json', '--output', 'type=image,push=true,rewrite-timestamp=true,source-date-epoch=1767175200', '.'
    ])
  })

  it('holds every shape the run can reach, and only those', () => {
    // the shapes themselves are listed in attempts.test.ts
    expect(Object.keys(p.attempts.argv)).toEqual(reachableAttempts(p.attempts.first, true).map(shapeOf))
    expect(Object.keys(p.attempts.argv)).toHaveLength(8)
    expect(p.attempts.argv.layout!.slice(-3)).toEqual(['--output', 'type=oci,dest=/w/oci,tar=false,rewrite-timestamp=true,source-date-epoch=1767175200', '.'])
    expect(p.attempts.argv['push, no cache export']).not.toContain('--cache-to')
    const withoutRead = p.attempts.argv.push!.filter((a, i, all) => a !== '--cache-from' && all[i - 1] !== '--cache-from')
    const cold = p.attempts.argv['push, no cache read']!
    // on a fresh builder: a stalled import holds the one it ran on
    expect(cold.filter((a) => a !== '--no-cache')).toEqual(withoutRead.map((a) => (a === 'brokkr-builder' ? 'brokkr-cold-w' : a)))
    expect(p.coldBuilder?.argv).toEqual(['buildx', 'create', '--name', 'brokkr-cold-w', '--driver', 'docker-container', '--bootstrap'])
    expect(plan({ driver: 'remote', endpoint: 'tcp://buildkitd:1234' }).coldBuilder).toBeUndefined()
    // on the docker driver the fresh builder shares the engine's network (registries on localhost)
    expect(plan({ driver: 'docker' }).coldBuilder?.argv).toEqual([
      'buildx',
      'create',
      '--name',
      'brokkr-cold-w',
      '--driver',
      'docker-container',
      '--driver-opt',
      'network=host',
      '--bootstrap'
    ])
    expect(plan({ cache: 'none' }).coldBuilder).toBeUndefined()
    expect(cold).toContain('--no-cache')
    expect(Object.keys(plan({ push: 'false', cache: 'none' }).attempts.argv)).toEqual(['none', 'none, no cache export'])
  })

  it('keeps the result in the build cache when not pushing', () => {
    const argv = plan({ push: 'false' }).attempts.argv.none!
    expect(argv.slice(-3)).toEqual(['--output', 'type=cacheonly', '.'])
    expect(argv.join(' ')).not.toMatch(/--push|type=oci|type=image/)
  })

  it.each([
    ['', {}, '--provenance=mode=min'],
    ['', { BUILDX_NO_DEFAULT_ATTESTATIONS: '1' }, '--provenance=false'],
    ['', { BUILDX_NO_DEFAULT_ATTESTATIONS: 'false' }, '--provenance=mode=min'],
    ['mode=max', {}, '--provenance=mode=max']
  ])('attests the layout push as buildx attests its own (provenance %j, env %j): %s', (provenance, vars, expected) => {
    const p = plan({ provenance }, { env: envWith(vars) })
    expect(p.attempts.argv.layout).toContain(expected)
    expect(p.attempts.argv.push!.some((a) => a.startsWith('--provenance'))).toBe(provenance !== '')
  })

  it('adds contexts, secrets, no-cache and pull, and labels a release with its version', () => {
    const p = plan({ 'build-contexts': 'deps=../deps', 'no-cache': 'true', pull: 'true', 'secret-envs': 'x=V' }, { env: envWith({ V: 'v' }) })
    expect(p.attempts.argv.push!.join(' ')).toContain('--build-context deps=../deps --secret id=x,env=V --no-cache --pull')
    expect(plan({}, { github: { ...pushToMain, ref: 'refs/tags/v1.4.2' } }).attempts.argv.push).toContain('org.opencontainers.image.version=1.4.2')
  })
})

describe('the SBOM', () => {
  const generator = 'generator=registry.example/scanner:1'
  it.each([
    ['off by default', {}, []],
    ['false', { sbom: 'false' }, []],
    ["true: buildx's default scanner", { sbom: 'true' }, ['--sbom=true']],
    ['TRUE', { sbom: 'TRUE' }, ['--sbom=true']],
    ['a generator image', { sbom: generator }, ['--attest', `type=sbom,${generator}`]],
    ['a generator and a scan option', { sbom: `${generator},scan-stage=true` }, ['--attest', `type=sbom,${generator},scan-stage=true`]]
  ])('%s', (_name, inputs, expected) => {
    const p = plan(inputs)
    for (const argv of Object.values(p.attempts.argv)) {
      const at = argv.findIndex((a) => a === '--attest' || a.startsWith('--sbom'))
      expect(at < 0 ? [] : argv.slice(at, at + expected.length)).toEqual(expected)
      // beside provenance, before the cache and the output
      if (at >= 0) expect(at).toBeLessThan(argv.indexOf('--metadata-file'))
    }
    expect(describeBuildPlan(p).some((line) => line.startsWith('sbom: '))).toBe(expected.length > 0)
  })

  // the docker driver attaches attestations only with the containerd image store; the probe says
  // which store the engine uses (undefined: docker info did not answer, buildx is left to say)
  it.each([
    ['docker driver, containerd store', { driver: 'docker' }, true, false],
    ['docker driver, graph driver store', { driver: 'docker' }, false, true],
    ['docker driver, store unknown', { driver: 'docker' }, undefined, false],
    ['docker-container driver', { driver: 'docker-container' }, false, false],
    ['remote driver', { driver: 'remote', endpoint: 'tcp://bk:1234' }, false, false]
  ] as Array<[string, Record<string, string>, boolean | undefined, boolean]>)('sbom on the %s: refused %s', (_name, inputs, containerdStore, refused) => {
    const make = () => plan({ sbom: generator, ...inputs }, { probes: { containerdStore } })
    if (refused)
      expect(make).toThrow(/^sbom: the docker driver attaches attestations only with the engine's containerd image store; .*driver: docker-container/)
    else expect(make().attempts.argv.push).toContain(`type=sbom,${generator}`)
    // without an SBOM the store does not matter
    expect(plan(inputs, { probes: { containerdStore } }).attempts.argv.push).not.toContain('--attest')
  })

  it.each([
    ['containerd image store (Docker 26, 28)', '[["driver-type","io.containerd.snapshotter.v1"]]', true],
    [
      'overlay2',
      '[["Backing Filesystem","extfs"],["Supports d_type","true"],["Using metacopy","false"],["Native Overlay Diff","true"],["userxattr","false"]]',
      false
    ],
    ['vfs: no status', 'null', false],
    ['not JSON', 'template: :1: unexpected', undefined]
  ])("reads the image store from docker info's DriverStatus: %s", (_name, status, expected) => {
    expect(containerdImageStore(status)).toBe(expected)
  })
})

describe('the cache', () => {
  const registryRef = 'type=registry,ref=ghcr.io/colliery-io/brokkr-agent:buildcache-arm64'
  const localDir = '/runner/temp/brokkr-build-cache/agent-arm64'
  it.each([
    ['gha, service handed out', {}, gha, ['type=gha,scope=agent-arm64'], ['type=gha,scope=agent-arm64,mode=max,ignore-error=true']],
    ['gha, no service', {}, envWith(), [], []],
    ['gha, pull request reads only', { github: pullRequest }, gha, ['type=gha,scope=agent-arm64'], []],
    ['registry, pushing', { cache: 'registry' }, gha, [registryRef], [`${registryRef},mode=max,ignore-error=true`]],
    ['registry, not pushing', { cache: 'registry', push: 'false' }, gha, [registryRef], []],
    ['local', { cache: 'local' }, gha, [`type=local,src=${localDir}`], [`type=local,dest=${localDir}-next,mode=max,ignore-error=true`]],
    ['min mode', { 'cache-mode': 'min' }, gha, ['type=gha,scope=agent-arm64'], ['type=gha,scope=agent-arm64,mode=min,ignore-error=true']],
    ['none', { cache: 'none' }, gha, [], []]
  ] as Array<[string, Record<string, string> & { github?: GitHubContext }, typeof gha, string[], string[]]>)(
    '%s',
    (_name, { github, ...inputs }, env, from, to) => {
      const p = plan(inputs, { env, github })
      expect([p.cache.from, p.cache.to]).toEqual([from, to])
    }
  )

  it('warns once when gha was asked for but the runner handed out no cache service', () => {
    expect(plan({}, { env: envWith() }).warnings).toEqual([expect.stringMatching(/^cache: gha was asked for, but .* not available/)])
  })

  it('restores a local cache under a key of this run and saves it from the post step, only when writing', () => {
    const p = plan({ cache: 'local' }, { env: envWith({ GITHUB_RUN_ID: '42', GITHUB_RUN_ATTEMPT: '2' }) })
    expect(p.localCache).toEqual({ dir: localDir, prefix: 'brokkr-buildx-agent-arm64-', key: 'brokkr-buildx-agent-arm64-42-2', exportDir: `${localDir}-next` })
    expect(p.cleanup.saveLocalCache).toBe(true)
    expect(plan({ cache: 'local' }, { github: pullRequest }).cleanup.saveLocalCache).toBe(false)
  })
})

describe('qemu', () => {
  it.each([
    ['arm64 target on x64, not registered', {}, 'x64', false, true, true],
    ['arm64 target on x64, registered', {}, 'x64', true, false, true],
    ['arm64 target on arm64', {}, 'arm64', false, false, false],
    ['amd64 target on x64', { platform: 'linux/amd64' }, 'x64', false, false, false],
    ['amd64 target on arm64', { platform: 'linux/amd64' }, 'arm64', false, true, true],
    ['qemu false', { qemu: 'false' }, 'x64', false, false, true],
    ['qemu true even when registered', { qemu: 'true' }, 'x64', true, true, true],
    ['remote driver', { driver: 'remote', endpoint: 'tcp://x:1' }, 'x64', false, false, false]
  ])('%s', (_name, inputs, nodeArch, binfmtRegistered, install, emulated) => {
    const { qemu } = plan(inputs as Record<string, string>, { probes: { nodeArch: nodeArch as string, binfmtRegistered: binfmtRegistered as boolean } })
    expect(qemu).toMatchObject({ install, emulated })
    const arch = (inputs as Record<string, string>).platform === 'linux/amd64' ? 'amd64' : 'arm64'
    expect(qemu.argv).toEqual(install ? ['run', '--privileged', '--rm', 'tonistiigi/binfmt:latest', '--install', arch] : undefined)
  })
})

describe('the builder', () => {
  const container = parseInspect('Name: brokkr-builder\nDriver:   docker-container\n')
  const create = (driver: string, ...tail: string[]) => ['buildx', 'create', '--name', 'brokkr-builder', '--driver', driver, '--bootstrap', ...tail]
  it.each([
    ['docker driver: the docker context', { driver: 'docker' }, undefined, { kind: 'docker-context', name: 'default' }],
    ['nothing there: created', {}, undefined, { kind: 'create', name: 'brokkr-builder', argv: create('docker-container') }],
    [
      'remote: created at its endpoint',
      { driver: 'remote', endpoint: 'tcp://bk:1234' },
      undefined,
      { kind: 'create', argv: create('remote', 'tcp://bk:1234') }
    ],
    ['ours already there: reused', {}, container, { kind: 'reuse', name: 'brokkr-builder' }],
    [
      'reused with options it cannot take: a warning',
      { 'driver-opts': 'network=host' },
      container,
      { kind: 'reuse', warning: expect.stringMatching(/not applied/) }
    ]
  ])('%s', (_name, inputs, existingBuilder, expected) => {
    expect(plan(inputs as Record<string, string>, { probes: { existingBuilder } }).builder).toMatchObject(expected as object)
  })

  it('writes an inline buildkitd config into the run directory and names it in the create argv', () => {
    const { builder } = plan({ 'driver-opts': 'image=moby/buildkit:v0.25.2', 'buildkitd-config-inline': '[log]\n  format = "json"' })
    expect(builder).toMatchObject({ buildkitdConfig: { file: '/w/buildkitd.toml', text: '[log]\n  format = "json"' } })
    expect(builder.kind === 'create' && builder.argv.join(' ')).toBe(
      'buildx create --name brokkr-builder --driver docker-container --driver-opt image=moby/buildkit:v0.25.2 --buildkitd-config /w/buildkitd.toml --bootstrap'
    )
  })

  it('refuses a builder of another driver under our name before any docker command runs', () => {
    expect(() => plan({}, { probes: { existingBuilder: parseInspect('Name: brokkr-builder\nDriver: docker\n') } })).toThrow(/already exists with driver docker/)
  })

  it('finds the docker context without running docker, and removes only a builder this run created', () => {
    expect(currentContext(envWith({ DOCKER_HOST: 'unix:///x.sock' }))).toBe('default')
    expect(currentContext(envWith({ DOCKER_CONTEXT: 'desktop' }))).toBe('desktop')
    expect(plan().cleanup.removeBuilder).toBe('brokkr-builder')
    expect(plan({ 'keep-builder': 'true' }).cleanup.removeBuilder).toBeUndefined()
    expect(plan({}, { probes: { existingBuilder: container } }).cleanup.removeBuilder).toBeUndefined()
    expect([shouldRemoveBuilder('b', false), shouldRemoveBuilder('b', true), shouldRemoveBuilder(undefined, false)]).toEqual([true, false, false])
  })
})

describe('logins and the publish check', () => {
  const hub = { 'dockerhub-username': 'hubuser', 'dockerhub-token': 'hubtoken' }
  it.each([
    ['pushing', {}, pushToMain, ['ghcr.io'], []],
    ['pushing, and Docker Hub for pull limits', hub, pushToMain, ['ghcr.io', 'docker.io'], []],
    ['not pushing: Docker Hub only', { ...hub, push: 'false' }, pushToMain, ['docker.io'], []],
    ['no password: docker login as it is', { password: '', username: '' }, pushToMain, [], [expect.stringMatching(/^password is empty/)]],
    ['half a Docker Hub login', { 'dockerhub-username': 'hubuser' }, pushToMain, ['ghcr.io'], [expect.stringMatching(/dockerhub-token is empty/)]],
    ['a fork never logs in', hub, { ...pullRequest, fromFork: true }, [], [expect.stringMatching(/forks never log in/)]]
  ])('%s', (_name, inputs, github, registries, notices) => {
    const p = plan(inputs as Record<string, string>, { github: github as GitHubContext })
    expect(p.logins.map((l) => l.registry)).toEqual(registries)
    expect(p.notices).toEqual(notices)
    expect(p.cleanup.logout).toEqual(registries)
  })

  it('logs in to Docker Hub as the target registry for good, not as an optional pull-limit login', () => {
    const p = plan({ ...hub, image: 'docker.io/colliery/brokkr-agent', password: '', username: '' })
    expect(p.logins).toEqual([{ registry: 'docker.io', credentials: { username: 'hubuser', password: 'hubtoken' }, optional: false }])
    expect(plan(hub).logins.find((l) => l.registry === 'docker.io')?.optional).toBe(true)
    // and that login is what the action's own client pushes and checks with
    expect(registryCredentials(configWith({ ...hub, image: 'docker.io/colliery/brokkr-agent', password: '', username: '' }), '/nonexistent')).toEqual({
      username: 'hubuser',
      password: 'hubtoken'
    })
  })

  it.each([
    ['credentials in hand', {}, { username: 'u', password: 'p' }, undefined],
    ['no credentials the action can read', {}, undefined, 'no credentials the action can read; the push uses docker login'],
    ['publish-check: false', { 'publish-check': 'false' }, { username: 'u', password: 'p' }, 'publish-check: false'],
    ['dry run', { 'dry-run': 'true' }, { username: 'u', password: 'p' }, 'dry-run']
  ])('publish check with %s', (_name, inputs, credentials, skipped) => {
    expect(plan(inputs as Record<string, string>, { probes: { credentials } }).publishCheckSkipped).toBe(skipped)
  })
})

describe('what a dry run prints and reports', () => {
  const p = plan({ 'dry-run': 'true', secrets: 'token=hunter2' }, { probes: { credentials: { username: 'brokkr-bot', password: 'ghs_exampletoken' } } })
  const commands = plannedCommands(p)

  it('lists every docker command in order, secrets by name only', () => {
    expect(commands[0]).toBe('docker login ghcr.io --username brokkr-bot --password-stdin < (secret on stdin)')
    expect(commands[1]).toBe('docker run --privileged --rm tonistiigi/binfmt:latest --install arm64')
    expect(commands[2]).toBe('docker buildx create --name brokkr-builder --driver docker-container --bootstrap')
    expect(commands[3]).toMatch(
      /^docker buildx build --builder brokkr-builder .*--secret id=token,env=BROKKR_BUILD_SECRET_0 .*--output type=image,push=true,rewrite-timestamp=true,source-date-epoch=\d+ \.$/
    )
    expect(commands[4]).toMatch(
      /^\(if BuildKit's push fails midway, .*\) docker buildx build .*--output type=oci,dest=\/w\/oci,tar=false,rewrite-timestamp=true,source-date-epoch=\d+ \.$/
    )
    expect(commands).toContainEqual(
      expect.stringMatching(
        /^\(if reading the cache makes no progress within cache-timeout\) docker buildx build (?!.*--cache-from).*--output type=image,push=true,rewrite-timestamp=true,source-date-epoch=\d+ \.$/
      )
    )
    expect(commands).toContain(
      '(if reading the cache makes no progress within cache-timeout) docker buildx create --name brokkr-cold-w --driver docker-container --bootstrap'
    )
    expect(commands.slice(-3)).toEqual([
      '(post step) docker logout ghcr.io',
      '(post step, if made) docker buildx rm brokkr-cold-w',
      '(post step) docker buildx rm brokkr-builder'
    ])
    expect(JSON.stringify([commands, p.secrets.described])).not.toContain('hunter2')
    expect(p.masks).toEqual(['hunter2'])
  })

  it('reports the commands in the summary and pushes nothing', () => {
    const result = buildResult(p, { digest: '', metadata: '{}', publishCheck: { kind: 'skipped', reason: 'dry-run' } })
    expect(result.summary.title).toBe('Dry run: Brokkr build agent linux/arm64')
    expect(result.outputs).toMatchObject({ pushed: 'false', tag: 'abc1234-arm64', ref: 'ghcr.io/colliery-io/brokkr-agent:abc1234-arm64' })
    expect(result.summary.rows).toContainEqual(['commands', commands.join('\n')])
  })
})
