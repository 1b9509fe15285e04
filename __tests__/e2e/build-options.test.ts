/**
 * Issue 10: what Brokkr's maintainers asked for, end to end on the current engine (Docker 28,
 * buildx 0.29, BuildKit 0.25 in a docker-container builder) with the cache service v2 double:
 * build secrets from all three inputs and an ssh mount in a Dockerfile that needs them, an extra
 * build context, a pinned BuildKit image (driver-opts), the registry settings of the builder given
 * inline (buildkitd-config-inline), the cache policy (written on main, read only on a pull request
 * that still reads main's entries), and no-cache with pull.
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mintRuntimeToken } from './support/cache-double.mjs'
import { startCacheV2Double } from './support/cache-v2-double.mjs'
import { resultExitCode, runAction } from './support/harness.mjs'
import { readImageFile } from './support/image-files.mjs'
import { buildkitdToml, docker, dockerEnv, engineEnv, forwardToBridge, makeDockerConfig, readStackEnvSync, registryManifest } from './support/stack.mjs'

type Result = Awaited<ReturnType<typeof runAction>>
const ENGINE = 'current' as const
const env = readStackEnvSync()
const engine = engineEnv(env, ENGINE)
const title = `[engine: ${ENGINE}, Docker ${engine.dockerVersion}, buildx ${engine.buildxVersion}, BuildKit ${engine.buildkitVersion ?? '?'}]`
const REPO = `options-${randomBytes(3).toString('hex')}/brokkr-broker`
const newSha = () => randomBytes(20).toString('hex')
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

// A Brokkr-shaped Dockerfile that cannot build without what the new inputs hand it
const DOCKERFILE = `ARG BASE_IMAGE
FROM \${BASE_IMAGE} AS deps
RUN --mount=type=secret,id=cargo_token,required=true \\
    --mount=type=secret,id=sccache,required=true \\
    --mount=type=secret,id=netrc,required=true \\
    mkdir -p /proof && cd /run/secrets && sha256sum cargo_token sccache netrc > /proof/secrets
RUN --mount=type=ssh,id=deploy,required=true test -S "$SSH_AUTH_SOCK" && echo "agent at $SSH_AUTH_SOCK" > /proof/ssh
COPY --from=vendored crate.txt /proof/context
FROM \${BASE_IMAGE}
COPY --from=deps /proof /proof
COPY src.txt /proof/src
`

const workspace = mkdtempSync(join(tmpdir(), 'brokkr-options-'))
const secretValues = {
  cargo: `cargo-${randomBytes(12).toString('hex')}`,
  sccache: `sccache-${randomBytes(12).toString('hex')}`,
  netrc: `machine x login y password ${randomBytes(8).toString('hex')}`
}
mkdirSync(join(workspace, 'docker'))
mkdirSync(join(workspace, 'vendored'))
mkdirSync(join(workspace, 'ci'))
writeFileSync(join(workspace, 'docker', 'Dockerfile.broker'), DOCKERFILE)
writeFileSync(join(workspace, 'vendored', 'crate.txt'), 'vendored crate\n')
writeFileSync(join(workspace, 'src.txt'), 'broker sources\n')
writeFileSync(join(workspace, 'ci', 'netrc'), secretValues.netrc, { mode: 0o600 })
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'brokkr-e2e', '-f', join(workspace, 'ci', 'deploy_key')])

/** Registry settings of the builder, given inline rather than through buildx's default file. */
const inlineConfig = buildkitdToml([engine.registry, engine.baseRegistry!])
const pinnedImage = `brokkr-e2e/buildkit:pinned-${randomBytes(3).toString('hex')}`

let cache: Awaited<ReturnType<typeof startCacheV2Double>>
let forward: Awaited<ReturnType<typeof forwardToBridge>>
const dockerConfig = makeDockerConfig({ engine: ENGINE })
const onEngine = dockerEnv(dockerConfig, { engine: ENGINE })

beforeAll(async () => {
  cache = await startCacheV2Double({ token: mintRuntimeToken({ scope: 'refs/heads/main' }) })
  // BuildKit runs in a container: it reaches the double through the bridge
  forward = await forwardToBridge(Number(new URL(cache.url).port))
  if (!engine.buildkitImage) throw new Error('the stack has no BuildKit image for the docker-container driver')
  await docker(['tag', engine.buildkitImage, pinnedImage], { env: onEngine })
}, 120_000)

afterAll(async () => {
  await forward?.stop()
  await cache?.close()
  await docker(['rmi', pinnedImage], { env: onEngine, allowFail: true })
  rmSync(workspace, { recursive: true, force: true })
})

async function build(o: { sha: string; event?: 'push' | 'pull_request'; token?: string; inputs?: Record<string, string>; builder?: string }): Promise<Result> {
  const builder = o.builder ?? `brokkr-options-${randomBytes(3).toString('hex')}`
  const result = await runAction({
    engine: ENGINE,
    cwd: workspace,
    event: o.event ?? 'push',
    sha: o.sha,
    dockerConfig,
    cache: { url: `http://${forward.address}/`, token: o.token ?? cache.token, version: 2 },
    secrets: [env.BROKKR_REGISTRY_PASSWORD, ...Object.values(secretValues)],
    env: { BROKKR_TEST_SCCACHE: secretValues.sccache },
    inputs: {
      mode: 'build',
      component: 'broker',
      platform: 'linux/amd64',
      registry: engine.registry,
      image: `${engine.registry}/${REPO}`,
      username: env.BROKKR_REGISTRY_USER,
      password: env.BROKKR_REGISTRY_PASSWORD,
      'build-args': `BASE_IMAGE=${engine.baseImage}`,
      builder,
      'driver-opts': `image=${pinnedImage}`,
      'buildkitd-config-inline': inlineConfig,
      'build-contexts': 'vendored=vendored',
      secrets: `cargo_token=${secretValues.cargo}`,
      'secret-envs': 'sccache=BROKKR_TEST_SCCACHE',
      'secret-files': 'netrc=ci/netrc',
      ssh: 'deploy=ci/deploy_key',
      ...(o.inputs ?? {})
    }
  })
  if (resultExitCode(result) !== 0) console.log(`build failed:\n${result.log}`)
  return result
}

/** Dockerfile steps of a build log, and which were CACHED. */
function steps(result: Result): { all: number; cached: number } {
  const text = `${result.main.stdout}\n${result.main.stderr}`
  const ids = new Set([...text.matchAll(/^#(\d+) \[[^\]]*\] (?:RUN|COPY)\b/gm)].map((m) => m[1]))
  const cached = [...text.matchAll(/^#(\d+) CACHED$/gm)].filter((m) => ids.has(m[1])).length
  return { all: ids.size, cached }
}

const creates = () => cache.requests.filter((q: any) => q.method === 'CreateCacheEntry').length
const lookups = () => cache.requests.filter((q: any) => q.method === 'GetCacheEntryDownloadURL').length

describe(`secrets, ssh, contexts and builder options ${title}`, () => {
  const sha = newSha()
  let main: Result

  it('builds a Dockerfile that needs three secrets, an ssh key and a named context, on a pinned BuildKit configured inline', async () => {
    cache.clearLog()
    const builder = `brokkr-options-${randomBytes(3).toString('hex')}`
    main = await build({ sha, builder, inputs: { 'keep-builder': 'true' } })
    // the builder runs the pinned image (kept for this look, then removed)
    const image = await docker(['inspect', '--format', '{{.Config.Image}}', `buildx_buildkit_${builder}0`], { env: onEngine, allowFail: true })
    await docker(['buildx', 'rm', '--force', builder], { env: onEngine, allowFail: true })
    expect(resultExitCode(main)).toBe(0)
    expect(image.stdout.trim()).toBe(pinnedImage)
    const digests = await readImageFile(REPO, `${sha}-amd64`, '/proof/secrets')
    expect(digests).toBe(`${sha256(secretValues.cargo)}  cargo_token\n${sha256(secretValues.sccache)}  sccache\n${sha256(secretValues.netrc)}  netrc\n`)
    expect(await readImageFile(REPO, `${sha}-amd64`, '/proof/ssh')).toMatch(/^agent at \//)
    expect(await readImageFile(REPO, `${sha}-amd64`, '/proof/context')).toBe('vendored crate\n')
    expect((await registryManifest(REPO, `${sha}-amd64`)).digest).toBe(main.outputs.digest)
    // what was written: the cache, and the summary says so
    expect(creates()).toBeGreaterThan(0)
    expect(main.summary).toMatch(/cache activity.*steps CACHED; \d+ new layer entr(y|ies) written, plus the index/)
    expect(main.summary).toContain('cargo_token (value), sccache (env BROKKR_TEST_SCCACHE), netrc (file ci/netrc), ssh deploy (ci/deploy_key)')
  }, 300_000)

  it('never lets a secret value out: not in logs, argv, summary or outputs', () => {
    const scrub = (text: string) =>
      text
        .split('\n')
        .filter((l) => !l.trimStart().startsWith('::add-mask::'))
        .join('\n')
    const visible = [scrub(main.main.stdout), scrub(main.main.stderr), main.log, main.summary, JSON.stringify(main.outputs)].join('\n')
    for (const value of Object.values(secretValues)) expect(visible).not.toContain(value)
    expect(main.main.stdout).toMatch(
      /--secret id=cargo_token,env=BROKKR_BUILD_SECRET_0 --secret id=sccache,env=BROKKR_TEST_SCCACHE --secret id=netrc,src=ci\/netrc --ssh deploy=ci\/deploy_key/
    )
  })

  it("a pull request reads main's entries (every step CACHED after a prune) and writes none", async () => {
    cache.clearLog()
    const pr = await build({
      sha: newSha(),
      event: 'pull_request',
      // as the runner scopes a pull request: its merge ref writable, the base branch readable
      token: mintRuntimeToken({
        scopes: [
          { Scope: 'refs/pull/7/merge', Permission: 3 },
          { Scope: 'refs/heads/main', Permission: 1 }
        ]
      })
    })
    expect(resultExitCode(pr)).toBe(0)
    expect(pr.main.stdout).toMatch(/cache: gha scope broker-amd64 \(read only\), read only on pull requests/)
    expect(pr.main.stdout).not.toMatch(/--cache-to/)
    expect(lookups()).toBeGreaterThan(0)
    expect(creates()).toBe(0)
    const s = steps(pr)
    expect(s.all).toBeGreaterThanOrEqual(4)
    expect(s.cached).toBe(s.all)
    expect(pr.summary).toMatch(/cache activity.*nothing written \(read only\)/)
  }, 300_000)

  it('no-cache rebuilds every step and pull fetches the base image again', async () => {
    cache.clearLog()
    const again = await build({ sha: newSha(), inputs: { 'no-cache': 'true', pull: 'true', 'cache-mode': 'min' } })
    expect(resultExitCode(again)).toBe(0)
    expect(again.main.stdout).toMatch(/ --no-cache --pull /)
    expect(again.main.stdout).toMatch(/--cache-to type=gha,scope=broker-amd64,mode=min,ignore-error=true/)
    expect(steps(again).cached).toBe(0)
    expect(creates()).toBeGreaterThan(0)
  }, 300_000)
})

describe(`SBOM and provenance with the docker-container driver ${title}`, () => {
  it("attaches our generator's SPDX document and provenance to both platforms, and the index carries both", async () => {
    const generator = engine.sbomGenerator
    if (!generator) throw new Error('the stack has no SBOM generator image (stack.sh up writes BROKKR_CURRENT_SBOM_GENERATOR)')
    const sha = newSha()
    for (const platform of ['linux/amd64', 'linux/arm64']) {
      const r = await build({ sha, inputs: { platform, sbom: `generator=${generator}`, provenance: 'mode=max', cache: 'none' } })
      expect(resultExitCode(r)).toBe(0)
      expect(r.main.stdout).toContain(`--attest type=sbom,generator=${generator}`)
      expect(`${r.main.stdout}\n${r.main.stderr}`).toContain(`generating sbom using ${generator}`)
    }
    // BuildKit pushed through the bridge address; the action's own client reads the same registry on loopback
    const m = await runAction({
      engine: ENGINE,
      cwd: workspace,
      event: 'push',
      sha,
      dockerConfig,
      secrets: [env.BROKKR_REGISTRY_PASSWORD],
      inputs: {
        mode: 'manifest',
        component: 'broker',
        image: `${engine.localRegistry}/${REPO}`,
        username: env.BROKKR_REGISTRY_USER,
        password: env.BROKKR_REGISTRY_PASSWORD
      }
    })
    if (resultExitCode(m) !== 0) console.log(`manifest failed:\n${m.log}`)
    expect(resultExitCode(m)).toBe(0)
    // read back by a client that is not ours: buildx 0.29's imagetools
    const reader = dockerEnv(makeDockerConfig({ engine: ENGINE, auth: true }), { engine: ENGINE })
    const inspect = async (format: string) =>
      JSON.parse((await docker(['buildx', 'imagetools', 'inspect', `${engine.localRegistry}/${REPO}:${sha}`, '--format', format], { env: reader })).stdout)
    const sbom = await inspect('{{json .SBOM}}')
    const provenance = await inspect('{{json .Provenance}}')
    expect(Object.keys(sbom).sort()).toEqual(['linux/amd64', 'linux/arm64'])
    expect(Object.keys(provenance).sort()).toEqual(['linux/amd64', 'linux/arm64'])
    for (const platform of ['linux/amd64', 'linux/arm64']) {
      expect(sbom[platform].SPDX).toMatchObject({ spdxVersion: 'SPDX-2.3', SPDXID: 'SPDXRef-DOCUMENT' })
      expect(sbom[platform].SPDX.creationInfo.creators).toContain('Tool: brokkr-e2e-sbom-generator-1')
      expect(sbom[platform].SPDX.files.map((f: any) => f.fileName)).toEqual(expect.arrayContaining(['./bin/busybox', './proof/secrets', './proof/src']))
      expect(provenance[platform].SLSA).toMatchObject({ buildType: expect.any(String), invocation: expect.any(Object) })
    }
  }, 600_000)
})
