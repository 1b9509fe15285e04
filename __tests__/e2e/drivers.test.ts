/**
 * Issue 8: the default `docker-container` driver and the `remote` driver, end to end on the
 * current engine generation (Docker 28, buildx 0.29). The BuildKit image is the stack's own,
 * loaded as moby/buildkit:buildx-stable-1 (buildx uses the local image when the pull fails), so
 * the action runs exactly as users run it, with no test-only switch.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stopProcesses, trackProcess } from '../support/processes.mjs'
import { resultExitCode, runAction } from './support/harness.mjs'
import { imageConfigPlatform, readImageFile } from './support/image-files.mjs'
import { buildkitdToml, docker, dockerEnv, engineEnv, makeDockerConfig, readStackEnvSync, registryManifest } from './support/stack.mjs'

type Result = Awaited<ReturnType<typeof runAction>>
const ENGINE = 'current' as const
const env = readStackEnvSync()
const engine = engineEnv(env, ENGINE)
const title = `[engine: ${ENGINE}, Docker ${engine.dockerVersion}, buildx ${engine.buildxVersion}, BuildKit ${engine.buildkitVersion ?? '?'}]`
const REPO = 'drivers/brokkr-agent'
const newSha = () => randomBytes(20).toString('hex')
const unique = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`

/** A DOCKER_CONFIG whose new builders treat the stack's registries as plain http (buildx copies the file into each). */
function containerDriverConfig(extraToml = ''): string {
  const dir = makeDockerConfig({ engine: ENGINE })
  mkdirSync(join(dir, 'buildx'), { recursive: true })
  writeFileSync(join(dir, 'buildx', 'buildkitd.default.toml'), buildkitdToml([engine.registry, engine.baseRegistry!]) + extraToml)
  return dir
}

async function build(o: {
  dockerConfig: string
  platform: string
  sha: string
  inputs?: Record<string, string>
  registry?: string
  baseImage?: string
  failureExpected?: boolean
}): Promise<Result> {
  const registry = o.registry ?? engine.registry
  const result = await runAction({
    engine: ENGINE,
    sha: o.sha,
    dockerConfig: o.dockerConfig,
    secrets: [env.BROKKR_REGISTRY_PASSWORD],
    inputs: {
      mode: 'build',
      component: 'agent',
      platform: o.platform,
      registry,
      image: `${registry}/${REPO}`,
      username: env.BROKKR_REGISTRY_USER,
      password: env.BROKKR_REGISTRY_PASSWORD,
      cache: 'none',
      'build-args': `BASE_IMAGE=${o.baseImage ?? engine.baseImage}`,
      ...(o.inputs ?? {})
    }
  })
  if (resultExitCode(result) !== 0 && !o.failureExpected) console.log(`build ${o.platform} failed:\n${result.log}`)
  return result
}

async function builders(dockerConfig: string): Promise<string> {
  return (await docker(['buildx', 'ls'], { env: dockerEnv(dockerConfig, { engine: ENGINE }) })).stdout
}

async function containers(dockerConfig: string): Promise<string> {
  return (await docker(['ps', '-a', '--format', '{{.Names}}'], { env: dockerEnv(dockerConfig, { engine: ENGINE }) })).stdout
}

describe(`docker-container driver ${title}`, () => {
  const dockerConfig = containerDriverConfig()
  const builder = unique('brokkr-e2e')
  const sha = newSha()
  afterAll(async () => {
    await docker(['buildx', 'rm', '--force', builder], { env: dockerEnv(dockerConfig, { engine: ENGINE }), allowFail: true })
  })

  it('creates and bootstraps the builder, builds and pushes amd64, keeps it with keep-builder: true', async () => {
    const r = await build({ dockerConfig, platform: 'linux/amd64', sha, inputs: { builder, 'keep-builder': 'true' } })
    expect(resultExitCode(r)).toBe(0)
    expect(r.main.stdout).toMatch(new RegExp(`builder ${builder} \\(created\\)`))
    expect(JSON.parse(r.state.brokkr)).toMatchObject({ builderCreated: builder, keepBuilder: true })
    expect(await builders(dockerConfig)).toMatch(new RegExp(`${builder}\\*?\\s+docker-container`))
    expect(await containers(dockerConfig)).toContain(`buildx_buildkit_${builder}0`)
    const tag = await registryManifest(REPO, `${sha}-amd64`)
    expect(tag.digest).toBe(r.outputs.digest)
    expect(await imageConfigPlatform(REPO, `${sha}-amd64`)).toBe('linux/amd64')
  })

  it('reuses that builder for arm64 (under QEMU) and leaves it in place, as it did not create it', async () => {
    const r = await build({ dockerConfig, platform: 'linux/arm64', sha, inputs: { builder } })
    expect(resultExitCode(r)).toBe(0)
    expect(r.main.stdout).toMatch(new RegExp(`builder ${builder} \\(reused\\)`))
    expect(JSON.parse(r.state.brokkr ?? '{}').builderCreated).toBeUndefined()
    expect(await builders(dockerConfig)).toContain(builder)
    expect((await readImageFile(REPO, `${sha}-arm64`, '/etc/brokkr/uname'))?.trim()).toBe('aarch64')
    expect((await registryManifest(REPO, `${sha}-arm64`)).digest).toBe(r.outputs.digest)
  })

  it('a builder it creates without keep-builder is removed by the post step, container included', async () => {
    const own = unique('brokkr-e2e-own')
    const r = await build({ dockerConfig, platform: 'linux/amd64', sha: newSha(), inputs: { builder: own } })
    expect(resultExitCode(r)).toBe(0)
    expect(r.post?.log).toMatch(new RegExp(`Remove builder ${own}`))
    expect(await builders(dockerConfig)).not.toContain(own)
    expect(await containers(dockerConfig)).not.toContain(`buildx_buildkit_${own}0`)
  })

  it('leaves nothing behind when the builder cannot be created, and fails in one line', async () => {
    // a BuildKit that cannot start: its worker asks for a snapshotter that does not exist
    const broken = containerDriverConfig('\n[worker.oci]\n  snapshotter = "no-such-snapshotter"\n')
    const name = unique('brokkr-e2e-broken')
    const before = await builders(broken)
    const r = await build({ dockerConfig: broken, platform: 'linux/amd64', sha: newSha(), inputs: { builder: name }, failureExpected: true })
    expect(r.main.code).not.toBe(0)
    const errors = r.annotations.filter((a: any) => a.level === 'error' && a.step === 'main')
    expect(errors).toHaveLength(1)
    expect(errors[0].message).toMatch(new RegExp(`creating builder ${name} failed`))
    expect(await builders(broken)).toBe(before)
    expect(await containers(broken)).not.toContain(`buildx_buildkit_${name}0`)
    // and the next run creates it afresh instead of "reusing" a dead one
    rmSync(join(broken, 'buildx', 'buildkitd.default.toml'))
    writeFileSync(join(broken, 'buildx', 'buildkitd.default.toml'), buildkitdToml([engine.registry, engine.baseRegistry!]))
    const again = await build({ dockerConfig: broken, platform: 'linux/amd64', sha: newSha(), inputs: { builder: name } })
    expect(resultExitCode(again)).toBe(0)
    expect(again.main.stdout).toMatch(new RegExp(`builder ${name} \\(created\\)`))
  })
})

/** buildkitd, buildctl and runc taken out of the stack's BuildKit image (docker-archive, one layer). */
function buildkitBinaries(dir: string): string {
  const image = join(env.BROKKR_STACK_CACHE, 'buildkit', 'image.tar')
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', image, 'manifest.json']).toString())
  const layer = execFileSync('tar', ['-xOf', image, manifest[0].Layers[0]], { maxBuffer: 1 << 30 })
  execFileSync('tar', ['-x', '-C', dir, 'usr/bin/buildkitd', 'usr/bin/buildctl', 'usr/bin/runc'], { input: layer })
  return join(dir, 'usr', 'bin')
}

/** buildkitd from the stack's BuildKit image on this host, as users run a remote BuildKit. */
async function startBuildkitd(addresses: string[], root: string, configToml: string): Promise<{ stop: () => Promise<void> }> {
  const bin = buildkitBinaries(root)
  writeFileSync(join(root, 'buildkitd.toml'), configToml)
  const { spawn } = await import('node:child_process')
  const child = spawn(
    join(bin, 'buildkitd'),
    [...addresses.flatMap((a) => ['--addr', a]), '--root', join(root, 'state'), '--config', join(root, 'buildkitd.toml')],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }
    }
  )
  let log = ''
  child.stderr.on('data', (b) => (log += b.toString()))
  trackProcess(child.pid!, `buildkitd ${addresses.join(' ')}`)
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      for (const address of addresses) execFileSync(join(bin, 'buildctl'), ['--addr', address, 'debug', 'workers'], { stdio: 'pipe' })
      break
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`buildkitd on ${addresses.join(' ')} did not start:\n${log}`)
      await new Promise((r) => setTimeout(r, 300))
    }
  }
  return {
    stop: async () => {
      await stopProcesses([{ pid: child.pid!, label: 'buildkitd' }], { graceMs: 30_000 })
    }
  }
}

describe(`remote driver against a buildkitd on this host ${title}`, () => {
  const root = mkdtempSync(join(tmpdir(), 'brokkr-remote-buildkitd-'))
  const port = 20000 + Math.floor(Math.random() * 20000)
  const endpoints = [`tcp://127.0.0.1:${port}`, `unix://${join(root, 'buildkitd.sock')}`]
  let daemon: { stop: () => Promise<void> } | undefined
  beforeAll(async () => {
    // the host reaches the registries on loopback; BuildKit must talk plain http to them
    daemon = await startBuildkitd(endpoints, root, buildkitdToml([env.BROKKR_REGISTRY, env.BROKKR_BASE_REGISTRY]))
  }, 60_000)
  afterAll(async () => {
    await daemon?.stop()
    rmSync(root, { recursive: true, force: true })
  })

  it.each([
    ['tcp', 0],
    ['unix socket', 1]
  ])('builds both arches through %s, then removes the builder it created', async (_kind, i) => {
    {
      // a config without buildkitd.default.toml: buildx refuses it for the remote driver
      const dockerConfig = makeDockerConfig({ engine: ENGINE })
      const name = unique('brokkr-e2e-remote')
      const sha = newSha()
      for (const platform of ['linux/amd64', 'linux/arm64']) {
        const r = await build({
          dockerConfig,
          platform,
          sha,
          registry: env.BROKKR_REGISTRY,
          baseImage: env.BROKKR_BASE_IMAGE,
          inputs: { driver: 'remote', endpoint: endpoints[i], builder: name }
        })
        expect(resultExitCode(r)).toBe(0)
        expect(await imageConfigPlatform(REPO, `${sha}-${platform.split('/')[1]}`)).toBe(platform)
        expect((await registryManifest(REPO, `${sha}-${platform.split('/')[1]}`)).digest).toBe(r.outputs.digest)
        expect(await builders(dockerConfig)).not.toContain(name)
      }
    }
  })
})
