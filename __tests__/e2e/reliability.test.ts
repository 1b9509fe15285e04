/**
 * Issue 4: reliability scenarios, end to end.
 *
 * Every scenario is a real run of the bundled action (dist/ through the runner harness) against
 * the e2e stack: a real Docker engine + buildx + QEMU and an htpasswd registry, with the fault
 * proxy in front of the registry (the action's `registry` input is the proxy's host, so the
 * proxy sees every request of the action, of docker login and of buildx).
 *
 * Each scenario records what was injected, what the action did and the figures of its last run;
 * afterAll writes them to docs/reliability.md, so that file always describes the last run.
 *
 * Checks are collected per scenario (so one failing check does not hide the figures of the
 * others) and asserted together at the end of each test.
 *
 * Run (the stack is shared: never overlap runs):
 *   flock /tmp/brokkr-stack.lock node --experimental-vm-modules node_modules/jest/bin/jest.js \
 *     --selectProjects e2e __tests__/e2e/reliability.test.ts
 */
import { createHash, randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { BAD_INPUTS, defaultInputs } from '../fixtures/inputs.js'
import * as harness from './support/harness.mjs'
import * as stack from './support/stack.mjs'
import { startFaultProxy } from './support/fault-proxy.mjs'
import { mintRuntimeToken } from './support/cache-double.mjs'
import { startCacheV2Double } from './support/cache-v2-double.mjs'
import { startGitHubApiDouble } from './support/github-api-double.mjs'
import { mapLimit } from '../support/processes.mjs'
import { REPO_ROOT } from '../support/paths.mjs'

type ActionResult = Awaited<ReturnType<typeof harness.runAction>>
type RunOptions = NonNullable<Parameters<typeof harness.runAction>[0]>
type FaultProxy = Awaited<ReturnType<typeof startFaultProxy>>
interface ProxyLogEntry {
  t: number
  method: string
  path: string
  fate: 'forwarded' | 'forced' | 'outage' | 'hidden' | 'reset' | 'error'
  status: number | null
  pushed?: string
  ms?: number
}

// ---------------------------------------------------------------------------------------------
// Shared state

const SKIP = process.env.BROKKR_E2E_STACK === '0'
const describeE2E = SKIP ? describe.skip : describe

/** The suite runs on today's engine generation (Docker 28, buildx 0.29, containerd 2). */
const ENGINE = 'current' as const
const engine = () => stack.engineEnv(env, ENGINE)
const dockerConfig = (o: { auth?: boolean } = {}) => stack.makeDockerConfig({ ...o, engine: ENGINE })

/** Repository inside the registry used only by this suite. */
const REPO = 'reliability/brokkr-agent'
const DOCS = path.resolve(process.cwd(), 'docs', 'reliability.md')

let env: Record<string, string> = {}
let proxy: FaultProxy
let image = '' // <proxy host>/reliability/brokkr-agent
let suiteStarted = 0

interface Row {
  n: string
  title: string
  injected: string
  did: string[]
  figures: string[]
  failed: string[]
}
const rows = new Map<string, Row>()

function row(n: string, title: string, injected: string): Row {
  const r: Row = { n, title, injected, did: [], figures: [], failed: [] }
  rows.set(n, r)
  return r
}

/** A soft check: recorded in the row (and the docs), asserted at the end of the test. */
function check(r: Row, ok: boolean, what: string, detail?: string): boolean {
  if (!ok) r.failed.push(detail ? `${what} — ${detail}` : what)
  return ok
}

function finish(r: Row): void {
  expect(r.failed).toEqual([])
}

const newSha = (): string => randomBytes(20).toString('hex')
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

// ---------------------------------------------------------------------------------------------
// Running the action

/** Inputs every run gets: the proxied registry, the stack's credentials, the docker driver. */
function baseInputs(sha: string): Record<string, string> {
  return {
    component: 'agent',
    registry: proxy.host,
    image,
    username: env.BROKKR_REGISTRY_USER,
    password: env.BROKKR_REGISTRY_PASSWORD,
    driver: 'docker',
    sha,
    'build-args': `BASE_IMAGE=${env.BROKKR_BASE_IMAGE}`,
    cache: 'none',
    'retry-delay': '200ms'
  }
}

async function run(sha: string, inputs: Record<string, string | undefined>, opts: RunOptions = {}): Promise<ActionResult> {
  return harness.runAction({
    sha,
    engine: ENGINE,
    secrets: [env.BROKKR_REGISTRY_PASSWORD],
    timeoutMs: 5 * 60_000,
    ...opts,
    inputs: { ...baseInputs(sha), ...inputs, ...(opts.inputs ?? {}) }
  })
}

const build = (sha: string, platform: string, inputs: Record<string, string | undefined> = {}, opts: RunOptions = {}) =>
  run(sha, { mode: 'build', platform, ...inputs }, opts)
const manifest = (sha: string, inputs: Record<string, string | undefined> = {}, opts: RunOptions = {}) => run(sha, { mode: 'manifest', ...inputs }, opts)

/** Builds and pushes the arch images of a sha through the proxy with no faults. */
async function buildArchImages(sha: string, platforms = ['linux/amd64', 'linux/arm64']): Promise<Record<string, string>> {
  proxy.configure({})
  const digests: Record<string, string> = {}
  for (const p of platforms) {
    const r = await build(sha, p)
    if (harness.resultExitCode(r) !== 0) throw new Error(`setup build ${p} failed:\n${r.log}`)
    digests[p] = r.outputs.digest
  }
  return digests
}

const errorsOf = (r: ActionResult): string[] => r.annotations.filter((a) => a.level === 'error' && a.step === 'main').map((a) => a.message)
const warningsOf = (r: ActionResult): string[] => r.annotations.filter((a) => a.level === 'warning').map((a) => a.message)
const firstError = (r: ActionResult): string => errorsOf(r)[0] ?? '(no error annotation)'

/** Retries the action announced, and the push retries buildkit printed, in a run's log. */
function retriesIn(r: ActionResult): { action: number; buildkit: number } {
  const lines = r.log.split('\n')
  return {
    action: lines.filter((l) => /; retry \d+ of \d+ in \d+ ms/.test(l)).length,
    buildkit: lines.filter((l) => /retrying in \d/.test(l)).length
  }
}

/** Faults the proxy injected since its log was last cleared, by kind. */
function faults(entries: ProxyLogEntry[] = proxy.log): { total: number; byFate: Record<string, number> } {
  const byFate: Record<string, number> = {}
  for (const e of entries) if (e.fate !== 'forwarded') byFate[e.fate] = (byFate[e.fate] ?? 0) + 1
  return { total: Object.values(byFate).reduce((a, b) => a + b, 0), byFate }
}

function faultText(entries: ProxyLogEntry[] = proxy.log): string {
  const f = faults(entries)
  const kinds = Object.entries(f.byFate)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')
  return `${f.total} fault(s) injected${kinds ? ` (${kinds})` : ''} of ${entries.length} requests`
}

function figures(r: ActionResult, entries: ProxyLogEntry[] = proxy.log): string {
  const rt = retriesIn(r)
  return `main ${secs(r.main.durationMs)}, exit ${harness.resultExitCode(r)}; ${faultText(entries)}; retries in log: action ${rt.action}, buildkit ${rt.buildkit}`
}

/** The registry's view of a tag of our repository (read directly, not through the proxy). */
const registryTag = (tag: string) => stack.registryManifest(REPO, tag)

/** Writes tag `to` with the manifest of tag `from` by a PUT through the proxy (the proxy records it as a push). */
async function retagThroughProxy(from: string, to: string): Promise<void> {
  const src = await stack.registryFetch(`/v2/${REPO}/manifests/${from}`)
  if (src.status !== 200) throw new Error(`retag: GET ${from} answered ${src.status}`)
  const type = (src.headers.get('content-type') ?? '').split(';')[0]
  const body = Buffer.from(await src.arrayBuffer())
  const auth = Buffer.from(`${env.BROKKR_REGISTRY_USER}:${env.BROKKR_REGISTRY_PASSWORD}`).toString('base64')
  const put = await fetch(`${proxy.url}/v2/${REPO}/manifests/${to}`, { method: 'PUT', headers: { Authorization: `Basic ${auth}`, 'Content-Type': type }, body })
  if (put.status !== 201) throw new Error(`retag: PUT ${to} answered ${put.status}`)
}

/** Platforms of an index, attestation entries left out. */
function indexPlatforms(m: any): string[] {
  return ((m?.manifests ?? []) as any[])
    .map((d) => d.platform)
    .filter((p) => p && p.os !== 'unknown' && p.architecture !== 'unknown')
    .map((p) => [p.os, p.architecture, p.variant].filter(Boolean).join('/'))
    .sort()
}

/** Last lines of a log, for failure details. */
const tail = (text: string, n = 25): string => text.split('\n').slice(-n).join('\n')

const shimDirs: string[] = []

/** A directory holding an executable `docker` script. */
function dockerShim(body: string): { dir: string; log: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brokkr-docker-shim-'))
  const log = path.join(dir, 'argv.log')
  fs.writeFileSync(log, '')
  fs.writeFileSync(path.join(dir, 'docker'), `#!/bin/sh\n${body.replace(/@LOG@/g, log)}\n`, { mode: 0o755 })
  shimDirs.push(dir)
  return { dir, log }
}

/** PATH with a directory first, the stack's bin dir next (so the harness does not put it before). */
function pathWithFirst(dir: string): string {
  return [dir, engine().bin, process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'].filter(Boolean).join(path.delimiter)
}

// ---------------------------------------------------------------------------------------------
// docs/reliability.md

function writeDocs(): void {
  const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ')
  const ordered = [...rows.values()].sort((a, b) => Number.parseFloat(a.n) - Number.parseFloat(b.n) || a.n.localeCompare(b.n))
  const lines = [
    '# Reliability scenarios',
    '',
    'Generated by `__tests__/e2e/reliability.test.ts` at the end of its last run; do not edit by hand.',
    'Each scenario is a real run of the bundled action (`dist/`, through the runner harness) against the',
    'e2e stack (Docker engine, buildx, QEMU, htpasswd registry) with the fault proxy in front of the registry.',
    '',
    `Last run: ${new Date().toISOString()}, engine "${ENGINE}": Docker ${engine().dockerVersion}, buildx ${engine().buildxVersion}, containerd ${engine().containerdVersion}, ` +
      `suite ${secs(Date.now() - suiteStarted)}. ` +
      `Figures: main step duration, faults the proxy injected (from its log), retries announced in the action's log ` +
      "(`action`: the action's own retries; `buildkit`: buildkit's push retries).",
    '',
    '| # | scenario | injected | what the action did | figures (last run) | result |',
    '| --- | --- | --- | --- | --- | --- |'
  ]
  for (const r of ordered) {
    const result = r.failed.length === 0 ? 'pass' : `**FAIL**: ${r.failed.join('; ')}`
    lines.push(`| ${r.n} | ${esc(r.title)} | ${esc(r.injected)} | ${esc(r.did.join('; '))} | ${esc(r.figures.join('; '))} | ${esc(result)} |`)
  }
  lines.push('')
  fs.mkdirSync(path.dirname(DOCS), { recursive: true })
  fs.writeFileSync(DOCS, lines.join('\n'))
}

// ---------------------------------------------------------------------------------------------

describeE2E(`reliability [engine: ${ENGINE}] (bundled action against the real stack behind the fault proxy)`, () => {
  beforeAll(async () => {
    suiteStarted = Date.now()
    env = stack.readStackEnvSync()
    proxy = await startFaultProxy({ target: `http://${env.BROKKR_REGISTRY}`, seed: 1 })
    image = `${proxy.host}/${REPO}`
  })

  afterAll(async () => {
    if (rows.size > 0) writeDocs()
    await proxy?.close()
    for (const d of shimDirs) fs.rmSync(d, { recursive: true, force: true })
  })

  test('1. arm64 tag invisible for 6 s: manifest succeeds within 6 s + one backoff step (default retry settings)', async () => {
    const r = row('1', 'arm64 tag invisible for 6 s (read-after-write lag), default retries and retry-delay', '')
    const tagOf = (sha: string) => `${sha}-arm64`

    // (a) hidden from the moment the manifest job starts, both arch images already pushed
    const sha = newSha()
    await buildArchImages(sha)
    r.injected =
      'a) `hide` GET/HEAD of `<sha>-arm64` (404) for 6 s from the start of the manifest run; b) the same for 6 s from its push, manifest job started before the arm64 build'
    proxy.configure({ hide: [{ repo: REPO, tag: tagOf(sha), seconds: 6, from: 'now' }] })
    proxy.clearLog()
    const a = await manifest(sha, { 'retry-delay': undefined, retries: undefined })
    const aLog = [...proxy.log]
    const hiddenA = aLog.filter((e) => e.fate === 'hidden').length
    check(r, harness.resultExitCode(a) === 0, 'a) manifest run succeeds', tail(a.log))
    check(r, a.main.durationMs > 6000, 'a) main step waited out the 6 s', secs(a.main.durationMs))
    check(r, a.main.durationMs < 8000, 'a) main step < 6 s + 2 s', secs(a.main.durationMs))
    check(r, hiddenA > 0, 'a) the proxy hid the tag at least once')
    r.did.push(`a) polled the tag ${hiddenA} time(s) while hidden, then verified and pushed the index (${a.outputs.platforms ?? 'no platforms output'})`)
    r.figures.push(`a) ${figures(a, aLog)}`)

    // (b) hidden for 6 s after its push; the manifest job starts before the arch images exist.
    // The arch images are real builds of another sha; their tags are written under this sha by a
    // manifest PUT through the proxy (the last step of any push), which starts the 6 s.
    const src = newSha()
    await buildArchImages(src)
    const shaB = newSha()
    proxy.configure({ hide: [{ repo: REPO, tag: tagOf(shaB), seconds: 6, from: 'push' }] })
    proxy.clearLog()
    const t0 = Date.now()
    const pending = manifest(shaB, { 'retry-delay': undefined, retries: undefined })
    await new Promise((resolve) => setTimeout(resolve, 1500))
    for (const arch of ['amd64', 'arm64']) await retagThroughProxy(`${src}-${arch}`, `${shaB}-${arch}`)
    const b = await pending
    const bLog = [...proxy.log]
    const pushedAt = bLog.find((e) => e.pushed === `${REPO}:${tagOf(shaB)}`)?.t
    check(r, harness.resultExitCode(b) === 0, 'b) manifest run succeeds', tail(b.log))
    check(r, pushedAt !== undefined, 'b) the proxy saw the arm64 push')
    const latency = pushedAt !== undefined ? t0 + b.main.durationMs - pushedAt : NaN
    check(r, latency > 6000 && latency < 8000, 'b) index done between 6 s and 6 s + 2 s after the arm64 push', secs(latency))
    r.did.push(`b) waited for the missing tags, then for the hidden one; index done ${secs(latency)} after the arm64 push`)
    r.figures.push(`b) ${figures(b, bLog)}; index ${secs(latency)} after the arm64 push`)

    // (c) build mode itself under the same lag: dockerd reads its fresh push back and fails; the
    // action must push again its own way and wait for the tag
    const shaC = newSha()
    proxy.configure({ hide: [{ repo: REPO, tag: tagOf(shaC), seconds: 6, from: 'push' }] })
    proxy.clearLog()
    const c = await build(shaC, 'linux/arm64', { 'retry-delay': undefined, retries: undefined })
    const hiddenC = proxy.log.filter((e) => e.fate === 'hidden').map((e) => e.method)
    proxy.configure({})
    check(r, harness.resultExitCode(c) === 0, 'c) build mode gets through its own read-after-write lag', tail(c.log))
    const pushedC = await registryTag(tagOf(shaC))
    const fellBack = /exporting an OCI layout to push request by request/.test(c.log)
    // the request-by-request push must publish what BuildKit's own push publishes: an index with its attestation
    check(
      r,
      !fellBack || (pushedC.mediaType === 'application/vnd.oci.image.index.v1+json' && (pushedC.manifest?.manifests ?? []).length === 2),
      "c) the fallback push carries the attestation, like BuildKit's own push",
      `${pushedC.mediaType} with ${pushedC.manifest?.manifests?.length} entries`
    )
    r.did.push(
      `c) build mode with its own tag invisible for 6 s after each push: ${harness.resultExitCode(c) === 0 ? 'succeeded' : `failed: "${firstError(c)}"`} — docker read the tag back ${hiddenC.length} time(s) (${[...new Set(hiddenC)].join('/')}) while hidden; ${fellBack ? `pushed request by request as ${pushedC.mediaType?.split('.').slice(-2).join('.')} with ${pushedC.manifest?.manifests?.length} entries (image + attestation)` : 'no fallback needed'}`
    )
    r.figures.push(`c) ${figures(c)}`)
    finish(r)
  }, 120_000)

  test('2. 10% 5xx/429 with Retry-After + 5% connection resets: manifest 5/5, build push gets through', async () => {
    const r = row(
      '2',
      'random registry faults on every request',
      '10% 500/502/503/429 (Retry-After: 1) + 5% connection resets on every `/v2/` request, a new seed per run (5 manifest runs, 1 build); then exactly one 503 on the first `GET /v2/` of docker login in a build; retry-delay 200ms, retries 5'
    )
    const sha = newSha()
    await buildArchImages(sha)
    const digests: string[] = []
    const lastLines: string[] = []
    let ok = 0
    let last: { res: ActionResult; log: ProxyLogEntry[] } | undefined
    const allLog: ProxyLogEntry[] = []
    for (let i = 0; i < 5; i++) {
      const seed = 1000 + i * 7919
      proxy.configure({ errorRate: 0.1, statuses: [500, 502, 503, 429], retryAfter: 1, resetRate: 0.05, seed })
      proxy.clearLog()
      const m = await manifest(sha)
      const log = [...proxy.log]
      allLog.push(...log)
      last = { res: m, log }
      const code = harness.resultExitCode(m)
      if (code === 0) {
        ok++
        digests.push(m.outputs.digest)
      } else {
        lastLines.push(`run ${i + 1} (seed ${seed}) failed after ${retriesIn(m).action} retries in ${secs(m.main.durationMs)}: ${firstError(m)}`)
      }
    }
    proxy.configure({})
    const now = await registryTag(sha)
    check(r, ok === 5, 'manifest mode succeeds in 5 runs out of 5', `${ok}/5; ${lastLines.join(' / ')}`)
    check(
      r,
      digests.every((d) => d === now.digest),
      'every successful run reported the digest the registry holds'
    )
    check(
      r,
      JSON.stringify(indexPlatforms(now.manifest)) === JSON.stringify(['linux/amd64', 'linux/arm64']),
      'index holds exactly amd64+arm64',
      JSON.stringify(indexPlatforms(now.manifest))
    )
    r.did.push(`manifest: ${ok}/5 runs succeeded${lastLines.length ? ` (failed: ${lastLines.join(' / ')})` : ''}; all 5 runs: ${faultText(allLog)}`)
    if (last) r.figures.push(`manifest run 5: ${figures(last.res, last.log)}`)

    // one 503 on docker login's first request (a fault the random runs above hit at random);
    // build mode logs in with docker, manifest mode needs no docker login
    proxy.configure({ status: [{ pathRegex: '^/v2/$', status: 503, count: 1 }] })
    proxy.clearLog()
    const one = await build(sha, 'linux/amd64')
    const oneLog = [...proxy.log]
    check(
      r,
      oneLog.some((e) => e.fate === 'forced'),
      'the 503 was really injected',
      JSON.stringify(oneLog.slice(0, 3))
    )
    check(r, harness.resultExitCode(one) === 0, 'a single 503 on the login ping is retried, not reported as refused credentials', firstError(one))
    r.did.push(`one 503 on the login ping of a build: ${harness.resultExitCode(one) === 0 ? 'retried, image pushed' : `failed: "${firstError(one)}"`}`)
    r.figures.push(`one 503 on the login ping: ${figures(one, oneLog)}`)

    // a build push through the same faults
    const shaB = newSha()
    proxy.configure({ errorRate: 0.1, statuses: [500, 502, 503, 429], retryAfter: 1, resetRate: 0.05, seed: 424242 })
    proxy.clearLog()
    const b = await build(shaB, 'linux/amd64')
    const bLog = [...proxy.log]
    proxy.configure({})
    const pushed = await registryTag(`${shaB}-amd64`)
    const bOk = harness.resultExitCode(b) === 0
    check(r, bOk, 'build mode pushes through the faults', firstError(b))
    if (bOk)
      check(
        r,
        pushed.status === 200 && pushed.digest === b.outputs.digest,
        'the pushed tag has the digest the build reported',
        `${pushed.status} ${pushed.digest} vs ${b.outputs.digest}`
      )
    const tries = 1 + (b.log.match(/docker buildx build failed: .*; retry \d+ of \d+ in/g)?.length ?? 0)
    r.did.push(`build: ${bOk ? 'pushed' : `failed (${firstError(b)})`} after ${tries} build tr${tries === 1 ? 'y' : 'ies'}`)
    r.figures.push(`build: ${figures(b, bLog)}`)
    finish(r)
  }, 240_000)

  test('3. 4 s registry outage at the start: manifest succeeds (default retry settings)', async () => {
    const r = row(
      '3',
      '4 s registry outage at the start of the manifest run, default retries and retry-delay',
      '503 (Retry-After: 1) to every `/v2/` request for the first 4 s'
    )
    const sha = newSha()
    await buildArchImages(sha)
    proxy.configure({ outageSeconds: 4 })
    proxy.clearLog()
    const m = await manifest(sha, { 'retry-delay': undefined, retries: undefined })
    const log = [...proxy.log]
    proxy.configure({})
    const now = await registryTag(sha)
    check(r, harness.resultExitCode(m) === 0, 'manifest run succeeds', firstError(m))
    check(
      r,
      log.some((e) => e.fate === 'outage'),
      'the outage was hit'
    )
    check(r, now.status === 200 && now.digest === m.outputs.digest, 'the index is in the registry with the reported digest')
    r.did.push(harness.resultExitCode(m) === 0 ? `retried through the outage, then pushed and verified the index` : `failed: ${firstError(m)}`)
    r.figures.push(figures(m, log))
    finish(r)
  }, 120_000)

  test('4. an amd64 image under the -arm64 tag: manifest fails naming tag, expected and real platform; <sha> not written', async () => {
    const r = row(
      '4',
      'wrong platform under `<sha>-arm64`',
      'a) `imagetools create` copies `<sha>-amd64` to `<sha>-arm64` as an index that says linux/amd64; b) the bare amd64 image manifest (no platform in any index; only its config tells) PUT as `<sha>-arm64`'
    )
    const sha = newSha()
    await buildArchImages(sha, ['linux/amd64'])
    const direct = `${env.BROKKR_REGISTRY}/${REPO}`
    const cp = await stack.docker(['buildx', 'imagetools', 'create', '-t', `${direct}:${sha}-arm64`, `${direct}:${sha}-amd64`], {
      env: stack.dockerEnv(dockerConfig({ auth: true }), { engine: ENGINE }),
      allowFail: true
    })
    if (cp.code !== 0) throw new Error(`imagetools create (setup) failed: ${cp.stderr}`)
    const armTag = `${image}:${sha}-arm64`

    const expectWrongPlatform = async (label: string): Promise<ActionResult> => {
      proxy.clearLog()
      const m = await manifest(sha)
      const err = firstError(m)
      check(r, harness.resultExitCode(m) === 1, `${label}) manifest run fails`, tail(m.log))
      check(
        r,
        err.includes(armTag) && err.includes('linux/amd64') && err.includes('linux/arm64'),
        `${label}) the error names the tag, the expected and the real platform`,
        err
      )
      const index = await registryTag(sha)
      check(r, index.status === 404, `${label}) <sha> was not written`, `HTTP ${index.status}`)
      r.did.push(`${label}) failed: "${err}"; <sha> → HTTP ${index.status}`)
      r.figures.push(`${label}) ${figures(m)}`)
      return m
    }
    await expectWrongPlatform('a')

    // b) a single-platform manifest: only the image config says it is amd64
    const list = await registryTag(`${sha}-amd64`)
    // the arch tag is a bare manifest, or an index when provenance attestations were asked for
    const entry = Array.isArray(list.manifest?.manifests)
      ? list.manifest.manifests.find((d: any) => d.platform?.architecture === 'amd64')
      : { digest: list.digest, mediaType: list.mediaType }
    if (!entry) throw new Error('setup: no amd64 entry in the amd64 tag')
    const raw = await stack.registryFetch(`/v2/${REPO}/manifests/${entry.digest}`, { headers: { Accept: entry.mediaType } })
    const body = Buffer.from(await raw.arrayBuffer())
    const put = await stack.registryFetch(`/v2/${REPO}/manifests/${sha}-arm64`, { method: 'PUT', headers: { 'Content-Type': entry.mediaType }, body })
    if (put.status !== 201) throw new Error(`setup: PUT bare manifest answered ${put.status}`)
    await expectWrongPlatform('b')
    finish(r)
  }, 120_000)

  test('5. one arch image never arrives: fails at wait-timeout naming it; the existing index is unchanged', async () => {
    const r = row(
      '5',
      'an arch image never arrives',
      'nothing: `<sha>-arm-v7` is simply never pushed; platforms linux/amd64,linux/arm64,linux/arm/v7, wait-timeout 5s, after a good index was pushed for `<sha>`'
    )
    const sha = newSha()
    await buildArchImages(sha)
    proxy.configure({})
    const good = await manifest(sha)
    if (harness.resultExitCode(good) !== 0) throw new Error(`setup: first manifest run failed:\n${tail(good.log)}`)
    const before = await registryTag(sha)
    proxy.clearLog()
    const m = await manifest(sha, { platforms: 'linux/amd64,linux/arm64,linux/arm/v7', 'wait-timeout': '5s' })
    const after = await registryTag(sha)
    const err = firstError(m)
    const polls = proxy.log.filter((e) => e.path.endsWith(`/manifests/${sha}-arm-v7`) && e.status === 404).length
    check(r, harness.resultExitCode(m) === 1, 'manifest run fails', tail(m.log))
    check(r, err.includes(`${image}:${sha}-arm-v7`), 'the error names the missing image', err)
    check(r, m.main.durationMs >= 5000 && m.main.durationMs < 15_000, 'it fails when wait-timeout (5 s) expires', `main step ${m.main.durationMs} ms`)
    check(r, before.digest !== null && after.digest === before.digest, '<sha> still points at the earlier index', `${before.digest} → ${after.digest}`)
    r.did.push(`polled ${polls} time(s), then failed: "${err}"; <sha> unchanged (${after.digest?.slice(0, 19)}…)`)
    r.figures.push(figures(m))
    finish(r)
  }, 120_000)

  test('6. 401/403 from the registry: fails at once with a hint about permissions and login', async () => {
    const r = row(
      '6',
      '401/403 from the registry, wait-timeout 600s',
      'a) wrong password (the registry refuses the credentials); b) proxy answers 401 to every manifest GET/HEAD; c) proxy answers 403 to every manifest PUT of a build (push denied, as GHCR without `packages: write`); d) the same 403 for the index PUT of manifest mode'
    )
    const hint = /permissions: packages: write/
    const cases: Array<[string, Record<string, unknown>, () => Promise<ActionResult>]> = []
    const sha = newSha()
    await buildArchImages(sha)
    cases.push(['a', {}, () => manifest(sha, { password: `wrong-${randomBytes(6).toString('hex')}`, 'wait-timeout': '600s' })])
    cases.push(['b', { status: [{ pathRegex: '/manifests/', status: 401, methods: ['GET', 'HEAD'] }] }, () => manifest(sha, { 'wait-timeout': '600s' })])
    cases.push(['c', { status: [{ pathRegex: '/manifests/', status: 403, methods: ['PUT'] }] }, () => build(newSha(), 'linux/amd64')])
    cases.push(['d', { status: [{ pathRegex: '/manifests/', status: 403, methods: ['PUT'] }] }, () => manifest(sha, { 'wait-timeout': '600s' })])
    for (const [label, rules, go] of cases) {
      proxy.configure(rules)
      proxy.clearLog()
      const m = await go()
      const err = firstError(m)
      check(r, harness.resultExitCode(m) === 1, `${label}) fails`, tail(m.log))
      check(r, m.main.durationMs < 10_000, `${label}) fails at once (< 10 s)`, secs(m.main.durationMs))
      check(r, hint.test(err) && /login|username and password/.test(err), `${label}) the error hints at \`permissions: packages: write\` and the login`, err)
      r.did.push(`${label}) failed in ${secs(m.main.durationMs)}: "${err}"`)
      r.figures.push(`${label}) ${figures(m)}`)
    }
    proxy.configure({})
    finish(r)
  }, 120_000)

  test('7. the Actions cache service (v2) answers 500 to everything: cache gha build succeeds and warns', async () => {
    const r = row('7', 'GitHub Actions cache service v2 down, cache: gha', 'the v2 cache double answers 500 to every Twirp call')
    const cache = await startCacheV2Double({ token: mintRuntimeToken({ scope: 'refs/heads/main' }), faults: { api: { status: 500, rate: 1 } } })
    try {
      proxy.configure({})
      proxy.clearLog()
      const sha = newSha()
      const b = await build(sha, 'linux/amd64', { cache: 'gha' }, { cache: { url: cache.url, token: cache.token, version: 2 } })
      const annotation = warningsOf(b).find((w) => /cache/i.test(w))
      const errorLines = b.log.split('\n').filter((l) => /^#\d+ ERROR: /.test(l))
      check(r, harness.resultExitCode(b) === 0, 'the build succeeds', firstError(b))
      check(r, annotation !== undefined, 'the action warns with an annotation naming the cache', tail(b.log))
      check(
        r,
        cache.requests.some((q) => q.kind === 'api'),
        'BuildKit did talk v2 to the double',
        JSON.stringify(cache.requests.slice(0, 2))
      )
      const pushed = await registryTag(`${sha}-amd64`)
      check(r, pushed.status === 200 && pushed.digest === b.outputs.digest, 'the image was pushed')
      r.did.push(
        `built and pushed; ${annotation ? `warning annotation: "${annotation}"` : 'no warning annotation from the action'}; ${errorLines.length} ERROR line(s) in the BuildKit log`
      )
      r.figures.push(`${figures(b)}; cache double: ${cache.requests.length} request(s), ${cache.requests.filter((q) => q.status === 500).length} answered 500`)
    } finally {
      await cache.close()
    }
    finish(r)
  }, 180_000)

  test('8. two manifest runs for the same sha at once: both succeed, the index is correct', async () => {
    const r = row(
      '8',
      'two manifest jobs for one sha at the same time',
      'none: `Promise.all` of two manifest runs (re-run of a workflow while the first still runs)'
    )
    const sha = newSha()
    const sources = await buildArchImages(sha)
    proxy.configure({})
    proxy.clearLog()
    const [m1, m2] = await Promise.all([manifest(sha), manifest(sha)])
    const now = await registryTag(sha)
    check(r, harness.resultExitCode(m1) === 0 && harness.resultExitCode(m2) === 0, 'both succeed', `${firstError(m1)} / ${firstError(m2)}`)
    check(
      r,
      m1.outputs.digest === now.digest && m2.outputs.digest === now.digest,
      'the index digest equals both outputs',
      `${m1.outputs.digest} / ${m2.outputs.digest} / registry ${now.digest}`
    )
    check(
      r,
      JSON.stringify(indexPlatforms(now.manifest)) === JSON.stringify(['linux/amd64', 'linux/arm64']),
      'the index holds exactly amd64+arm64',
      JSON.stringify(indexPlatforms(now.manifest))
    )
    const entries = (now.manifest?.manifests ?? []).filter((d: any) => d.platform?.os !== 'unknown')
    check(r, entries.length === 2, 'exactly two platform entries', String(entries.length))
    const src = JSON.parse(m1.outputs.sources ?? '{}')
    check(r, src['linux/amd64'] === sources['linux/amd64'] && src['linux/arm64'] === sources['linux/arm64'], 'sources are the pushed arch images')
    r.did.push(`both pushed and verified ${now.digest?.slice(0, 19)}… (${indexPlatforms(now.manifest).join(', ')})`)
    r.figures.push(`run 1: main ${secs(m1.main.durationMs)}; run 2: main ${secs(m2.main.durationMs)}; ${faultText()}`)
    finish(r)
  }, 120_000)

  test('9. bad inputs: exit 1, exactly one error naming the input, no docker command', async () => {
    const r = row(
      '9',
      `bad input (all ${BAD_INPUTS.length} cases of BAD_INPUTS)`,
      'one broken input per run; a recording `docker` shim (exits 1) first on PATH'
    )
    const shim = dockerShim('printf \'%s\\n\' "$*" >> "@LOG@"\nexit 1')
    const started = Date.now()
    const results = await mapLimit(BAD_INPUTS, 4, async (c) => {
      const inputs: Record<string, string> = { ...defaultInputs(), ...c.set }
      const res = await harness.runAction({ engine: ENGINE, inputs, env: { PATH: pathWithFirst(shim.dir) }, timeoutMs: 60_000 })
      return { c, res }
    })
    const elapsed = Date.now() - started
    let good = 0
    for (const { c, res } of results) {
      const raw = [res.main.stdout, res.main.stderr, res.post?.stdout ?? '', res.post?.stderr ?? ''].join('\n')
      const errorLines = raw.split('\n').filter((l) => /^::error(?: [^:]*)?::/.test(l.trimStart()))
      const errs = errorsOf(res)
      const ok =
        check(r, res.main.code === 1, `${c.name}: exit 1`, `exit ${res.main.code}`) &&
        check(r, errorLines.length === 1, `${c.name}: exactly one ::error:: line`, `${errorLines.length}: ${errorLines.join(' / ')}`) &&
        check(r, errs.length === 1 && errs[0].startsWith(`${c.input}: `), `${c.name}: the error starts with "${c.input}: "`, errs.join(' / '))
      if (ok) good++
    }
    const calls = fs.readFileSync(shim.log, 'utf8').trim()
    check(r, calls === '', 'no docker command ran', calls.split('\n').slice(0, 5).join(' / '))
    // control: the same PATH with valid inputs (dry-run) does reach the shim, so the empty record above means something
    const control = await harness.runAction({
      engine: ENGINE,
      inputs: { ...defaultInputs(), 'dry-run': 'true' },
      env: { PATH: pathWithFirst(shim.dir) },
      timeoutMs: 60_000
    })
    const controlCalls = fs.readFileSync(shim.log, 'utf8').trim()
    check(r, controlCalls !== '', 'control: a valid dry-run with the same PATH does call the shim', tail(control.log, 5))
    const sample = results
      .slice(0, 3)
      .map(({ res }) => `"${errorsOf(res)[0]}"`)
      .join(', ')
    r.did.push(
      `${good}/${BAD_INPUTS.length} failed with exit 1 and one error naming the input (e.g. ${sample}); docker invocations: ${calls === '' ? 0 : calls.split('\n').length} (control run with valid inputs: ${controlCalls === '' ? 0 : controlCalls.split('\n').length})`
    )
    const durations = results.map(({ res }) => res.main.durationMs).sort((a, b) => a - b)
    r.figures.push(
      `${BAD_INPUTS.length} runs (4 at once) in ${secs(elapsed)}; main median ${(durations[Math.floor(durations.length / 2)] / 1000).toFixed(2)} s, max ${(durations[durations.length - 1] / 1000).toFixed(2)} s`
    )
    finish(r)
  }, 120_000)

  test('10. secrets never leak: debug logs, summary, outputs, docker argv; config.json clean after post', async () => {
    const r = row(
      '10',
      'secrets with ACTIONS_STEP_DEBUG=true',
      'the real registry password (36 hex chars) as `password`; a recorded `docker` shim that execs the real docker; b) additionally `dockerhub-username` + a `dckr_pat_SECRET…` `dockerhub-token`; c) build secrets through `secrets`, `secret-envs` and `secret-files`'
    )
    const shim = dockerShim(`printf '%s\\n' "$*" >> "@LOG@"\nexec ${engine().bin}/docker "$@"`)
    const password = env.BROKKR_REGISTRY_PASSWORD
    const basic = Buffer.from(`${env.BROKKR_REGISTRY_USER}:${password}`).toString('base64')
    const hubToken = `dckr_pat_SECRET${randomBytes(12).toString('hex')}`
    const opts: RunOptions = { env: { ACTIONS_STEP_DEBUG: 'true', PATH: pathWithFirst(shim.dir) } }

    /** Where a secret shows up in a run, leaving out the ::add-mask:: command itself. */
    const leaks = (res: ActionResult, secret: string): string[] => {
      const where: string[] = []
      const scrub = (text: string) =>
        text
          .split('\n')
          .filter((l) => !l.trimStart().startsWith('::add-mask::'))
          .join('\n')
      for (const [name, s] of [
        ['main', res.main],
        ['post', res.post]
      ] as const) {
        if (!s) continue
        if (scrub(s.stdout).includes(secret)) where.push(`${name} stdout`)
        if (scrub(s.stderr).includes(secret)) where.push(`${name} stderr`)
      }
      if (res.summary.includes(secret)) where.push('job summary')
      if (JSON.stringify(res.outputs).includes(secret)) where.push('outputs')
      if (res.log.includes(secret)) where.push('masked log')
      return where
    }
    const credentialsLeft = (res: ActionResult): string[] => {
      const dir = res.main.spawnEnv.DOCKER_CONFIG
      const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'))
      return Object.entries<any>(cfg.auths ?? {})
        .filter(([, v]) => v && (v.auth || v.identitytoken || v.password))
        .map(([k]) => k)
    }

    proxy.configure({})
    proxy.clearLog()
    const sha = newSha()
    const runs: Array<[string, ActionResult]> = []
    runs.push(['build amd64', await build(sha, 'linux/amd64', {}, opts)])
    runs.push(['build arm64', await build(sha, 'linux/arm64', {}, opts)])
    runs.push(['manifest', await manifest(sha, {}, opts)])
    for (const [name, res] of runs) {
      check(r, harness.resultExitCode(res) === 0, `${name} succeeds`, firstError(res))
      check(r, res.main.spawnEnv.RUNNER_DEBUG === '1', `${name} ran with debug logging (RUNNER_DEBUG=1)`)
      for (const [label, secret] of [
        ['password', password],
        ['basic auth', basic]
      ] as const) {
        const where = leaks(res, secret)
        check(r, where.length === 0, `${name}: the ${label} appears nowhere`, where.join(', '))
      }
      const left = credentialsLeft(res)
      check(r, left.length === 0, `${name}: no credential left in config.json after post`, left.join(', '))
    }

    // b) Docker Hub login (no network here): what happens, and no leak either way
    const hub = await build(sha, 'linux/amd64', { 'dockerhub-username': 'brokkrbot', 'dockerhub-token': hubToken }, opts)
    runs.push(['build with Docker Hub login', hub])
    for (const [label, secret] of [
      ['password', password],
      ['dockerhub-token', hubToken]
    ] as const) {
      const where = leaks(hub, secret)
      check(r, where.length === 0, `b) the ${label} appears nowhere`, where.join(', '))
    }
    const hubLeft = credentialsLeft(hub)
    check(r, hubLeft.length === 0, 'b) no credential left in config.json after post', hubLeft.join(', '))

    // c) build secrets from all three inputs: values reach buildx only through its environment and a file
    const inline = `cargo-SECRET${randomBytes(12).toString('hex')}`
    const fromEnv = `sccache-SECRET${randomBytes(12).toString('hex')}`
    const fromFile = `netrc-SECRET${randomBytes(12).toString('hex')}`
    const secretDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brokkr-secret-'))
    const secretFile = path.join(secretDir, 'netrc')
    fs.writeFileSync(secretFile, fromFile, { mode: 0o600 })
    const withSecrets = await build(
      sha,
      'linux/amd64',
      { secrets: `cargo_token=${inline}`, 'secret-envs': 'sccache=BROKKR_TEST_SCCACHE', 'secret-files': `netrc=${secretFile}` },
      { env: { ...opts.env, BROKKR_TEST_SCCACHE: fromEnv } }
    )
    fs.rmSync(secretDir, { recursive: true, force: true })
    runs.push(['build with secrets, secret-envs and secret-files', withSecrets])
    check(r, harness.resultExitCode(withSecrets) === 0, 'c) the build with secrets succeeds', firstError(withSecrets))
    for (const [label, secret] of [
      ['inline secret', inline],
      ['secret-envs value', fromEnv],
      ['secret-files content', fromFile]
    ] as const) {
      const where = leaks(withSecrets, secret)
      check(r, where.length === 0, `c) the ${label} appears nowhere`, where.join(', '))
    }

    const argv = fs.readFileSync(shim.log, 'utf8')
    check(r, argv.split('\n').filter(Boolean).length > 0, 'the docker shim recorded the commands')
    check(
      r,
      /--secret id=cargo_token,env=BROKKR_BUILD_SECRET_0 --secret id=sccache,env=BROKKR_TEST_SCCACHE --secret id=netrc,src=\S+/.test(argv),
      'c) buildx got all three secrets by id, variable name and path'
    )
    for (const [label, secret] of [
      ['password', password],
      ['basic auth', basic],
      ['dockerhub-token', hubToken],
      ['inline secret', inline],
      ['secret-envs value', fromEnv],
      ['secret-files content', fromFile]
    ] as const) {
      check(r, !argv.includes(secret), `the ${label} is in no docker argv`)
    }
    const hubOk = harness.resultExitCode(hub) === 0
    r.did.push(
      `build ×2 + manifest with debug logging: no secret in raw stdout/stderr (outside ::add-mask::), summary, outputs or ${argv.split('\n').filter(Boolean).length} recorded docker argv; config.json without credentials after post`,
      `b) Docker Hub login ${hubOk ? 'failed softly, the build went on' : `failed the build: "${firstError(hub)}"`}; token not leaked`,
      'c) a build with `secrets`, `secret-envs` and `secret-files`: buildx got them by id, variable name and path; no value in any log, argv, summary or output'
    )
    r.figures.push(runs.map(([name, res]) => `${name}: main ${secs(res.main.durationMs)}, exit ${harness.resultExitCode(res)}`).join('; '))
    finish(r)
  }, 180_000)
  test('11. the job is cancelled mid-build (SIGINT, then SIGTERM, then post): builder and login cleaned up, no tag', async () => {
    const r = row(
      '11',
      'job cancelled mid-build, docker-container driver',
      "the runner's cancellation while a slow RUN step runs under QEMU: SIGINT to main, SIGTERM 7.5 s later, then the post step"
    )
    const e = stack.engineEnv(env, ENGINE) as unknown as { registry: string; baseImage: string; baseRegistry: string }
    const config = dockerConfig()
    // buildx copies this into every builder it creates: our registries speak plain http
    fs.mkdirSync(path.join(config, 'buildx'), { recursive: true })
    fs.writeFileSync(path.join(config, 'buildx', 'buildkitd.default.toml'), stack.buildkitdToml([e.registry, e.baseRegistry]))
    const builder = `brokkr-cancel-${randomBytes(3).toString('hex')}`
    const sha = newSha()
    const cancel = new AbortController()
    let cancelledAt = 0
    const started = Date.now()
    const res = await run(
      sha,
      {
        mode: 'build',
        platform: 'linux/arm64',
        registry: e.registry,
        image: `${e.registry}/${REPO}`,
        driver: 'docker-container',
        builder,
        file: 'docker/Dockerfile.bench',
        'build-args': `BASE_IMAGE=${e.baseImage}\nBENCH_SEED=${sha}`
      },
      {
        dockerConfig: config,
        cancel: cancel.signal,
        onLine: (line) => {
          if (!cancelledAt && /^#\d+ \[work \d\/\d\] RUN bench-work/.test(line)) {
            cancelledAt = Date.now()
            cancel.abort()
          }
        }
      }
    )
    const envFor = stack.dockerEnv(config, { engine: ENGINE })
    const builders = (await stack.docker(['buildx', 'ls'], { env: envFor })).stdout
    const containers = (await stack.docker(['ps', '-a', '--format', '{{.Names}}'], { env: envFor })).stdout
    const auths = Object.keys(JSON.parse(fs.readFileSync(path.join(config, 'config.json'), 'utf8')).auths ?? {})
    const tag = await registryTag(`${sha}-arm64`)
    const stray = (await import('node:child_process'))
      .execFileSync('ps', ['-eo', 'args'])
      .toString()
      .split('\n')
      .filter((l) => l.includes('docker-buildx') && l.includes(sha))
    check(r, cancelledAt > 0, 'the build reached the slow RUN step and the job was cancelled there', tail(res.log))
    check(r, harness.resultExitCode(res) !== 0 && res.main.code !== 0, 'main failed (cancelled)')
    check(r, res.post?.code === 0, 'the post step ran and succeeded', tail(res.post?.log ?? ''))
    check(r, /builder/.test(res.post?.log ?? '') && !builders.includes(builder), 'the builder this run created is gone', builders)
    check(r, !containers.includes(`buildx_buildkit_${builder}`), 'its BuildKit container is gone', containers)
    check(r, auths.length === 0, 'no login left in config.json', auths.join(', '))
    check(r, tag.status === 404, 'no <sha>-arm64 tag was written', String(tag.status))
    check(r, stray.length === 0, 'no buildx process of the cancelled build is left', stray.join(' / '))
    const stoppedIn = started + res.main.durationMs - cancelledAt
    r.did.push(
      `main stopped docker and its buildx (own process group) on SIGINT and failed; post logged out and removed builder ${builder}; no tag, no container, no stray process`
    )
    r.figures.push(`main ${secs(res.main.durationMs)} (ended ${secs(stoppedIn)} after the cancellation), post ${secs(res.post?.durationMs ?? 0)}`)
    finish(r)
  }, 240_000)

  test('12. the whole Brokkr flow at once (4 builds + 2 manifests) under 10% 5xx/429 + 5% resets', async () => {
    const r = row(
      '12',
      'the whole Brokkr flow under registry faults',
      'broker and agent × amd64 and arm64 builds and both manifest jobs started together; 10% 500/502/503/429 (Retry-After: 1) + 5% resets on every `/v2/` request'
    )
    const sha = newSha()
    proxy.configure({ errorRate: 0.1, statuses: [500, 502, 503, 429], retryAfter: 1, resetRate: 0.05, seed: 777 })
    proxy.clearLog()
    const t0 = Date.now()
    const components = ['broker', 'agent']
    const repoOf = (c: string) => `reliability/brokkr-${c}`
    const imageOf = (c: string) => `${proxy.host}/${repoOf(c)}`
    const builds = components.flatMap((c) => ['linux/amd64', 'linux/arm64'].map((p) => ({ c, p })))
    const results = await Promise.all([
      ...builds.map(({ c, p }) => build(sha, p, { component: c, image: imageOf(c) }).then((res) => ({ kind: `build ${c} ${p}`, c, res }))),
      ...components.map((c) => manifest(sha, { component: c, image: imageOf(c) }).then((res) => ({ kind: `manifest ${c}`, c, res })))
    ])
    const wall = Date.now() - t0
    const log = [...proxy.log]
    proxy.configure({})
    for (const { kind, res } of results) check(r, harness.resultExitCode(res) === 0, `${kind} succeeds`, firstError(res))
    for (const c of components) {
      const index = await stack.registryManifest(repoOf(c), sha)
      const m = results.find((x) => x.kind === `manifest ${c}`)!.res
      const sources = JSON.parse(m.outputs.sources ?? '{}')
      check(
        r,
        index.status === 200 && index.digest === m.outputs.digest,
        `${c}: the index is in the registry with the reported digest`,
        `${index.status} ${index.digest}`
      )
      check(r, JSON.stringify(indexPlatforms(index.manifest)) === JSON.stringify(['linux/amd64', 'linux/arm64']), `${c}: the index holds exactly amd64+arm64`)
      for (const p of ['linux/amd64', 'linux/arm64']) {
        const b = results.find((x) => x.kind === `build ${c} ${p}`)!.res
        const arch = await stack.registryManifest(repoOf(c), `${sha}-${p.split('/')[1]}`)
        check(
          r,
          arch.digest === b.outputs.digest && sources[p] === b.outputs.digest,
          `${c} ${p}: arch tag, build output and index source agree`,
          `${arch.digest} / ${b.outputs.digest} / ${sources[p]}`
        )
        // both ways of pushing must give one shape: an index with its attestation, like BuildKit's own push
        check(
          r,
          arch.mediaType === 'application/vnd.oci.image.index.v1+json',
          `${c} ${p}: the arch image has the shape of BuildKit's push (index with attestation)`,
          String(arch.mediaType)
        )
      }
    }
    const fallbacks = results.filter(({ res }) => /exporting an OCI layout to push request by request/.test(res.log)).length
    r.did.push(
      `6/6 jobs ${results.every(({ res }) => harness.resultExitCode(res) === 0) ? 'succeeded' : 'did not all succeed'}; ${fallbacks} build(s) fell back to the request-by-request push; both indexes verified`
    )
    r.figures.push(`wall ${secs(wall)}; ${faultText(log)}; ${results.map(({ kind, res }) => `${kind} ${secs(res.main.durationMs)}`).join(', ')}`)
    finish(r)
  }, 480_000)
  test("13. the cache's blob storage fails every upload: the build ends within cache-timeout, warns, and the tag is whole", async () => {
    const r = row(
      '13',
      'cache blob storage failing, cache API healthy, cache: gha, cache-timeout 5s',
      "every blob PUT of the v2 cache double answers 503 (ServerBusy); BuildKit's blob client retries for many minutes"
    )
    const cache = await startCacheV2Double({
      token: mintRuntimeToken({ scope: 'refs/heads/main' }),
      faults: { blob: { status: 503, rate: 1, methods: ['upload'] } }
    })
    try {
      proxy.configure({})
      proxy.clearLog()
      const sha = newSha()
      const b = await build(sha, 'linux/arm64', { cache: 'gha', 'cache-timeout': '5s' }, { cache: { url: cache.url, token: cache.token, version: 2 } })
      const warning = warningsOf(b).find((w) => /cache-timeout/.test(w))
      const pushed = await registryTag(`${sha}-arm64`)
      const uploads = cache.requests.filter((q) => q.kind === 'blob' && q.status === 503).length
      check(r, harness.resultExitCode(b) === 0, 'the build succeeds', firstError(b))
      check(r, uploads > 0, 'BuildKit really tried to upload cache blobs and met the 503s', String(uploads))
      check(r, warning !== undefined, 'the action warns that it stopped waiting on the cache', warningsOf(b).join(' / '))
      check(r, b.main.durationMs < 90_000, 'main ends well before BuildKit would give up (< 90 s)', secs(b.main.durationMs))
      check(
        r,
        pushed.status === 200 && pushed.digest === b.outputs.digest,
        'the digest output is what the registry holds under the arch tag',
        `${pushed.status} ${pushed.digest} vs ${b.outputs.digest}`
      )
      check(
        r,
        pushed.mediaType === 'application/vnd.oci.image.index.v1+json' && (pushed.manifest?.manifests ?? []).length === 2,
        'the tag is the whole image with its attestation',
        JSON.stringify(pushed.manifest?.manifests?.length)
      )
      r.did.push(`pushed, then stopped the build during cache export: ${warning ? `"${warning}"` : 'no warning'}`)
      r.figures.push(`${figures(b)}; ${uploads} blob upload(s) answered 503`)
    } finally {
      await cache.close()
    }
    finish(r)
  }, 180_000)

  test('14. a cache service that refuses the v1 protocol: the action says which versions speak v2', async () => {
    const r = row(
      '14',
      'cache service refuses v1 (as GitHub since 2025-04-15)',
      'the runner hands only ACTIONS_CACHE_URL (no ACTIONS_CACHE_SERVICE_V2), so buildx speaks v1; the service answers 422 "This legacy service is shutting down"'
    )
    const cache = await startCacheV2Double({ token: mintRuntimeToken({ scope: 'refs/heads/main' }) })
    try {
      proxy.configure({})
      proxy.clearLog()
      const sha = newSha()
      const b = await build(sha, 'linux/amd64', { cache: 'gha' }, { cache: { url: cache.url, token: cache.token, version: 1 } })
      const warning = warningsOf(b).find((w) => /legacy v1 protocol/.test(w))
      const legacy = cache.requests.filter((q) => q.kind === 'legacy').length
      check(r, harness.resultExitCode(b) === 0, 'the build succeeds without its cache', firstError(b))
      check(r, legacy > 0, 'buildx spoke v1 and was refused', String(legacy))
      check(
        r,
        warning !== undefined && /buildx 0\.21/.test(warning) && /BuildKit 0\.20/.test(warning),
        'one warning names the buildx and BuildKit versions that speak v2',
        warningsOf(b).join(' / ')
      )
      check(r, warningsOf(b).filter((w) => /legacy v1 protocol/.test(w)).length === 1, 'said once')
      r.did.push(`built and pushed; ${warning ? `"${warning}"` : 'no warning'}`)
      r.figures.push(`${figures(b)}; ${legacy} v1 request(s) refused`)
    } finally {
      await cache.close()
    }
    finish(r)
  }, 180_000)
  test("15. BuildKit gives up on the tag PUT: the request-by-request push publishes the same shape as BuildKit's own", async () => {
    const r = row(
      '15',
      "BuildKit's push refused at the tag, then the fallback push",
      "the arch tag's manifest PUT answers 502 twelve times (BuildKit gives up after its own tries; the action's pusher gets the rest); retries 20"
    )
    const sha = newSha()
    const tag = `${sha}-amd64`
    proxy.configure({ status: [{ pathRegex: `/manifests/${tag}$`, methods: ['PUT'], status: 502, count: 12 }] })
    proxy.clearLog()
    const b = await build(sha, 'linux/amd64', { retries: '20' })
    const log = [...proxy.log]
    proxy.configure({})
    const pushed = await registryTag(tag)
    const fellBack = /exporting an OCI layout to push request by request/.test(b.log)
    check(r, harness.resultExitCode(b) === 0, 'the build succeeds', firstError(b))
    check(r, fellBack, "BuildKit's push failed and the action pushed the OCI layout itself", tail(b.log))
    check(
      r,
      pushed.status === 200 && pushed.digest === b.outputs.digest,
      'the tag holds the digest the action reported',
      `${pushed.status} ${pushed.digest} vs ${b.outputs.digest}`
    )
    const kinds = (pushed.manifest?.manifests ?? []).map(
      (m: any) => m.annotations?.['vnd.docker.reference.type'] ?? `${m.platform?.os}/${m.platform?.architecture}`
    )
    check(
      r,
      pushed.mediaType === 'application/vnd.oci.image.index.v1+json' && kinds.length === 2 && kinds.includes('attestation-manifest'),
      'an index of the image and its provenance attestation, as BuildKit pushes it',
      `${pushed.mediaType}: ${kinds.join(', ')}`
    )
    r.did.push(
      `${fellBack ? 'BuildKit gave up, the action exported the layout and pushed it' : 'no fallback'}; the tag is ${pushed.mediaType?.split('.').slice(-2).join('.')} of ${kinds.join(' + ')}`
    )
    r.figures.push(figures(b, log))
    finish(r)
  }, 240_000)
  /**
   * Moving tags in a repository of their own (tags like `main` and `latest` of the shared one carry
   * other rows' commits): arch images are built once and copied under each commit's arch tags.
   */
  async function taggingRepo(): Promise<{ repo: string; image: string; copyArchImages: (from: string, to: string) => Promise<void> }> {
    const repo = `reliability/tags-${randomBytes(4).toString('hex')}`
    const seed = newSha()
    proxy.configure({})
    for (const platform of ['linux/amd64', 'linux/arm64']) {
      const b = await build(seed, platform, { image: `${proxy.host}/${repo}` })
      if (harness.resultExitCode(b) !== 0) throw new Error(`setup build ${platform} failed:\n${tail(b.log)}`)
    }
    const copyArchImages = async (from: string, to: string) => {
      for (const arch of ['amd64', 'arm64']) {
        const src = await stack.registryFetch(`/v2/${repo}/manifests/${from}-${arch}`)
        const type = (src.headers.get('content-type') ?? '').split(';')[0]
        const body = Buffer.from(await src.arrayBuffer())
        const put = await stack.registryFetch(`/v2/${repo}/manifests/${to}-${arch}`, { method: 'PUT', headers: { 'Content-Type': type }, body })
        if (put.status !== 201) throw new Error(`copy ${from}-${arch} to ${to}: PUT answered ${put.status}`)
      }
    }
    return { repo, image: `${proxy.host}/${repo}`, copyArchImages: (from, to) => copyArchImages(from === 'seed' ? seed : from, to) }
  }
  const noticesOf = (r: ActionResult): string[] => r.annotations.filter((a) => a.level === 'notice').map((a) => a.message)

  test('16. a late manifest job of an older commit does not move the branch tag back', async () => {
    const r = row(
      '16',
      'an older commit of `main` finishes its manifest job last',
      'manifest jobs of commits A and its child B of `main` at once; `<A>-arm64` hidden for 8 s so A finishes last; a) GitHub compare served by the API double; b) the API unreachable, head-commit times A 10:00 < B 11:00; c) then a child C of B'
    )
    const { repo, image: taggedImage, copyArchImages } = await taggingRepo()
    const token = `ghs_${randomBytes(12).toString('hex')}`
    const api = await startGitHubApiDouble({ token, repository: 'colliery-io/brokkr' })
    const mainDigest = async () => (await stack.registryManifest(repo, 'main')).digest
    const race = async (apiUrl: string) => {
      const [a, b] = [newSha(), newSha()]
      api.commits({ [a]: null, [b]: a })
      await copyArchImages('seed', a)
      await copyArchImages('seed', b)
      proxy.configure({ hide: [{ repo, tag: `${a}-arm64`, seconds: 8, from: 'now' }] })
      const job = (sha: string, hour: string) =>
        manifest(sha, { image: taggedImage }, { token, commitTime: `2026-12-01T${hour}:00:00Z`, env: { GITHUB_API_URL: apiUrl } })
      const [older, newer] = await Promise.all([job(a, '10'), job(b, '11')])
      proxy.configure({})
      return { a, b, older, newer, main: await mainDigest() }
    }
    try {
      const asked = await race(api.url)
      const compared = api.log.filter((e) => e.path.endsWith(`/compare/${asked.b}...${asked.a}`) && e.authorization).length
      check(
        r,
        harness.resultExitCode(asked.older) === 0 && harness.resultExitCode(asked.newer) === 0,
        'a) both jobs succeed',
        `${firstError(asked.older)} / ${firstError(asked.newer)}`
      )
      check(
        r,
        asked.older.main.durationMs > asked.newer.main.durationMs,
        'a) the older job finished last',
        `${asked.older.main.durationMs} / ${asked.newer.main.durationMs} ms`
      )
      check(r, asked.main === asked.newer.outputs.digest, 'a) main holds the newer index', `${asked.main} vs newer ${asked.newer.outputs.digest}`)
      check(r, compared === 1, "a) the older job asked GitHub's compare endpoint with the job's token", String(compared))
      check(
        r,
        asked.older.outputs['moved-tags'] === '' && asked.older.outputs.tags === asked.a,
        'a) the older job moved no tag and wrote only its sha',
        JSON.stringify(asked.older.outputs)
      )
      check(
        r,
        asked.older.summary.includes(`kept at ${asked.b.slice(0, 12)} (newer than this run)`),
        'a) the summary says main was kept',
        tail(asked.older.summary, 30)
      )
      check(r, asked.newer.outputs['moved-tags'] === 'main', 'a) the newer job moved main', asked.newer.outputs['moved-tags'])

      const fallback = await race('http://127.0.0.1:9')
      const said = noticesOf(fallback.older).filter((n) => /GitHub could not be asked/.test(n))
      check(
        r,
        fallback.main === fallback.newer.outputs.digest,
        'b) without GitHub, main holds the newer index by commit time',
        `${fallback.main} vs ${fallback.newer.outputs.digest}`
      )
      check(r, said.length === 1, 'b) the fallback is said once', said.join(' / '))

      const c = newSha()
      api.commits({ [c]: fallback.b })
      await copyArchImages('seed', c)
      const forward = await manifest(c, { image: taggedImage }, { token, commitTime: '2026-12-01T12:00:00Z', env: { GITHUB_API_URL: api.url } })
      check(
        r,
        (await mainDigest()) === forward.outputs.digest && forward.outputs['moved-tags'] === 'main',
        'c) a newer commit moves main forward',
        forward.outputs['moved-tags']
      )
      r.did.push(
        `a) main stayed on B (${asked.main?.slice(0, 19)}…); the older job logged "main: ${/main: (kept at [^\n]*)/.exec(asked.older.log)?.[1] ?? '?'}"; b) the same by commit time: "${said[0] ?? ''}"; c) C moved main forward`
      )
      r.figures.push(
        `a) older job ${secs(asked.older.main.durationMs)}, newer ${secs(asked.newer.main.durationMs)}, ${api.log.length} API call(s); b) older ${secs(fallback.older.main.durationMs)}, newer ${secs(fallback.newer.main.durationMs)}`
      )
    } finally {
      proxy.configure({})
      await api.close()
    }
    finish(r)
  }, 240_000)

  test('17. a patch release after a major one: latest and the major line stay, the older lines move', async () => {
    const r = row('17', '`v1.2.4` pushed after `v2.0.0`', 'manifest job of `v2.0.0`, then of `v1.2.4` (its own commit), in a repository of their own')
    const { repo, image: taggedImage, copyArchImages } = await taggingRepo()
    const [two, one] = [newSha(), newSha()]
    await copyArchImages('seed', two)
    await copyArchImages('seed', one)
    const release = (sha: string, version: string) => manifest(sha, { image: taggedImage }, { ref: `refs/tags/v${version}` })
    const major = await release(two, '2.0.0')
    const patch = await release(one, '1.2.4')
    const at = async (tag: string) => (await stack.registryManifest(repo, tag)).digest
    const [latest, m2, m1, m12, exact] = [await at('latest'), await at('2'), await at('1'), await at('1.2'), await at('1.2.4')]
    check(r, harness.resultExitCode(major) === 0 && harness.resultExitCode(patch) === 0, 'both succeed', `${firstError(major)} / ${firstError(patch)}`)
    check(r, latest === major.outputs.digest && m2 === major.outputs.digest, 'latest and 2 stay on 2.0.0', `${latest} ${m2} vs ${major.outputs.digest}`)
    check(
      r,
      m1 === patch.outputs.digest && m12 === patch.outputs.digest && exact === patch.outputs.digest,
      '1, 1.2 and 1.2.4 are 1.2.4',
      `${m1} ${m12} ${exact}`
    )
    check(r, patch.outputs['moved-tags'] === '1.2,1', 'the patch job reports what it moved', patch.outputs['moved-tags'])
    check(r, /latest: kept at 2\.0\.0 \(newer than 1\.2\.4\)/.test(patch.log), 'the kept tag is one log line', tail(patch.log))
    r.did.push(
      `latest, 2 → 2.0.0; 1, 1.2, 1.2.4 → 1.2.4; the patch job logged "latest: kept at 2.0.0 (newer than 1.2.4)" and moved-tags=${patch.outputs['moved-tags']}`
    )
    r.figures.push(`v2.0.0 job ${secs(major.main.durationMs)}, v1.2.4 job ${secs(patch.main.durationMs)}`)
    finish(r)
  }, 240_000)
  test('18. a matrix of 8 jobs against the cache service rate limit: every job pushes, none waits past cache-timeout, one warning each', async () => {
    const limit = 8
    const r = row(
      '18',
      `GitHub's cache entry rate limit crossed by a matrix, cache: gha, cache-mode: max, cache-timeout 15s`,
      `8 build jobs at once, each its own cache scope; the v2 cache double creates at most ${limit} entries a minute, then answers CreateCacheEntry 429 resource_exhausted with Retry-After (GitHub: 200 a minute per repository)`
    )
    const cache = await startCacheV2Double({ token: mintRuntimeToken({ scope: 'refs/heads/main' }), entriesPerMinute: limit })
    try {
      proxy.configure({})
      const started = Date.now()
      const jobs = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const sha = newSha()
          const scope = `matrix-${i}-${sha.slice(0, 6)}`
          const b = await build(
            sha,
            'linux/amd64',
            { cache: 'gha', 'cache-mode': 'max', 'cache-scope': scope, 'cache-timeout': '15s' },
            { cache: { url: cache.url, token: cache.token, version: 2 } }
          )
          return { sha, b, pushed: await registryTag(`${sha}-amd64`) }
        })
      )
      const wall = Date.now() - started
      const refused = cache.requests.filter((q) => q.method === 'CreateCacheEntry' && q.status === 429).length
      const limited = jobs.filter(({ b }) => warningsOf(b).some((w) => /at most 200 cache entries a minute/.test(w)))
      check(
        r,
        jobs.every(({ b }) => harness.resultExitCode(b) === 0),
        'every job succeeds',
        jobs.map(({ b }) => firstError(b)).join(' / ')
      )
      check(
        r,
        jobs.every(({ b, pushed }) => pushed.status === 200 && pushed.digest === b.outputs.digest),
        'every job pushed a whole image'
      )
      check(
        r,
        refused > 0 && limited.length > 0,
        'the matrix crossed the limit and the jobs that met it said so',
        `${refused} refusals, ${limited.length} job(s) warned`
      )
      check(
        r,
        jobs.every(({ b }) => warningsOf(b).filter((w) => /cache/i.test(w)).length <= 1),
        'at most one cache warning per job',
        jobs.map(({ b }) => warningsOf(b).join(' | ')).join(' // ')
      )
      check(
        r,
        limited.every(({ b }) => /cache-mode: min, or fewer cache scopes/.test(warningsOf(b).join())),
        'the warning says what to do'
      )
      check(
        r,
        limited.every(({ b }) => b.summary.includes('new entries refused by the rate limit')),
        'the summary says the entries were refused'
      )
      // the build itself takes seconds here; past the image, no job may wait on the cache longer than cache-timeout
      check(
        r,
        jobs.every(({ b }) => b.main.durationMs < 15_000 + 30_000),
        'no job waited on the cache much past cache-timeout',
        jobs.map(({ b }) => secs(b.main.durationMs)).join(', ')
      )
      const created = cache.requests.filter((q) => q.method === 'CreateCacheEntry' && q.status === 200).length
      r.did.push(
        `8/8 jobs pushed; ${limited.length} job(s) met the limit and warned once: "${warningsOf(limited[0]?.b ?? jobs[0].b).find((w) => /cache entries a minute/.test(w)) ?? ''}"`
      )
      r.figures.push(
        `wall ${secs(wall)}; jobs ${jobs.map(({ b }) => secs(b.main.durationMs)).join(', ')}; cache entries created ${created}, CreateCacheEntry answered 429 ${refused} time(s)`
      )
    } finally {
      await cache.close()
    }
    finish(r)
  }, 300_000)
  test('21. a re-run of the build jobs for the same commit, builder cache gone: the same platform manifests', async () => {
    const r = row(
      '21',
      'a re-run of the build jobs of one commit, with nothing cached (same sha, same head-commit time, new run)',
      'build amd64 and arm64 (QEMU) with the docker-container driver; each run creates its own builder and the post step removes it with its state, so nothing is cached; then the whole run again, and the manifest job after each; b) the same twice with the docker driver after `docker buildx prune -af`; c) two commits a day apart built one after the other on one kept builder'
    )
    const e = stack.engineEnv(env, ENGINE) as unknown as { registry: string; baseImage: string; baseRegistry: string; localRegistry: string }
    const config = dockerConfig()
    fs.mkdirSync(path.join(config, 'buildx'), { recursive: true })
    fs.writeFileSync(path.join(config, 'buildx', 'buildkitd.default.toml'), stack.buildkitdToml([e.registry, e.baseRegistry]))
    const envFor = stack.dockerEnv(config, { engine: ENGINE })
    const sha = newSha()
    const platforms = ['linux/amd64', 'linux/arm64']
    // BuildKit in a container reaches the registry by the bridge address; our own client (manifest mode) by loopback: one storage
    const buildInputs = (platform: string) => ({
      mode: 'build',
      platform,
      registry: e.registry,
      image: `${e.registry}/${REPO}`,
      driver: 'docker-container',
      builder: `brokkr-rerun-${randomBytes(3).toString('hex')}`,
      'build-args': `BASE_IMAGE=${e.baseImage}`
    })
    /** What one run pushed: per platform the tag's digest, its image manifest and its attestation manifest. */
    const shapeOf = async (tag: string) => {
      const top = await registryTag(tag)
      const entries = (top.manifest?.manifests ?? []) as Array<{ digest: string; annotations?: Record<string, string> }>
      const image = entries.find((m) => !m.annotations?.['vnd.docker.reference.type'])?.digest
      const attestation = entries.find((m) => m.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest')?.digest
      return { tag: top.digest ?? '', image: image ?? '', attestation: attestation ?? '' }
    }
    const provenanceOf = async (attestation: string) => {
      const manifest = (await registryTag(attestation)).manifest as { layers: Array<{ digest: string }> }
      const statement = await (await stack.registryFetch(`/v2/${REPO}/blobs/${manifest.layers[0].digest}`)).json()
      return (statement.predicate?.metadata ?? {}) as Record<string, unknown>
    }
    const round = async () => {
      const jobs: Record<string, ActionResult> = {}
      for (const p of platforms) jobs[p] = await run(sha, buildInputs(p), { dockerConfig: config })
      const shapes = Object.fromEntries(await Promise.all(platforms.map(async (p) => [p, await shapeOf(`${sha}-${p.split('/')[1]}`)] as const)))
      const m = await manifest(sha, { registry: e.localRegistry, image: `${e.localRegistry}/${REPO}`, platforms: platforms.join(',') })
      const builders = (await stack.docker(['buildx', 'ls'], { env: envFor })).stdout
      return { jobs, shapes, index: m.outputs.digest ?? '', manifestJob: m, builders }
    }
    const first = await round()
    const second = await round()
    for (const [n, rnd] of [first, second].entries()) {
      for (const p of platforms) check(r, harness.resultExitCode(rnd.jobs[p]) === 0, `run ${n + 1}: ${p} pushed`, firstError(rnd.jobs[p]))
      check(r, harness.resultExitCode(rnd.manifestJob) === 0, `run ${n + 1}: the manifest job pushed the index`, firstError(rnd.manifestJob))
      check(r, !/brokkr-rerun-/.test(rnd.builders), `run ${n + 1}: every builder it created is gone, with its cache`, rnd.builders)
    }
    const log = platforms.map((p) => first.jobs[p].log).join('\n')
    check(
      r,
      /created: 2026-11-20T12:00:00.000Z \(the head commit's time in the push event\), source-date-epoch=1795176000, layer timestamps rewritten to it/.test(
        log
      ),
      'the Plan group names the commit time and the rewrite',
      tail(first.jobs['linux/amd64'].log)
    )
    const ranAll = (job: ActionResult) => /#\d+ \[build \d\/\d\] RUN /.test(job.log) && !/#\d+ CACHED/.test(job.log)
    check(
      r,
      platforms.every((p) => ranAll(first.jobs[p]) && ranAll(second.jobs[p])),
      'every RUN step ran in both runs, none came from a cache'
    )
    for (const p of platforms) {
      check(
        r,
        first.shapes[p].image !== '' && first.shapes[p].image === second.shapes[p].image,
        `${p}: the platform manifest digest is the same`,
        `${first.shapes[p].image} vs ${second.shapes[p].image}`
      )
    }
    const config1 = (await registryTag(first.shapes['linux/amd64'].image)).manifest?.config?.digest
    const imageConfig = config1 ? await (await stack.registryFetch(`/v2/${REPO}/blobs/${config1}`)).json() : {}
    check(r, imageConfig.created === '2026-11-20T12:00:00Z', "the image config's created is the head commit's time", String(imageConfig.created))
    check(r, imageConfig.config?.Labels?.['org.opencontainers.image.created'] === '2026-11-20T12:00:00.000Z', 'so is the created label')
    // what still differs: the provenance BuildKit attests carries the build's own id and times
    const attested = [first, second].every((rnd) => platforms.every((p) => rnd.shapes[p].attestation !== ''))
    check(r, attested, 'each arch tag carries the provenance attestation buildx adds when pushing', JSON.stringify(first.shapes))
    const prov = attested ? await Promise.all([first, second].map((rnd) => provenanceOf(rnd.shapes['linux/amd64'].attestation))) : [{}, {}]
    const differing = ['buildInvocationID', 'buildStartedOn', 'buildFinishedOn'].filter(
      (k) => prov[0][k] !== undefined && JSON.stringify(prov[0][k]) !== JSON.stringify(prov[1][k])
    )
    const tagsDiffer = platforms.every((p) => first.shapes[p].tag !== second.shapes[p].tag)
    const attestationsDiffer = platforms.every((p) => first.shapes[p].attestation !== second.shapes[p].attestation)

    // b) the docker driver: BuildKit refuses rewrite-timestamp with its image store's unpack, so the layers differ
    const dockerRuns: ActionResult[] = []
    const dockerImages: string[] = []
    const dockerSha = newSha()
    for (let i = 0; i < 2; i++) {
      await stack.docker(['buildx', 'prune', '-af'], { env: stack.dockerEnv(undefined, { engine: ENGINE }), allowFail: true })
      dockerRuns.push(await build(dockerSha, 'linux/amd64'))
      dockerImages.push((await shapeOf(`${dockerSha}-amd64`)).image)
    }
    check(
      r,
      dockerRuns.every((d) => harness.resultExitCode(d) === 0),
      'docker driver: both runs pushed',
      dockerRuns.map(firstError).join(' / ')
    )
    const dockerLine = /created: .*, the label only: the docker driver pushes with --push[^\n]*/.exec(dockerRuns[0].log)?.[0]
    check(r, dockerLine !== undefined, 'docker driver: the Plan group says the layers are not rewritten', tail(dockerRuns[0].log))

    // c) the commit time reaches the image output, not the build: a new commit time misses no cache
    const kept = `brokkr-rerun-kept-${randomBytes(3).toString('hex')}`
    const timed = async (commitTime: string) =>
      run(newSha(), { ...buildInputs('linux/amd64'), builder: kept, 'keep-builder': 'true' }, { dockerConfig: config, commitTime })
    const [older, newer] = [await timed('2026-11-20T12:00:00+00:00'), await timed('2026-11-21T08:30:00+00:00')]
    await stack.docker(['buildx', 'rm', '--force', kept], { env: envFor, allowFail: true })
    const runSteps = (job: ActionResult) => [...job.log.matchAll(/^#(\d+) \[(?:build|stage-\d+) \d\/\d\] (?:RUN|WORKDIR) /gm)].map((m) => m[1])
    const cachedIn = (job: ActionResult) => runSteps(job).filter((id) => new RegExp(`^#${id} CACHED$`, 'm').test(job.log)).length
    check(
      r,
      harness.resultExitCode(older) === 0 && harness.resultExitCode(newer) === 0,
      'c) both commits pushed',
      `${firstError(older)} / ${firstError(newer)}`
    )
    check(
      r,
      runSteps(newer).length > 0 && cachedIn(newer) === runSteps(newer).length,
      'c) the newer commit time found every WORKDIR and RUN step in the cache',
      `${cachedIn(newer)} of ${runSteps(newer).length} CACHED`
    )

    r.did.push(
      `same platform manifests: ${platforms.map((p) => `${p} ${first.shapes[p].image.slice(0, 19)}… both runs`).join(', ')}; image config and label created 2026-11-20T12:00:00Z (head commit); ` +
        `still different between runs: the provenance attestation (${differing.join(', ')} differ), hence the arch tags (${tagsDiffer ? 'differ' : 'same'}: the tag is an index of image + attestation) and the multi-arch index (${first.index.slice(0, 19)}… then ${second.index.slice(0, 19)}…)`,
      `b) docker driver: ${dockerImages[0] === dockerImages[1] ? 'the same' : 'different'} platform manifests (${dockerImages.map((d) => `${d.slice(0, 19)}…`).join(' then ')}); Plan line: "${dockerLine ?? ''}"`,
      `c) two commits a day apart on one builder: ${cachedIn(newer)} of ${runSteps(newer).length} WORKDIR/RUN steps CACHED for the newer one`
    )
    r.figures.push(
      `run 1: ${platforms.map((p) => `${p} ${secs(first.jobs[p].main.durationMs)}`).join(', ')}, manifest ${secs(first.manifestJob.main.durationMs)}; run 2: ${platforms.map((p) => `${p} ${secs(second.jobs[p].main.durationMs)}`).join(', ')}, manifest ${secs(second.manifestJob.main.durationMs)}; attestation manifests ${attestationsDiffer ? 'differ' : 'same'}`
    )
    finish(r)
  }, 600_000)

  describe('19. a cache that cannot be read: no job waits on it past cache-timeout', () => {
    const CONTEXT = path.join(REPO_ROOT, '__tests__', 'fixtures', 'cache-read')
    const cases = [
      { n: '19a', driver: 'docker', fault: 'manifest', title: 'docker driver, every cache download failing: the cache manifest cannot be read' },
      {
        n: '19b',
        driver: 'docker-container',
        fault: 'manifest',
        title: 'docker-container driver, every cache download failing: the cache manifest cannot be read'
      },
      {
        n: '19c',
        driver: 'docker-container',
        fault: 'layers',
        title: 'docker-container driver, cached layer downloads failing: the manifest reads, its layers do not'
      }
    ] as const
    test.each(cases)(
      '$n. $title',
      async ({ n, driver, fault, title }) => {
        const r = row(
          n,
          `${title}; cache: gha (warm scope), cache-mode: max, cache-timeout 15s`,
          `a warm scope, the builder's own cache pruned, then the v2 cache double answers 503 to ${fault === 'manifest' ? 'every blob download' : 'the blob downloads of cached layers (keys buildkit-blob-*)'}; BuildKit retries for minutes`
        )
        const container = driver === 'docker-container'
        const ee = engine()
        // on the bridge: the fresh builder the action makes for the build without the cache runs in a container
        const cache = await startCacheV2Double({ token: mintRuntimeToken({ scope: 'refs/heads/main' }), host: ee.bridgeIp! })
        const dockerConfig = stack.makeDockerConfig({ engine: ENGINE, buildkitd: true })
        const builder = `brokkr-e2e-read-${randomBytes(3).toString('hex')}`
        const dockerAs = stack.dockerEnv(dockerConfig, { engine: ENGINE })
        try {
          const unique = randomBytes(4).toString('hex')
          const inputs = (bust: string) => ({
            registry: ee.registry,
            image: `${ee.registry}/${REPO}`,
            driver,
            ...(container ? { builder, 'keep-builder': 'true' } : {}),
            context: '.',
            file: 'Dockerfile',
            'build-args': `BASE_IMAGE=${ee.baseImage}\nUNIQUE=${unique}\nBUST=${bust}`,
            cache: 'gha',
            'cache-mode': 'max',
            'cache-scope': `read-${unique}`,
            'cache-timeout': '15s'
          })
          const opts = { cwd: CONTEXT, dockerConfig, cache: { url: cache.url, token: cache.token, version: 2 as const } }
          const warm = await build(newSha(), 'linux/amd64', inputs('0'), opts)
          if (harness.resultExitCode(warm) !== 0) throw new Error(`warm build failed:\n${tail(warm.log)}`)
          // a fresh runner's builder holds nothing: everything cached must come from the service
          const prune = container ? ['buildx', 'prune', '-af', '--builder', builder] : ['builder', 'prune', '-af']
          await stack.docker(prune, { env: dockerAs })
          const before = cache.requests.length
          cache.configure({ blob: { status: 503, methods: ['download'], ...(fault === 'layers' ? { keyPrefix: 'buildkit-blob' } : {}) } })
          const sha = newSha()
          const b = await build(sha, 'linux/amd64', inputs('1'), opts)
          const failedReads = cache.requests.slice(before).filter((q) => q.kind === 'blob' && q.op === 'download' && q.status === 503).length
          const pushed = await registryTag(`${sha}-amd64`)
          const readWarnings = warningsOf(b).filter((w) => /made no progress for cache-timeout/.test(w))
          const cold = /Cold builder (brokkr-cold-\S+)/.exec(b.log)?.[1]
          check(r, harness.resultExitCode(b) === 0, 'the build succeeds', firstError(b))
          check(r, failedReads > 0, 'BuildKit really tried to read the cache and met the 503s', String(failedReads))
          check(r, readWarnings.length === 1, 'one warning says the cache could not be read and what was done', warningsOf(b).join(' / '))
          check(r, /building again without it/.test(b.log) && cold !== undefined, 'the log says the build runs again without the cache, on a fresh builder')
          check(r, b.summary.includes('reading it stalled'), 'the summary says so')
          check(
            r,
            pushed.status === 200 && pushed.digest === b.outputs.digest,
            'a whole image is pushed under the arch tag',
            `${pushed.status} ${pushed.digest} vs ${b.outputs.digest}`
          )
          // the stall is bounded by cache-timeout (15 s); a fresh builder and the cold build take seconds here
          check(r, b.main.durationMs < 15_000 + 45_000, 'no wait on the cache much past cache-timeout', secs(b.main.durationMs))
          check(
            r,
            cold !== undefined && !(await stack.docker(['buildx', 'ls'], { env: dockerAs })).stdout.includes(cold),
            'the post step removed the fresh builder'
          )
          const stalledAt = /at "([^"]*)"/.exec(readWarnings[0] ?? '')?.[1] ?? ''
          r.did.push(
            `stopped the build at "${stalledAt}" after 15 s without progress, built again without the cache on a fresh builder and pushed; one warning`
          )
          r.figures.push(`warm ${secs(warm.main.durationMs)}; outage run ${secs(b.main.durationMs)}; ${failedReads} cache download(s) answered 503`)
        } finally {
          // the stalled import still holds the engine's BuildKit: let its next download succeed before the next test
          cache.configure({})
          const since = cache.requests.length
          const deadline = Date.now() + 180_000
          if (!container)
            while (Date.now() < deadline && !cache.requests.slice(since).some((q) => q.kind === 'blob' && q.status === 200))
              await new Promise((res) => setTimeout(res, 1000))
          await cache.close()
          if (container) await stack.docker(['buildx', 'rm', '--force', builder], { env: dockerAs, allowFail: true })
        }
        finish(r)
      },
      420_000
    )
  })

  test('20. attestations that belong to another image are refused with nothing written; a correct index lists its provenance', async () => {
    const r = row(
      '20',
      'arch images whose attestation belongs to another image',
      'real arch images (amd64 `provenance: mode=max`, arm64 buildx default `mode=min`) in a repository of their own; a) as built; b) the arm64 arch index re-pushed under its arch tag with its attestation descriptor (`vnd.docker.reference.digest`) naming the amd64 image; c) the arm64 provenance statement re-pushed with its subject naming the amd64 image (new blob, attestation manifest and arch index under the arch tag)'
    )
    const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
    const repo = `reliability/attest-${randomBytes(4).toString('hex')}`
    const repoImage = `${proxy.host}/${repo}`
    const seed = newSha()
    proxy.configure({})
    for (const [platform, provenance] of [
      ['linux/amd64', 'mode=max'],
      ['linux/arm64', undefined]
    ]) {
      const b = await build(seed, platform!, { image: repoImage, provenance })
      if (harness.resultExitCode(b) !== 0) throw new Error(`setup build ${platform} failed:\n${tail(b.log)}`)
    }
    const archIndex = async (sha: string, arch: string) => (await stack.registryManifest(repo, `${sha}-${arch}`)).manifest
    const [amd64, arm64] = [await archIndex(seed, 'amd64'), await archIndex(seed, 'arm64')]
    const imageOf = (index: any) => index.manifests.find((d: any) => d.platform?.os !== 'unknown').digest as string
    const attestationOf = (index: any) => index.manifests.find((d: any) => d.platform?.os === 'unknown')
    const [amdImage, armImage] = [imageOf(amd64), imageOf(arm64)]
    const put = (sha: string, arch: string, index: any) => stack.registryPutManifest(repo, `${sha}-${arch}`, Buffer.from(JSON.stringify(index)), OCI_INDEX)
    const attached = (res: ActionResult, platform: string) =>
      new RegExp(`attached ${platform}</td>\\s*<td>(?:<code>)?([^<]*)`).exec(res.summary)?.[1] ?? '(no row)'
    /** Tags other than arch tags: an index written under the sha or a moving tag. */
    const indexTags = async () => (await stack.registryTags(repo)).filter((t) => !/-(amd64|arm64)$/.test(t))

    // a) as built: both pass, the summary lists each platform's provenance and its mode
    proxy.clearLog()
    const a = await manifest(seed, { image: repoImage })
    const aLog = [...proxy.log]
    const pushed = await stack.registryManifest(repo, seed)
    const carried = (pushed.manifest?.manifests ?? []).filter((d: any) => d.platform?.os === 'unknown')
    check(r, harness.resultExitCode(a) === 0, 'a) the correct index is published', tail(a.log))
    check(
      r,
      attached(a, 'linux/amd64') === 'provenance (SLSA v0.2, mode=max)',
      'a) the summary lists the amd64 provenance as mode=max',
      attached(a, 'linux/amd64')
    )
    check(
      r,
      attached(a, 'linux/arm64') === 'provenance (SLSA v0.2, mode=min)',
      'a) the summary lists the arm64 provenance as mode=min',
      attached(a, 'linux/arm64')
    )
    check(
      r,
      carried.length === 2 && carried.every((d: any) => [amdImage, armImage].includes(d.annotations?.['vnd.docker.reference.digest'])),
      'a) the index carries both attestation manifests, each pointing at its platform',
      JSON.stringify(carried)
    )
    // read back by a client that is not ours: buildx's own view of the index's provenance per platform
    const inspect = await stack.docker(['buildx', 'imagetools', 'inspect', `${env.BROKKR_REGISTRY}/${repo}:${seed}`, '--format', '{{json .Provenance}}'], {
      env: stack.dockerEnv(dockerConfig({ auth: true }), { engine: ENGINE }),
      allowFail: true
    })
    let provenance: Record<string, any> = {}
    try {
      provenance = JSON.parse(inspect.stdout)
    } catch {
      // left empty: the check below names what buildx printed
    }
    check(
      r,
      provenance['linux/amd64']?.SLSA?.buildConfig !== undefined &&
        provenance['linux/arm64']?.SLSA !== undefined &&
        provenance['linux/arm64'].SLSA.buildConfig === undefined,
      'a) buildx imagetools inspect reads provenance for both platforms from the index, with a build definition (mode=max) on amd64 only',
      `${inspect.code} ${inspect.stderr.slice(0, 300)} ${Object.keys(provenance).join(',')}`
    )
    const reads = (kind: string, digest: string) => aLog.filter((e) => e.method === 'GET' && e.status === 200 && e.path.endsWith(`/${kind}/${digest}`)).length
    const attestationReads: number[] = []
    for (const index of [amd64, arm64]) {
      const att = attestationOf(index)
      attestationReads.push(reads('manifests', att.digest))
      for (const layer of (await stack.registryManifest(repo, att.digest)).manifest.layers) attestationReads.push(reads('blobs', layer.digest))
    }
    check(
      r,
      attestationReads.every((n) => n === 1),
      'a) each attestation manifest and statement read once',
      attestationReads.join(',')
    )
    r.did.push(
      `a) published; summary: amd64 "${attached(a, 'linux/amd64')}", arm64 "${attached(a, 'linux/arm64')}"; \`buildx imagetools inspect\` finds provenance for ${Object.keys(provenance).join(', ')}`
    )
    r.figures.push(`a) ${figures(a, aLog)}; attestation reads ${attestationReads.length} (one per manifest and statement)`)

    const afterA = await indexTags()
    const manifestPuts: string[] = []
    const writesDuring = async (run: () => Promise<ActionResult>) => {
      proxy.clearLog()
      const res = await run()
      manifestPuts.push(...proxy.log.filter((e) => e.method === 'PUT' && e.path.includes('/manifests/')).map((e) => e.path))
      return res
    }

    // b) the arm64 attestation descriptor names the amd64 image
    const b = newSha()
    await put(b, 'amd64', amd64)
    const spoiled = structuredClone(arm64)
    attestationOf(spoiled).annotations['vnd.docker.reference.digest'] = amdImage
    await put(b, 'arm64', spoiled)
    const bRun = await writesDuring(() => manifest(b, { image: repoImage }))
    const bLine = `${repoImage}:${b}-arm64: attestation manifest ${attestationOf(arm64).digest} points at ${amdImage}, not at ${armImage} beside it; the index was not written`
    check(r, harness.resultExitCode(bRun) === 1, 'b) the run fails', tail(bRun.log))
    check(r, errorsOf(bRun).length === 1 && errorsOf(bRun)[0] === bLine, 'b) one error line naming the image and both digests', errorsOf(bRun).join(' / '))

    // c) the arm64 provenance statement is about the amd64 image
    const c = newSha()
    await put(c, 'amd64', amd64)
    const armAttestation = (await stack.registryManifest(repo, attestationOf(arm64).digest)).manifest
    const statement = JSON.parse(
      Buffer.from(await (await stack.registryFetch(`/v2/${repo}/blobs/${armAttestation.layers[0].digest}`)).arrayBuffer()).toString('utf8')
    )
    statement.subject[0].digest.sha256 = amdImage.slice('sha256:'.length)
    const statementBytes = Buffer.from(JSON.stringify(statement))
    const statementDigest = await stack.registryPutBlob(repo, statementBytes)
    const attestationBytes = Buffer.from(
      JSON.stringify({ ...armAttestation, layers: [{ ...armAttestation.layers[0], digest: statementDigest, size: statementBytes.length }] })
    )
    const attestationDigest = `sha256:${createHash('sha256').update(attestationBytes).digest('hex')}`
    await stack.registryPutManifest(repo, attestationDigest, attestationBytes, armAttestation.mediaType)
    const lying = structuredClone(arm64)
    Object.assign(attestationOf(lying), { digest: attestationDigest, size: attestationBytes.length })
    await put(c, 'arm64', lying)
    const cRun = await writesDuring(() => manifest(c, { image: repoImage }))
    const cLine = `${repoImage}:${c}-arm64: in-toto statement ${statementDigest} of attestation manifest ${attestationDigest} is about ${amdImage}, not ${armImage}; the index was not written`
    check(r, harness.resultExitCode(cRun) === 1, 'c) the run fails', tail(cRun.log))
    check(r, errorsOf(cRun).length === 1 && errorsOf(cRun)[0] === cLine, 'c) one error line naming the image and both digests', errorsOf(cRun).join(' / '))

    const written = await indexTags()
    check(r, written.join() === afterA.join(), 'b), c) no index under their sha or a moving tag', `${written.join(',')} vs ${afterA.join(',')} after a)`)
    check(r, manifestPuts.length === 0, 'b), c) the action wrote no manifest at all', manifestPuts.join(' / '))
    const main = await stack.registryManifest(repo, 'main')
    check(r, main.digest === pushed.digest, 'b), c) main still holds the index of a)', `${main.digest} vs ${pushed.digest}`)
    r.did.push(
      `b) failed: "${errorsOf(bRun)[0] ?? ''}"`,
      `c) failed: "${errorsOf(cRun)[0] ?? ''}"`,
      `b), c) index tags afterwards: ${written.join(', ')} (those of a) only), no manifest PUT by the action`
    )
    r.figures.push(`b) ${figures(bRun)}`, `c) ${figures(cRun)}`)
    finish(r)
  }, 420_000)
})
