#!/usr/bin/env node
// `npm run bench:pipeline`: Brokkr's whole image pipeline (4 build jobs: broker, agent x amd64,
// arm64; then 2 manifest jobs) on the CURRENT engine of the e2e stack (Docker 28.5, buildx 0.29,
// BuildKit 0.25 on the docker-container driver) with the cache service v2 double, measured for
//   A  this action (dist/ through the runner harness, its defaults),
//   B  Docker's recipe "distribute build across multiple runners" with its defaults (one shared
//      gha scope `buildkit`), as the commands setup-buildx / build-push-action run (recipe.mjs),
//   C  the same recipe with a gha scope per component and platform,
// over rounds cold / warm (no change) / change (broker's sources) / pull request (agent's
// sources changed, main warm); then the manifest step alone under a 3 s read-after-write lag and
// under the reliability suite's fault mix (scenario 12), A's manifest mode vs B's
// `imagetools create`; and the docker-container builder's bootstrap on its own.
//
// Every job starts as a fresh runner does: a fresh DOCKER_CONFIG and a fresh builder (no local
// BuildKit state); what it can reuse comes from the gha cache only. Variants alternate, the order
// rotated per round; each variant has its own cache double per repetition (A and C would share
// keys otherwise). Does not hold /tmp/brokkr-stack.lock (other e2e runs may run meanwhile: read
// the ratios within one run, not absolute times). Never stops a stack it did not start, never
// prunes a builder it did not create.
//
// Prints the markdown and writes it into docs/benchmarks.md between the bench:pipeline markers
// (`npm run bench` keeps that block).

import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { REPO_ROOT } from '../../__tests__/support/paths.mjs'
import { mapLimit, run as runProcess } from '../../__tests__/support/processes.mjs'
import { cli, count, gitState, median, mib, peakPerMinute, rangeOf, runMain, sayer, secs, stats, table, writePipelineBlock } from './common.mjs'
import { COMPONENTS, PLATFORMS, changeSources, writeContext } from './pipeline-workload.mjs'
import { cachedLayerFetches, stepCounts } from '../../__tests__/support/build-log.mjs'
import { buildPushArgv, imagetoolsCreateArgv, imagetoolsInspectArgv, recipeBuilderName, recipeCache, removeBuilderArgv, setupBuildxArgv } from './recipe.mjs'

const USAGE = `usage: npm run bench:pipeline [-- --reps N] [--manifest-runs N] [--bootstrap-runs N] [--pr-output-runs N] [--variants A,B,C] [--rounds LIST] [--out FILE] [--no-write]

  --reps N             repetitions of the four rounds per variant, each from an empty cache (default 3)
  --manifest-runs N    runs per variant and condition of the manifest step (default 5; 0 skips it)
  --pr-output-runs N   pull-request builds per output kind and arch on the same work: A's
                       cacheonly vs an image export (push=false) vs C's whole build (default 3; 0 skips)
  --bootstrap-runs N   docker-container bootstrap measurements (default 5; 0 skips it)
  --variants LIST      default A,B,C
  --rounds LIST        cold,warm,change,pr (default all; cold is always run first)
  --dep-steps N        CPU-heavy RUN steps of each dependency stage (default 4)
  --entries-per-minute N  the cache double's CreateCacheEntry limit per rolling minute (default
                       200, GitHub's per repository); lower it to see each variant at the limit
  --keep-logs DIR      write every build job's log there (kept)
  --json FILE          also save the raw figures there
  --render-only FILE   render (and write) the markdown from figures saved with --json; runs nothing
  --out FILE           default docs/benchmarks.md (only its bench:pipeline block is replaced)
  --no-write           print only`

const ROUNDS = ['cold', 'warm', 'change', 'pr']
const REPO_NAME = 'colliery-io/brokkr'
const SERVER = 'https://github.com'
const runUrl = (id) => `${SERVER}/${REPO_NAME}/actions/runs/${id}`
const say = sayer('bench:pipeline', 8)
const hex = (n) => randomBytes(n).toString('hex')
const archOf = (p) => p.split('/')[1]
const tailOf = (text, n) => text.split('\n').slice(-n).join('\n')
/** Median, min – max and count of the finite values, as seconds. */
const st = (xs) => {
  const s = stats(xs)
  return [secs(s.median), rangeOf(s, secs), String(s.n)]
}

// ---------------------------------------------------------------------------------------------
// Everything this run starts, so that it can stop it again (also on Ctrl-C)

/** Aborted on SIGINT/SIGTERM: running commands and action steps are killed, nothing new starts. */
const stopAll = new AbortController()

const owned = {
  /** builder names this run created or had created (A's are removed by its post step), with the DOCKER_CONFIG of each (buildx keeps builders per config) */
  builders: new Map(),
  closers: [],
  dirs: []
}

async function cleanup(dockerEnvFor) {
  for (const [name, cfg] of owned.builders) {
    const env = dockerEnvFor(cfg)
    await run('docker', ['buildx', 'rm', '--force', name], { env }).catch(() => {})
    // the container and its state volume are named after the builder: remove ours if buildx could not
    await run('docker', ['rm', '-f', '-v', `buildx_buildkit_${name}0`], { env }).catch(() => {})
    await run('docker', ['volume', 'rm', '-f', `buildx_buildkit_${name}0_state`], { env }).catch(() => {})
  }
  owned.builders.clear()
  for (const close of owned.closers.splice(0).reverse()) await close().catch(() => {})
  for (const d of owned.dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
}

function tempDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  owned.dirs.push(d)
  return d
}

/** Runs a command (killed when the run is interrupted). */
const run = (cmd, args, o = {}) => runProcess(cmd, args, { timeoutMs: 20 * 60_000, signal: stopAll.signal, ...o })
/** mapLimit that starts nothing new once the run is interrupted. */
const mapUntilStopped = (items, limit, fn) => mapLimit(items, limit, fn, stopAll.signal)

// ---------------------------------------------------------------------------------------------

async function main() {
  const a = cli('bench:pipeline', USAGE, {
    reps: { type: 'string', default: '3' },
    'manifest-runs': { type: 'string', default: '5' },
    'pr-output-runs': { type: 'string', default: '3' },
    'bootstrap-runs': { type: 'string', default: '5' },
    variants: { type: 'string', default: 'A,B,C' },
    rounds: { type: 'string', default: ROUNDS.join(',') },
    'dep-steps': { type: 'string', default: '4' },
    'entries-per-minute': { type: 'string', default: '200' },
    'keep-logs': { type: 'string' },
    json: { type: 'string' },
    'render-only': { type: 'string' },
    out: { type: 'string' },
    'no-write': { type: 'boolean', default: false }
  })
  if (typeof a === 'number') return a
  const v = a.values
  const [reps, manifestRuns, prOutputRuns, bootstrapRuns] = ['reps', 'manifest-runs', 'pr-output-runs', 'bootstrap-runs'].map((k) => count(v[k], 0, 0))
  const variants = v.variants.split(',').map((s) => s.trim().toUpperCase())
  const rounds = ['cold', ...v.rounds.split(',').filter((r) => ROUNDS.includes(r) && r !== 'cold')]
  const depSteps = count(v['dep-steps'], 4, 1)
  const entriesPerMinute = count(v['entries-per-minute'], 200, 1)
  const keepLogs = v['keep-logs'] ? path.resolve(v['keep-logs']) : null
  if (keepLogs) fs.mkdirSync(keepLogs, { recursive: true })
  const out = v['no-write'] ? null : path.resolve(v.out ?? path.join(REPO_ROOT, 'docs', 'benchmarks.md'))
  const git = gitState(REPO_ROOT, ['src', 'dist', 'action.yml'])
  const commit = git.dirty.length ? `${git.commit} + uncommitted changes to src/dist/action.yml` : git.commit
  const write = (figures) => {
    const md = render(figures)
    process.stdout.write(`\n${md}\n`)
    if (out) writePipelineBlock(out, md)
  }
  if (v['render-only']) {
    write(JSON.parse(fs.readFileSync(v['render-only'], 'utf8')))
    return 0
  }

  const t0 = Date.now()
  const { runAction, resultExitCode } = await import('../../__tests__/e2e/support/harness.mjs')
  const stackMod = await import('../../__tests__/e2e/support/stack.mjs')
  const { ensureStack, engineEnv, makeDockerConfig, dockerEnv, registryFetch, stopStackIfStarted } = stackMod
  const { startCacheV2Double } = await import('../../__tests__/e2e/support/cache-v2-double.mjs')
  const { mintRuntimeToken } = await import('../../__tests__/e2e/support/cache-double.mjs')
  const { startFaultProxy } = await import('../../__tests__/e2e/support/fault-proxy.mjs')

  say('ensuring the e2e stack (lease held; never stopped unless this run started it and nobody else uses it)')
  const stack = await ensureStack({ lease: true, quiet: true })
  const senv = stack.env
  const engine = engineEnv(senv, 'current')
  const dockerEnvFor = (cfg) => dockerEnv(cfg, { engine: 'current' })

  let interrupted = false
  const onSignal = async (sig) => {
    if (interrupted) return
    interrupted = true
    say(`${sig}: stopping the running jobs and cleaning up`)
    stopAll.abort()
    await new Promise((r) => setTimeout(r, 3000)) // the harness runs the post steps of killed mains; give them a moment
    await cleanup(dockerEnvFor)
    await stopStackIfStarted().catch(() => {})
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  const results = { jobs: [], pipelines: [], manifest: [], bootstrap: [], prOutput: [], argv: {}, notes: [] }
  const prefix = `bench-pipe-${hex(3)}`
  const user = senv.BROKKR_REGISTRY_USER
  const password = senv.BROKKR_REGISTRY_PASSWORD
  const ctx = tempDir('brokkr-pipe-ctx-')
  writeContext(ctx, { depSteps })
  const buildArgs = [`BASE_IMAGE=${engine.baseImage}`]
  const repoOf = (variant, component) => `${prefix}/${variant.toLowerCase()}-${component}`
  /** BuildKit in its container pushes through the bridge; the host-side clients use loopback (same storage). */
  const bridgeImage = (variant, component) => `${engine.registry}/${repoOf(variant, component)}`
  const loopImage = (variant, component) => `${senv.BROKKR_REGISTRY}/${repoOf(variant, component)}`

  /** A fresh runner's docker config: the stack's buildx plugin; new builders treat the stack registries as plain http. */
  const freshConfig = () => {
    const dir = makeDockerConfig({ engine: 'current', buildkitd: true })
    owned.dirs.push(dir)
    return dir
  }
  /** A builder this run will create (named `name`), with a fresh config and its docker env. */
  const newBuilder = (name = recipeBuilderName(), cfg = freshConfig()) => {
    owned.builders.set(name, cfg)
    return { name, cfg, env: dockerEnvFor(cfg) }
  }
  const removeBuilder = async ({ name, env }) => {
    const r = await run('docker', removeBuilderArgv(name), { env })
    owned.builders.delete(name)
    return r
  }
  /** Runtime token: main writes main's scope; a pull request `pr` writes its own and reads main's. `extra` scopes are read-only markers. */
  const token = (pr, ...extra) =>
    mintRuntimeToken({
      scopes: [
        ...(pr ? [{ Scope: `refs/pull/${pr}/merge`, Permission: 3 }] : []),
        { Scope: 'refs/heads/main', Permission: pr ? 1 : 3 },
        ...extra.map((Scope) => ({ Scope, Permission: 1 }))
      ]
    })
  /** A job's token; a marker scope names the job in the double's log. */
  const tokenFor = (event, jobId) => token(event === 'pull_request' ? 7 : 0, `bench-job/${jobId}`)

  /** Cache bytes a job committed (finalized entries created with its token). */
  const cacheWritten = (double, jobId) => {
    const mine = double.requests.filter((r) => r.kind === 'api' && (r.scopes ?? []).includes(`bench-job/${jobId}`))
    const fin = mine.filter((r) => r.method === 'FinalizeCacheEntryUpload' && r.ok === true)
    return { bytes: fin.reduce((n, r) => n + (Number(r.sizeBytes) || 0), 0), entries: fin.length }
  }

  async function startDouble() {
    // listening on the bridge address itself: BuildKit in its container and the host both reach it
    // there, with no forwarder in between
    const double = await startCacheV2Double({ host: engine.bridgeIp, token: mintRuntimeToken({ scope: 'refs/heads/main' }), entriesPerMinute })
    owned.closers.push(() => double.close())
    return { double, url: double.url.endsWith('/') ? double.url : `${double.url}/` }
  }

  /** The action's run through the harness on the current engine; its failure as its first error annotation. */
  async function action({ inputs, timeoutMs, ...o }) {
    const t = Date.now()
    const r = await runAction({ engine: 'current', stack, cwd: ctx, secrets: [password], timeoutMs, signal: stopAll.signal, ...o, inputs })
    r.cleanup()
    const ok = resultExitCode(r) === 0
    return { r, ok, ms: Date.now() - t, error: ok ? '' : r.annotations.find((x) => x.level === 'error')?.message }
  }
  /** The `docker buildx <what>` command line the action printed. */
  const commandOf = (log, what) => new RegExp(`^\\[command\\]\\S*(docker buildx ${what} .*)$`, 'm').exec(log)?.[1]

  // --- the jobs ------------------------------------------------------------------------------

  /** (A) one build job: the bundled action, defaults (docker-container, gha per component-arch). */
  async function jobA({ component, platform, sha, event, cache, jobId }) {
    // one builder per job as on a fresh runner; named uniquely only because the jobs share one engine
    const b = newBuilder(`bench-pipe-a-${hex(4)}`)
    const inputs = { mode: 'build', component, platform, registry: engine.registry, image: bridgeImage('A', component), username: user, password }
    Object.assign(inputs, { builder: b.name, 'build-args': buildArgs.join('\n') })
    const gha = { url: cache.url, token: tokenFor(event, jobId), version: 2 }
    const { r, ok, ms, error } = await action({ sha, event, dockerConfig: b.cfg, timeoutMs: 20 * 60_000, cache: gha, inputs })
    if (!ok) say(`A ${component} ${platform} failed:\n${tailOf(r.log, 30)}`)
    results.argv.A = commandOf(r.log, 'build') ?? results.argv.A
    results.argv.Acreate = commandOf(r.log, 'create') ?? results.argv.Acreate
    return { ok, ms, log: r.log, digest: r.outputs.digest, pushed: r.outputs.pushed === 'true', error: ok ? '' : (error ?? 'failed') }
  }

  /** (B)/(C) one build job: login, setup-buildx, build-push-action, post steps. */
  async function jobRecipe(variant, { component, platform, sha, event, cache, jobId }) {
    const b = newBuilder()
    const tmp = tempDir('brokkr-pipe-bpa-')
    const push = event !== 'pull_request'
    const env = {
      ...b.env,
      ACTIONS_RESULTS_URL: cache.url,
      ACTIONS_RUNTIME_TOKEN: tokenFor(event, jobId),
      ACTIONS_CACHE_SERVICE_V2: 'True',
      BUILDX_METADATA_WARNINGS: 'true'
    }
    const { from: cacheFrom, to: cacheTo } = recipeCache(variant, component, archOf(platform))
    const labels = [
      `org.opencontainers.image.created=${new Date().toISOString()}`,
      `org.opencontainers.image.revision=${sha}`,
      `org.opencontainers.image.source=${SERVER}/${REPO_NAME}`,
      `org.opencontainers.image.title=brokkr`,
      `org.opencontainers.image.url=${SERVER}/${REPO_NAME}`,
      `org.opencontainers.image.version=${event === 'pull_request' ? 'pr-7' : 'main'}`
    ]
    const [file, image] = [`docker/Dockerfile.${component}`, bridgeImage(variant, component)]
    const argv = buildPushArgv({ buildArgs, cacheFrom, cacheTo, file, tmp, labels, image, push, platform, runUrl: runUrl(1000 + (jobId % 1000)), context: '.' })
    results.argv[variant] = `docker ${argv.join(' ')}`
    const t = Date.now()
    const steps = []
    const step = async (args, o = {}) => {
      const res = await run('docker', args, { env, cwd: ctx, ...o })
      steps.push({ args, ...res })
      return res.code === 0
    }
    let log = ''
    let digest
    let ok = await step(['login', engine.registry, '--username', user, '--password-stdin'], { input: password })
    const setupMs0 = Date.now()
    for (const a of setupBuildxArgv(b.name)) ok = ok && (await step(a))
    const setupMs = Date.now() - setupMs0
    if (ok) {
      ok = await step(argv)
      log = steps.at(-1).stderr
      try {
        digest = JSON.parse(fs.readFileSync(path.join(tmp, 'metadata-file'), 'utf8'))['containerimage.digest']
      } catch {}
    }
    steps.push({ args: removeBuilderArgv(b.name), ...(await removeBuilder({ ...b, env })) })
    await step(['logout', engine.registry])
    const ms = Date.now() - t
    if (!ok)
      say(`${variant} ${component} ${platform} failed:\n${steps.map((s) => `docker ${s.args.join(' ')} -> ${s.code}\n${tailOf(s.stderr, 15)}`).join('\n')}`)
    const errors = (steps.at(-3)?.stderr ?? '').split('\n').filter((l) => /ERROR/.test(l))
    const error = ok ? '' : (errors.at(-1) ?? 'failed')
    return { ok, ms, log, digest, pushed: push && ok, setupMs, error }
  }

  /** (A) manifest job: the action's manifest mode. */
  async function manifestA({ component, sha, image, registry }) {
    const inputs = { mode: 'manifest', component, registry, image, username: user, password, 'wait-timeout': '120s' }
    const { r, ok, ms, error } = await action({ sha, dockerConfig: freshConfig(), timeoutMs: 10 * 60_000, inputs })
    return { ok, ms, error: ok ? '' : (error ?? tailOf(r.log, 3).split('\n').join(' ')) }
  }

  /** (B)/(C) merge job: login, setup-buildx, imagetools create + inspect, post steps. */
  async function manifestRecipe({ image, registry, sha, digests }) {
    const b = newBuilder()
    const docker = async (args, o) => (await run('docker', args, { env: b.env, ...o })).code === 0
    const t = Date.now()
    let ok = await docker(['login', registry, '--username', user, '--password-stdin'], { input: password })
    for (const a of setupBuildxArgv(b.name)) ok = ok && (await docker(a))
    let error = ''
    if (ok) {
      const c = await run('docker', imagetoolsCreateArgv(image, [sha, 'main'], digests), { env: b.env })
      ok = c.code === 0
      if (!ok) error = c.stderr.trim().split('\n').slice(-1)[0]
      else ok = await docker(imagetoolsInspectArgv(image, sha))
    }
    await removeBuilder(b)
    await docker(['logout', registry])
    return { ok, ms: Date.now() - t, error }
  }

  // --- one pipeline ---------------------------------------------------------------------------

  let jobSeq = 0
  async function pipeline(variant, round, rep, cache, sha) {
    const event = round === 'pr' ? 'pull_request' : 'push'
    const matrix = COMPONENTS.flatMap((component) => PLATFORMS.map((platform) => ({ component, platform })))
    const tb = Date.now()
    const firstRequest = cache.double.requests.length
    const jobs = await mapUntilStopped(matrix, 2, async ({ component, platform }) => {
      const jobId = ++jobSeq
      const o = { component, platform, sha, event, cache, jobId }
      const r = variant === 'A' ? await jobA(o) : await jobRecipe(variant, o)
      const counts = stepCounts(r.log)
      const written = cacheWritten(cache.double, jobId)
      // every lazy fetch of cached layers as the builder saw it (waits included)
      const fetches = cachedLayerFetches(r.log).map((f) => ({ step: f.title, seconds: f.seconds, transferSeconds: f.transferSeconds, bytes: f.bytes }))
      const job = { variant, round, rep, component, platform, ...r, counts, written, fetches }
      if (keepLogs) fs.writeFileSync(path.join(keepLogs, `${rep}-${round}-${variant}-${component}-${archOf(platform)}.log`), r.log)
      delete job.log
      results.jobs.push(job)
      const what = `CACHED ${counts.cached}/${counts.all}, cache written ${mib(written.bytes)}`
      say(`  ${variant} ${round}#${rep} ${component} ${archOf(platform)}: ${r.ok ? 'ok' : 'FAILED'} ${secs(r.ms)}, ${what}`)
      return job
    })
    const buildMs = Date.now() - tb
    let manifestMs = 0
    let manifests = []
    if (event !== 'pull_request' && jobs.every((j) => j.ok)) {
      const tm = Date.now()
      manifests = await Promise.all(
        COMPONENTS.map((component) => {
          const o = { component, sha, image: loopImage(variant, component), registry: senv.BROKKR_REGISTRY }
          return variant === 'A' ? manifestA(o) : manifestRecipe({ ...o, digests: jobs.filter((j) => j.component === component).map((j) => j.digest) })
        })
      )
      manifestMs = Date.now() - tm
      for (const m of manifests) if (!m.ok) say(`  ${variant} manifest failed: ${m.error}`)
    }
    const p = { variant, round, rep, buildMs, manifestMs, totalMs: buildMs + manifestMs, ok: jobs.every((j) => j.ok) && manifests.every((m) => m.ok) }
    p.manifests = manifests.length
    // blob downloads as the cache double saw them (arrival to last byte)
    const downloads = cache.double.requests.slice(firstRequest).filter((q) => q.kind === 'blob' && q.op === 'download')
    p.blobDownloads = downloads.map((q) => ({ ms: q.ms, headMs: q.headMs, bytes: q.bytes, status: q.status }))
    // the service's rate limit counts CreateCacheEntry per repository and rolling minute
    const creates = cache.double.requests.slice(firstRequest).filter((q) => q.kind === 'api' && q.method === 'CreateCacheEntry')
    p.entries = {
      created: creates.filter((q) => q.status === 200).length,
      refused: creates.filter((q) => q.status === 429).length,
      peakPerMinute: peakPerMinute(creates.filter((q) => q.status === 200).map((q) => q.t))
    }
    p.sha = sha
    p.digests = Object.fromEntries(jobs.map((j) => [`${j.component}/${archOf(j.platform)}`, j.digest]))
    results.pipelines.push(p)
    say(`${variant} ${round}#${rep}: builds ${secs(buildMs)} + manifests ${secs(manifestMs)} = ${secs(p.totalMs)}${p.ok ? '' : ' (FAILED)'}`)
    return p
  }

  try {
    // --- bootstrap cost of a docker-container builder, alone --------------------------------
    if (bootstrapRuns > 0) {
      say(`bootstrap: ${bootstrapRuns} x create + inspect --bootstrap + rm of a docker-container builder`)
      const cfg = freshConfig()
      for (let i = 0; i < bootstrapRuns; i++) {
        const b = newBuilder(`bench-pipe-boot-${hex(4)}`, cfg)
        const [create, inspect] = setupBuildxArgv(b.name)
        const c = await run('docker', create, { env: b.env })
        const boot = await run('docker', inspect, { env: b.env })
        const rm = await removeBuilder(b)
        results.bootstrap.push({ createMs: c.ms, bootMs: boot.ms, rmMs: rm.ms, ok: c.code === 0 && boot.code === 0 && rm.code === 0 })
      }
    }

    // --- pipelines ----------------------------------------------------------------------------
    let turn = 0
    let caches = {}
    for (let rep = 1; rep <= reps; rep++) {
      writeContext(ctx, { depSteps }) // sources back to revision 0
      caches = {}
      for (const variant of variants) caches[variant] = await startDouble()
      for (const round of rounds) {
        if (round === 'change') changeSources(ctx, 'broker', `${rep}-change`)
        if (round === 'pr') changeSources(ctx, 'agent', `${rep}-pr`)
        const sha = hex(20)
        const order = variants.map((_, i) => variants[(i + turn) % variants.length])
        turn++
        for (const variant of order) {
          if (interrupted) return 130
          await pipeline(variant, round, rep, caches[variant], sha)
        }
      }
      for (const variant of variants) results.notes.push(`rep ${rep} ${variant}: cache double ${JSON.stringify(caches[variant].double.summarize().counts)}`)
    }

    // --- the pull request's output on the same work ------------------------------------------
    // A's pull-request job ends in `--output type=cacheonly`; the recipe's in an image export with
    // push=false, a provenance attestation and a cache export. Same state for all three: the last
    // repetition's cache of A (main warm, agent's sources changed), a pull request's token, a fresh
    // builder per build (its bootstrap not timed), a pull request of its own per build, kinds rotated per run.
    if (prOutputRuns > 0 && caches.A && rounds.includes('pr')) {
      const kinds = ['cacheonly', 'image', 'recipe']
      say(`pull-request output: ${prOutputRuns} x ${kinds.join(' / ')} per arch on the same work`)
      for (let i = 0; i < prOutputRuns; i++) {
        for (const platform of PLATFORMS) {
          for (let k = 0; k < kinds.length; k++) {
            const kind = kinds[(k + i) % kinds.length]
            const arch = archOf(platform)
            const b = newBuilder(`bench-pipe-pr-${hex(4)}`)
            // a pull request of its own per build: the recipe's cache export must not serve the next build
            const env = { ...b.env, ACTIONS_RESULTS_URL: caches.A.url, ACTIONS_RUNTIME_TOKEN: token(100 + ++jobSeq), ACTIONS_CACHE_SERVICE_V2: 'True' }
            for (const a of setupBuildxArgv(b.name)) await run('docker', a, { env, cwd: ctx })
            const file = 'docker/Dockerfile.agent'
            const { from: cacheFrom, to: cacheTo } = recipeCache('C', 'agent', arch)
            const tmp = kind === 'recipe' ? tempDir('brokkr-pipe-pro-') : null // the recipe's iidfile and metadata file
            const recipe = { buildArgs, cacheFrom, cacheTo, file, tmp, labels: [], image: bridgeImage('C', 'agent'), push: false, platform, context: '.' }
            const image = `type=image,name=${bridgeImage('A', 'agent')},push-by-digest=true,name-canonical=true,push=false`
            const own = ['--builder', b.name, '--build-arg', buildArgs[0], '--file', file, '--platform', platform]
            const argv =
              kind === 'recipe'
                ? buildPushArgv({ ...recipe, runUrl: runUrl(1) }).toSpliced(2, 0, '--builder', b.name)
                : ['buildx', 'build', ...own, '--cache-from', `type=gha,scope=agent-${arch}`, '--output', kind === 'cacheonly' ? 'type=cacheonly' : image, '.']
            const r = await run('docker', argv, { env, cwd: ctx })
            await removeBuilder({ ...b, env })
            const counts = stepCounts(r.stderr)
            results.prOutput.push({ kind, platform, ms: r.ms, ok: r.code === 0, cached: counts.cached, all: counts.all })
            if (r.code !== 0) say(`  pr output ${kind} ${arch} failed:\n${tailOf(r.stderr, 10)}`)
          }
        }
      }
    }

    // --- the manifest step under lag and faults -----------------------------------------------
    if (manifestRuns > 0 && variants.includes('A') && variants.includes('B')) {
      const lastMain = (variant) => results.pipelines.filter((p) => p.variant === variant && p.round !== 'pr' && p.ok).at(-1)
      const src = { A: lastMain('A'), B: lastMain('B') }
      if (!src.A || !src.B) {
        results.notes.push('manifest section skipped: no successful main pipeline of A and B to take the arch images from')
      } else {
        const proxy = await startFaultProxy({ target: `http://${senv.BROKKR_REGISTRY}`, seed: 1 })
        owned.closers.push(() => proxy.close())
        // B's merge job as the recipe has it: logged in, a builder set up (not timed here)
        const b = newBuilder()
        await run('docker', ['login', proxy.host, '--username', user, '--password-stdin'], { env: b.env, input: password })
        for (const a of setupBuildxArgv(b.name)) await run('docker', a, { env: b.env })
        const conditions = {
          lag: (repo, ref, digest) => ({ hide: [ref, digest].map((tag) => ({ repo, tag, seconds: 3, from: 'now' })) }),
          faults: (_repo, _ref, _digest, i) => ({ errorRate: 0.1, statuses: [500, 502, 503, 429], retryAfter: 1, resetRate: 0.05, seed: 7000 + i })
        }
        const copyTag = async (repo, from, to) => {
          const source = await registryFetch(`/v2/${repo}/manifests/${from}`)
          const type = (source.headers.get('content-type') ?? '').split(';')[0]
          const body = Buffer.from(await source.arrayBuffer())
          const put = await registryFetch(`/v2/${repo}/manifests/${to}`, { method: 'PUT', headers: { 'Content-Type': type }, body })
          if (put.status !== 201) throw new Error(`copy ${repo}:${from} -> ${to}: HTTP ${put.status}`)
        }
        for (const [cond, rules] of Object.entries(conditions)) {
          say(`manifest step under ${cond}: ${manifestRuns} runs each of A and B, interleaved`)
          for (let i = 0; i < manifestRuns; i++) {
            for (const variant of i % 2 ? ['B', 'A'] : ['A', 'B']) {
              const component = 'agent'
              const repo = repoOf(variant, component)
              const armDigest = src[variant].digests[`${component}/arm64`]
              const sha = hex(20)
              let r
              if (variant === 'A') {
                for (const arch of ['amd64', 'arm64']) await copyTag(repo, `${src.A.sha}-${arch}`, `${sha}-${arch}`)
                proxy.configure(rules(repo, `${sha}-arm64`, armDigest, i))
                r = await manifestA({ component, sha, image: `${proxy.host}/${repo}`, registry: proxy.host })
              } else {
                proxy.configure(rules(repo, sha, armDigest, i))
                const digests = ['amd64', 'arm64'].map((a) => src.B.digests[`${component}/${a}`])
                const c = await run('docker', imagetoolsCreateArgv(`${proxy.host}/${repo}`, [sha], digests), { env: b.env })
                r = { ok: c.code === 0, ms: c.ms, error: c.code === 0 ? '' : c.stderr.trim().split('\n').slice(-1)[0] }
              }
              proxy.configure({})
              // what the registry holds decides, not the exit code alone
              const idx = await registryFetch(`/v2/${repo}/manifests/${sha}`)
              const whole = idx.status === 200 && ((await idx.json()).manifests ?? []).filter((m) => m.platform?.architecture !== 'unknown').length === 2
              results.manifest.push({ cond, variant, i, ok: r.ok && whole, ms: r.ms, error: r.error })
              say(`  ${cond} ${variant} #${i + 1}: ${r.ok && whole ? 'ok' : `FAILED (${r.error || 'index incomplete'})`} ${secs(r.ms)}`)
            }
          }
        }
        await removeBuilder(b)
      }
    }
  } finally {
    await cleanup(dockerEnvFor)
    if (await stopStackIfStarted().catch(() => false)) say('stopped the stack this run started')
  }

  const wallS = (Date.now() - t0) / 1000
  const { dockerVersion, buildxVersion, buildkitVersion, registry } = engine
  const facts = { engine: { dockerVersion, buildxVersion, buildkitVersion, registry }, commit, wallS, date: new Date().toISOString() }
  const figures = { results, ...facts, reps, variants, rounds, depSteps, entriesPerMinute }
  if (v.json) fs.writeFileSync(path.resolve(v.json), JSON.stringify(figures, null, 1))
  write(figures)
  if (out) say(`wrote the pipeline block of ${path.relative(process.cwd(), out) || out}`)
  say(`done in ${wallS.toFixed(0)} s`)
  // the rivals' failures are results; only a failure of this action's pipeline fails the run
  return results.pipelines.some((p) => p.variant === 'A' && !p.ok) ? 1 : 0
}

// ---------------------------------------------------------------------------------------------
// Markdown

function render({ results, engine, commit, wallS, date, reps, variants, rounds, depSteps, entriesPerMinute = 200 }) {
  const L = []
  const J = results.jobs
  const P = results.pipelines
  L.push('## Pipeline: this action vs Docker\'s "distribute build across multiple runners" recipe', '')
  L.push(
    `Generated by \`npm run bench:pipeline\` (\`tools/bench/pipeline.mjs\`) on ${date} in ${wallS.toFixed(0)} s, commit \`${commit}\`. ` +
      `Engine "current": Docker ${engine.dockerVersion}, buildx ${engine.buildxVersion}, BuildKit ${engine.buildkitVersion ?? '?'} (\`moby/buildkit:buildx-stable-1\`), ` +
      `\`docker-container\` driver, cache service v2 double (Twirp + Azurite; the runner's \`ACTIONS_RESULTS_URL\`, \`ACTIONS_RUNTIME_TOKEN\`, \`ACTIONS_CACHE_SERVICE_V2=True\`). ` +
      `${reps} repetition(s) of the rounds ${rounds.join(', ')} per variant, each repetition from empty caches; variants alternate, order rotated per round. ` +
      'The stack is shared with other e2e runs on 2 cores: compare within this run (medians, ratios), not with other runs.',
    ''
  )
  L.push(
    `Workload: per component (broker, agent) a Dockerfile with a dependency stage (lock file, ${depSteps} RUN steps of sha256/shell CPU work, a 12 MiB vendored blob), ` +
      "an application stage on the component's sources (one RUN step) and a small final stage; arm64 runs under QEMU. " +
      "Rounds: **cold** (empty cache), **warm** (no change), **change** (broker's sources changed), **pr** (a pull request after main is warm, agent's sources changed; token writes `refs/pull/7/merge`, reads `refs/heads/main`). " +
      'Every job starts with a fresh DOCKER_CONFIG and a fresh builder (nothing local). Build jobs run two at a time (matrix order broker/amd64, broker/arm64, agent/amd64, agent/arm64), then both manifest jobs at once; no manifest jobs on pull requests.',
    ''
  )
  L.push(
    'Variants:',
    '',
    '- **A** this action, `dist/` through the runner harness, defaults (driver `docker-container`, `cache: gha`, scope `<component>-<arch>`, push `auto`); only `builder` is set, to a unique name per job (all jobs share one engine here). Manifest jobs: `mode: manifest`.',
    '- **B** the recipe with its defaults: what docker/login-action, docker/setup-buildx-action and docker/build-push-action run (`cache-from: type=gha`, `cache-to: type=gha,mode=max`: one shared scope `buildkit`), push by digest (`push=false` on the pull request); merge job: login, setup-buildx, `imagetools create`, `imagetools inspect`.',
    '- **C** B with `scope=<component>-<arch>` in both cache attributes.',
    ''
  )
  const ex = (k) => results.argv[k]?.replace(/(--password-stdin|password=)\S*/g, '$1')
  L.push('<details><summary>exact commands of one job (last round)</summary>', '', '```')
  L.push('# B and C, build job (C: type=gha,scope=<component>-<arch> and type=gha,scope=<component>-<arch>,mode=max)')
  L.push(`docker login ${engine.registry} --username <user> --password-stdin`)
  L.push(...setupBuildxArgv('builder-<uuid>').map((a) => `docker ${a.map((x) => (/\s/.test(x) ? `'${x}'` : x)).join(' ')}`))
  L.push(...[ex('B'), ex('C')].filter(Boolean), `docker ${removeBuilderArgv('builder-<uuid>').join(' ')}`, `docker logout ${engine.registry}`)
  L.push('# B and C, merge job (per component)', 'docker login <registry> --username <user> --password-stdin', '(setup-buildx as above)')
  L.push(`docker ${imagetoolsCreateArgv('<image>', ['<sha>', 'main'], ['<amd64 digest>', '<arm64 digest>']).join(' ')}`)
  L.push(`docker ${imagetoolsInspectArgv('<image>', '<sha>').join(' ')}`, '(post: buildx rm, logout)')
  L.push('# A, build job: what the action ran', ...[results.argv.Acreate, ex('A')].filter(Boolean))
  L.push('```', '', '</details>', '')

  // pipelines
  const pipeOf = (variant, round) => P.filter((p) => p.variant === variant && p.round === round)
  const jobsOf = (variant, round) => J.filter((j) => j.variant === variant && j.round === round)
  const sum = (xs, f) => xs.reduce((n, x) => n + f(x), 0)
  /** Median over the repetitions of what the jobs of one pipeline wrote. */
  const writtenOf = (js) =>
    median(
      [...new Set(js.map((j) => j.rep))].map((rep) =>
        sum(
          js.filter((j) => j.rep === rep),
          (j) => j.written.bytes
        )
      )
    )
  const medOf = (xs, k) => median(xs.map((x) => x[k]))
  const rows = []
  for (const round of rounds) {
    for (const variant of variants) {
      const ps = pipeOf(variant, round)
      if (!ps.length) continue
      const js = jobsOf(variant, round)
      const perJob = (j) => `${j.component[0]}/${archOf(j.platform)} ${j.counts.cached}/${j.counts.all}`
      const lastRep = Math.max(...js.map((j) => j.rep))
      const a = medOf(pipeOf('A', round), 'totalMs')
      const vsA = Number.isFinite(a) && a > 0 ? `A = ${((100 * 100) / Number(((medOf(ps, 'totalMs') / a) * 100).toFixed(0))).toFixed(0)} % of ${variant}` : '—'
      const archMs = (arch) => secs(median(js.filter((j) => archOf(j.platform) === arch).map((j) => j.ms)))
      const last = js.filter((j) => j.rep === lastRep).map(perJob)
      rows.push([
        round,
        `**${variant}**`,
        `${ps.filter((p) => p.ok).length}/${ps.length}`,
        secs(medOf(ps, 'buildMs')),
        round === 'pr' ? '—' : secs(medOf(ps, 'manifestMs')),
        `**${secs(medOf(ps, 'totalMs'))}**`,
        variant === 'A' ? '—' : vsA,
        archMs('amd64'),
        archMs('arm64'),
        `${sum(js, (j) => j.counts.cached)}/${sum(js, (j) => j.counts.all)} (last rep: ${last.join(', ')})`,
        mib(writtenOf(js)),
        ps.every((p) => p.entries) ? `${median(ps.map((p) => p.entries.created))} / ${median(ps.map((p) => p.entries.peakPerMinute))}` : '—',
        ps.every((p) => p.entries) ? String(sum(ps, (p) => p.entries.refused)) : '—'
      ])
    }
  }
  L.push('### Pipelines (medians over repetitions)', '')
  const pipeHead = ['round', 'variant', 'ok', 'build jobs (2 at a time)', 'manifest jobs', 'pipeline', 'A vs this', 'amd64 job', 'arm64 job']
  L.push(
    table(
      [...pipeHead, 'steps CACHED (all jobs; per job)', 'cache written per pipeline', 'cache entries created / peak per minute', '429s met (all reps)'],
      rows
    ),
    ''
  )
  L.push(
    '"A vs this" = median pipeline of A / median pipeline of the variant. Job times: median over the jobs of that arch and round, from the first command (A: the `node` main step) to the end of its post step. ' +
      '"steps CACHED": Dockerfile steps (FROM excluded) shown as `CACHED` in the build log. "cache written": bytes of the cache entries the jobs of one pipeline committed to the cache service (finalized uploads). ' +
      `"cache entries created / peak per minute": CreateCacheEntry calls the double accepted for one pipeline, and the most of them in any 60 s (median over repetitions); the double refuses more than ${entriesPerMinute} a rolling minute with 429 resource_exhausted and Retry-After (GitHub: 200 per repository). "429s met": its refusals over all repetitions.`,
    ''
  )

  // per job detail
  const lastRep = Math.max(...J.map((x) => x.rep))
  const jrows = J.filter((j) => j.rep === lastRep).map((j) => {
    const [setup, wrote] = [j.setupMs !== undefined ? secs(j.setupMs) : '(in main)', `${mib(j.written.bytes)} (${j.written.entries})`]
    return [
      j.round,
      j.variant,
      `${j.component} ${archOf(j.platform)}`,
      j.ok ? 'ok' : '**failed**',
      secs(j.ms),
      setup,
      `${j.counts.cached}/${j.counts.all}`,
      wrote
    ]
  })
  L.push('<details><summary>every job of the last repetition</summary>', '')
  L.push(table(['round', 'variant', 'job', 'result', 'wall', 'setup-buildx', 'CACHED', 'cache written (entries)'], jrows), '', '</details>', '')

  // lazy fetches of cached layers (issue 16: a stalled fetch must not hide in a median)
  const fetchesOf = (jobs) => jobs.flatMap((j) => (j.fetches ?? []).map((f) => ({ ...f, job: j })))
  const slowest = (xs, k) => xs.reduce((a, x) => (a === null || x[k] > a[k] ? x : a), null)
  const where = (j) => `${j.component}/${archOf(j.platform)} rep ${j.rep}`
  const allFetches = fetchesOf(J)
  if (allFetches.length) {
    L.push('### Fetches of cached layers', '')
    const frows = []
    for (const round of rounds) {
      for (const variant of variants) {
        const fetches = fetchesOf(jobsOf(variant, round))
        const blobs = pipeOf(variant, round).flatMap((p) => p.blobDownloads ?? [])
        if (!fetches.length && !blobs.length) continue
        const w = slowest(fetches, 'seconds')
        const wb = slowest(blobs, 'ms')
        frows.push([
          round,
          `**${variant}**`,
          String(fetches.length),
          w ? `${w.seconds.toFixed(1)} s (${where(w.job)}, ${mib(w.bytes)}, transfer ${w.transferSeconds.toFixed(1)} s)` : '—',
          String(fetches.filter((f) => f.seconds > 3).length),
          String(blobs.length),
          wb ? `${wb.ms} ms (first byte after ${wb.headMs ?? '?'} ms, ${mib(wb.bytes ?? 0)})` : '—'
        ])
      }
    }
    const fetchHead = ['round', 'variant', 'cached-layer fetches (all reps)', 'slowest, as the builder saw it', 'over 3 s']
    L.push(
      table([...fetchHead, 'blob downloads the double served', 'slowest at the double'], frows),
      '',
      '"As the builder saw it": the wall time of a build step that only fetched layers found in the gha cache (BuildKit pulls them lazily when a later step needs them), read from the build log; it includes any wait before the request reached the cache service. "At the double": from the arrival of the blob request to its last byte.',
      ''
    )
  }

  // the pull request's output on the same work
  const PO = results.prOutput ?? []
  if (PO.length) {
    L.push("### The pull request's output, on the same work", '')
    const label = {
      cacheonly: "A's `--output type=cacheonly` (no cache export: pull requests read only)",
      image: 'the same build with `--output type=image,…,push=false` instead',
      recipe: "C's whole pull-request build: image export with push=false, `--attest type=provenance,mode=max`, `--cache-to type=gha,…,mode=max`"
    }
    const prow = []
    for (const kind of ['cacheonly', 'image', 'recipe']) {
      for (const platform of PLATFORMS) {
        const xs = PO.filter((x) => x.kind === kind && x.platform === platform)
        const ok = xs.filter((x) => x.ok)
        if (xs.length)
          prow.push([label[kind], archOf(platform), `${ok.length}/${xs.length}`, ...st(ok.map((x) => x.ms)).slice(0, 2), `${xs[0].cached}/${xs[0].all}`])
      }
    }
    L.push(
      table(['build (agent, sources changed, main warm in the cache)', 'arch', 'ok', 'median `buildx build`', 'min – max', 'steps CACHED'], prow),
      '',
      "Each build on a fresh builder (its bootstrap not timed) with the token of a pull request of its own (reads main's scope, writes its own: the recipe's export cannot serve the next build) against the last repetition's cache of A, kinds rotated per run. " +
        "What `cacheonly` skips: the image exporter (compressing the new layers of the app and final stages, writing the image config, manifest and index into the builder's content store) and, in the recipe, the provenance attestation and the export of the changed layers and a new cache index to the pull request's scope. " +
        'The steps that run are the same in all three.' +
        (results.prOutputSource ? ` These figures come from ${results.prOutputSource}.` : ''),
      ''
    )
  }

  // bootstrap
  const B = results.bootstrap
  if (B.length) {
    L.push('### docker-container builder bootstrap, alone', '')
    L.push(
      table(
        ['step', 'median', 'min – max', 'n'],
        [
          ['`docker buildx create --driver docker-container …`', ...st(B.map((x) => x.createMs))],
          ['`docker buildx inspect --bootstrap`', ...st(B.map((x) => x.bootMs))],
          ['`docker buildx rm`', ...st(B.map((x) => x.rmMs))],
          ['**total per job**', ...st(B.map((x) => x.createMs + x.bootMs + x.rmMs))]
        ]
      ),
      '',
      "Every job of A, B and C pays this once (A creates its builder in main and removes it in post; B/C in setup-buildx and its post step); B/C merge jobs pay it too (setup-buildx runs there), A's manifest mode needs no builder.",
      ''
    )
  }

  // manifest
  if (results.manifest.length) {
    L.push('### Manifest step under a 3 s read-after-write lag and under the fault mix', '')
    const conditions = {
      lag: '3 s lag (arm64 tag and digest 404 for 3 s from the start)',
      faults: 'fault mix of reliability scenario 12 (10 % 500/502/503/429 with Retry-After 1, 5 % resets)'
    }
    const who = { A: '**A** `mode: manifest` (main + post)', B: '**B** `docker buildx imagetools create`' }
    const mrows = []
    for (const cond of ['lag', 'faults']) {
      for (const variant of ['A', 'B']) {
        const ms = results.manifest.filter((m) => m.cond === cond && m.variant === variant)
        const ok = ms.filter((m) => m.ok)
        const errs = [...new Set(ms.filter((m) => !m.ok).map((m) => m.error))].slice(0, 2).join('; ')
        const said = errs ? errs.replace(/\|/g, '\\|').slice(0, 200) : '—'
        if (ms.length) mrows.push([conditions[cond], who[variant], `**${ok.length}/${ms.length}**`, secs(medOf(ok, 'ms')), secs(medOf(ms, 'ms')), said])
      }
    }
    L.push(table(['condition', 'variant', 'succeeded', 'median time (successful)', 'median time (all)', 'failures said'], mrows), '')
    L.push(
      "Through the fault proxy in front of the stack registry; the index is counted as a success only when the registry then holds it with both platforms. A gets a fresh sha whose arch tags are copies of its last main round; B merges its last main round's digests under a fresh tag. B's builder and login are set up before and not timed; A's time includes its login and logout.",
      ''
    )
  }

  L.push(...standing({ J, P, rounds, variants, pipeOf, jobsOf, writtenOf, sum }), '')

  // targets
  L.push('### Targets', '')
  const met = (ok) => (ok ? '**met**' : '**missed**')
  const warm = jobsOf('A', 'warm')
  const allCachedWarm = warm.length > 0 && warm.every((j) => j.counts.all > 0 && j.counts.cached === j.counts.all)
  const trows = [
    [
      'every step of every A job CACHED on the warm round',
      met(allCachedWarm),
      warm.map((j) => `${j.component}/${archOf(j.platform)} ${j.counts.cached}/${j.counts.all}`).join(', ')
    ]
  ]
  for (const [other, strict] of [
    ['C', false],
    ['B', true]
  ]) {
    if (!variants.includes(other)) continue
    const c = []
    for (const round of rounds) {
      const [a, o] = [medOf(pipeOf('A', round), 'totalMs'), medOf(pipeOf(other, round), 'totalMs')]
      if (Number.isFinite(a) && Number.isFinite(o)) c.push({ round, met: strict ? a < o : a <= o, a, o })
    }
    const missed = c.filter((x) => !x.met).map((x) => x.round)
    const result = missed.length ? `**missed** (${missed.join(', ')})` : '**met**'
    trows.push([`A's pipeline ${strict ? '<' : '≤'} ${other}'s`, result, c.map((x) => `${x.round}: ${secs(x.a)} vs ${secs(x.o)}`).join('; ')])
  }
  if (allFetches.length) {
    const w = slowest(allFetches, 'seconds')
    const step = `\`${w.step.replace(/\|/g, '\\|').slice(0, 80)}\``
    const figures = `${w.seconds.toFixed(1)} s: ${w.job.variant} ${w.job.round} ${where(w.job)}, ${step}; ${allFetches.length} fetches in all`
    trows.push(['slowest fetch of a cached layer (any job, any variant) under 3 s', met(w.seconds < 3), figures])
  }
  const faultyA = results.manifest.filter((m) => m.variant === 'A')
  if (faultyA.length)
    trows.push(['A succeeds on every faulty manifest run', met(faultyA.every((m) => m.ok)), `${faultyA.filter((m) => m.ok).length}/${faultyA.length}`])
  L.push(table(['target', 'result', 'figures'], trows), '')
  if (results.notes.length) L.push('<details><summary>cache double counters</summary>', '', ...results.notes.map((n) => `- ${n}`), '', '</details>', '')
  return L.join('\n')
}

/** "Where A stands": per round and rival, the pipeline ratio and what differs, from the figures. */
function standing({ J, P, rounds, variants, pipeOf, jobsOf, writtenOf, sum }) {
  const L = ['### Where A stands', '']
  const cachedOf = (variant, round) => {
    const js = jobsOf(variant, round)
    const reps = new Set(js.map((j) => j.rep)).size || 1
    return `${(sum(js, (j) => j.counts.cached) / reps).toFixed(0)}/${(sum(js, (j) => j.counts.all) / reps).toFixed(0)}`
  }
  const med = (ps, k) => secs(median(ps.map((p) => p[k])))
  for (const other of ['B', 'C']) {
    if (!variants.includes(other) || !variants.includes('A')) continue
    for (const round of rounds) {
      const a = pipeOf('A', round)
      const o = pipeOf(other, round)
      if (!a.length || !o.length) continue
      const am = median(a.map((p) => p.totalMs))
      const om = median(o.map((p) => p.totalMs))
      const ratio = am / om
      const verdictWord = ratio < 0.95 ? 'ahead' : ratio <= 1.05 ? 'level' : 'behind'
      const parts = [
        `build jobs ${med(a, 'buildMs')} vs ${med(o, 'buildMs')}`,
        `steps CACHED ${cachedOf('A', round)} vs ${cachedOf(other, round)}`,
        `cache written ${mib(writtenOf(jobsOf('A', round)))} vs ${mib(writtenOf(jobsOf(other, round)))}`
      ]
      if (round !== 'pr') parts.push(`manifest jobs ${med(a, 'manifestMs')} vs ${med(o, 'manifestMs')}`)
      const [fa, fo] = [a.filter((p) => !p.ok).length, o.filter((p) => !p.ok).length]
      L.push(
        `- **vs ${other}, ${round}**: A ${secs(am)} vs ${secs(om)}, **${verdictWord}** (${((ratio - 1) * 100).toFixed(0)} %, ${secs(am - om)}): ${parts.join('; ')}${fa + fo ? `; failed pipelines: A ${fa}, ${other} ${fo}` : ''}.`
      )
    }
  }
  L.push('')
  const why = []
  const warmB = jobsOf('B', 'warm')
  if (warmB.length && warmB.some((j) => j.counts.cached < j.counts.all)) {
    why.push(
      "B's jobs share the one gha scope `buildkit`: each job's export replaces the scope's cache index, so after a pipeline it describes only the job that exported last, and the next run's other jobs miss and rebuild (and write their layers again)."
    )
  }
  const mA = P.filter((p) => p.variant === 'A' && p.manifests > 0).map((p) => p.manifestMs)
  const mC = P.filter((p) => p.variant !== 'A' && p.manifests > 0).map((p) => p.manifestMs)
  if (mA.length && mC.length) {
    why.push(
      `Manifest jobs: A's \`mode: manifest\` talks to the registry itself and needs no builder (median ${secs(median(mA))} for both jobs); the recipe's merge job sets up a docker-container builder (setup-buildx) and runs \`imagetools create\` and \`imagetools inspect\` (median ${secs(median(mC))}).`
    )
  }
  const prA = jobsOf('A', 'pr')
  if (prA.length && prA.some((j) => j.written.entries > 0)) {
    why.push(
      `On the pull request A still commits cache entries to the pull request's scope (${sum(prA, (j) => j.written.entries)} entries, ${mib(sum(prA, (j) => j.written.bytes))} over the repetitions), as B and C do; a read-only cache on pull requests (issue 10's \`cache-write: auto\`) removes that export.`
    )
  } else if (prA.length) {
    why.push("On the pull request A wrote no cache entry (read-only cache on pull requests); B and C export theirs to the pull request's scope.")
  }
  const failedJobs = J.filter((j) => !j.ok)
  if (failedJobs.length) {
    why.push(
      `Failed jobs: ${failedJobs.map((j) => `${j.variant} ${j.round}#${j.rep} ${j.component}/${archOf(j.platform)}: ${String(j.error ?? '').slice(0, 240)}`).join('; ')}. (The recipe's \`cache-to\` has no \`ignore-error=true\`, so a cache service error fails its build; A exports with \`ignore-error=true\`.)`
    )
  }
  if (why.length) L.push('Why:', '', ...why.map((w) => `- ${w}`))
  return L
}

runMain('bench:pipeline', main)
