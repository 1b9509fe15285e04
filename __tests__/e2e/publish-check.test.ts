/**
 * Issue 10: a job that may not push fails in seconds, before any build step, as a job without
 * `permissions: packages: write` meets GHCR. The registry is the real distribution registry with
 * token authentication; its token service grants `reader` only pull and `writer` pull and push,
 * so the reader logs in fine and is refused only when it asks to write.
 */
import { randomBytes } from 'node:crypto'
import { resultExitCode, runAction } from './support/harness.mjs'
import { engineEnv, makeDockerConfig, readStackEnvSync } from './support/stack.mjs'
import { startRegistry } from '../support/registry.mjs'

type Result = Awaited<ReturnType<typeof runAction>>
const ENGINE = 'current' as const
const env = readStackEnvSync()
const engine = engineEnv(env, ENGINE)
const title = `[engine: ${ENGINE}, Docker ${engine.dockerVersion}, buildx ${engine.buildxVersion}, token-auth registry]`
const users = {
  reader: { password: `r-${randomBytes(8).toString('hex')}`, actions: ['pull'] },
  writer: { password: `w-${randomBytes(8).toString('hex')}`, actions: ['pull', 'push'] }
}
const newSha = () => randomBytes(20).toString('hex')

let registry: Awaited<ReturnType<typeof startRegistry>>
beforeAll(async () => {
  registry = await startRegistry({ auth: 'token', users })
})
afterAll(async () => {
  await registry?.close()
})

async function run(mode: 'build' | 'manifest', user: keyof typeof users, sha: string): Promise<Result> {
  return runAction({
    engine: ENGINE,
    sha,
    dockerConfig: makeDockerConfig({ engine: ENGINE }),
    secrets: Object.values(users).map((u) => u.password),
    inputs: {
      mode,
      component: 'agent',
      ...(mode === 'build' ? { platform: 'linux/amd64', 'build-args': `BASE_IMAGE=${engine.baseImage}` } : {}),
      registry: registry.host,
      image: `${registry.host}/colliery-io/brokkr-agent`,
      username: user,
      password: users[user].password,
      driver: 'docker',
      cache: 'none'
    }
  })
}

const errorsOf = (r: Result) => r.annotations.filter((a: any) => a.level === 'error' && a.step === 'main').map((a: any) => a.message)
/** Whether the registry holds the arch tag. */
const tagPushed = async (sha: string) => (await registry.manifest('colliery-io/brokkr-agent', `${sha}-amd64`)) !== undefined

describe(`publish check ${title}`, () => {
  it('a user who may only pull logs in, then fails in seconds, before the builder or any build step, with the permissions hint', async () => {
    const sha = newSha()
    const r = await run('build', 'reader', sha)
    expect(r.main.code).not.toBe(0)
    const errors = errorsOf(r)
    expect(errors).toHaveLength(1)
    // the real registry's own code and message, not only the status
    expect(errors[0]).toMatch(
      /colliery-io\/brokkr-agent: this job may not push there \(.*access denied \(HTTP 401, UNAUTHORIZED: authentication required\)\).*permissions: packages: write/
    )
    expect(r.main.stdout).toMatch(new RegExp(`logged in to ${registry.host.replace(/\./g, '\\.')} as reader`))
    expect(r.main.stdout).not.toMatch(/buildx (build|create)|::group::Builder/)
    expect(r.main.durationMs).toBeLessThan(15_000)
    // the token service was asked for push and granted only pull
    expect(
      registry.tokenRequests.some(
        (q: any) => q.user === 'reader' && q.scopes.some((s: any) => s.actions.includes('push')) && q.granted?.[0]?.actions.join(',') === 'pull'
      )
    ).toBe(true)
    expect(r.post?.log).toMatch(/Log out of/)
    expect(await tagPushed(sha)).toBe(false)
  }, 120_000)

  it('a user who may push passes the check, and the build pushes', async () => {
    const sha = newSha()
    const r = await run('build', 'writer', sha)
    if (resultExitCode(r) !== 0) console.log(r.log)
    expect(resultExitCode(r)).toBe(0)
    expect(r.main.stdout).toMatch(/publish check for \S+: push allowed \(an upload was opened and cancelled\)/)
    expect(r.summary).toMatch(/publish check.*push allowed/)
    expect(r.outputs.pushed).toBe('true')
    expect(await tagPushed(sha)).toBe(true)
  }, 300_000)

  it('manifest mode refuses before waiting for the arch images (wait-timeout 600 s)', async () => {
    const r = await run('manifest', 'reader', newSha())
    expect(r.main.code).not.toBe(0)
    expect(errorsOf(r)[0]).toMatch(/this job may not push there.*permissions: packages: write/)
    expect(r.main.stdout).not.toMatch(/::group::Wait for and verify/)
    expect(r.main.durationMs).toBeLessThan(15_000)
  }, 120_000)
})
