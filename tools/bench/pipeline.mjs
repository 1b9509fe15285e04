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

import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { parseArgs } from 'node:util'

import { REPO_ROOT } from '../../__tests__/support/paths.mjs'
import { mapLimit, run as runProcess } from '../../__tests__/support/processes.mjs'
import { writePipelineBlock } from './doc-section.mjs'
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
  --keep-logs DIR      write every build job's log there (kept)
  --json FILE          also save the raw figures there
  --render-only FILE   render (and write) the markdown from figures saved with --json; runs nothing
  --out FILE           default docs/benchmarks.md (only its bench:pipeline block is replaced)
  --no-write           print only`

const ROUNDS = ['cold', 'warm', 'change', 'pr']
const REPO_NAME = 'colliery-io/brokkr'
const SERVER = 'https://github.com'
const say = (m) => process.stderr.write(`bench:pipeline: ${new Date().toISOString().slice(11, 19)} ${m}\n`)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const hex = (n) => randomBytes(n).toString('hex')
const newSha = () => hex(20)
const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (!s.length) return NaN
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const secs = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : 'n/a')
const mib = (b) => (!Number.isFinite(b) ? 'n/a' : b >= 1048576 ? `${(b / 1048576).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b} B`)
const archOf = (p) => p.split('/')[1]
const table = (head, rows) => [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n')

// ---------------------------------------------------------------------------------------------
// Everything this run starts, so that it can stop it again (also on Ctrl-C)

/** Aborted on SIGINT/SIGTERM: running commands and action steps are killed, nothing new starts. */
const stopAll = new AbortController()

const owned = {
  /** builder names this run created or had created (A's are removed by its post step) */
  builders: new Set(),
  /** DOCKER_CONFIG of each builder (buildx keeps builders per config) */
  builderConfig: new Map(),
  closers: [],
  dirs: []
}

async function cleanup(dockerEnvFor) {
  for (const name of owned.builders) {
    const env = dockerEnvFor(owned.builderConfig.get(name))
    await run('docker', ['buildx', 'rm', '--force', name], { env }).catch(() => {})
    // the container and its state volume are named after the builder: remove ours if buildx could not
    await run('docker', ['rm', '-f', '-v', `buildx_buildkit_${name}0`], { env }).catch(() => {})
    await run('docker', ['volume', 'rm', '-f', `buildx_buildkit_${name}0_state`], { env }).catch(() => {})
  }
  owned.builders.clear()
  while (owned.closers.length)
    await owned.closers
      .pop()()
      .catch(() => {})
  for (const d of owned.dirs) fs.rmSync(d, { recursive: true, force: true })
  owned.dirs.length = 0
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
  let v
  try {
    v = parseArgs({
      options: {
        reps: { type: 'string', default: '3' },
        'manifest-runs': { type: 'string', default: '5' },
        'pr-output-runs': { type: 'string', default: '3' },
        'bootstrap-runs': { type: 'string', default: '5' },
        variants: { type: 'string', default: 'A,B,C' },
        rounds: { type: 'string', default: ROUNDS.join(',') },
        'dep-steps': { type: 'string', default: '4' },
        'keep-logs': { type: 'string' },
        json: { type: 'string' },
        'render-only': { type: 'string' },
        out: { type: 'string' },
        'no-write': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false }
      }
    }).values
  } catch (e) {
    process.stderr.write(`${e.message}\n${USAGE}\n`)
    return 2
  }
  if (v.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const reps = Math.max(0, Number(v.reps) || 0)
  const manifestRuns = Math.max(0, Number(v['manifest-runs']) || 0)
  const prOutputRuns = Math.max(0, Number(v['pr-output-runs'] ?? 3) || 0)
  const bootstrapRuns = Math.max(0, Number(v['bootstrap-runs']) || 0)
  const variants = v.variants.split(',').map((s) => s.trim().toUpperCase())
  const rounds = ['cold', ...v.rounds.split(',').filter((r) => ROUNDS.includes(r) && r !== 'cold')]
  const depSteps = Math.max(1, Number(v['dep-steps']) || 4)
  const keepLogs = v['keep-logs'] ? path.resolve(v['keep-logs']) : null
  if (keepLogs) fs.mkdirSync(keepLogs, { recursive: true })
  const out = v['no-write'] ? null : path.resolve(v.out ?? path.join(REPO_ROOT, 'docs', 'benchmarks.md'))
  const commit = (() => {
    try {
      const c = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim()
      const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'dist', 'action.yml'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim()
      return dirty ? `${c} + uncommitted changes to src/dist/action.yml` : c
    } catch {
      return 'unknown'
    }
  })()

  if (v['render-only']) {
    const saved = JSON.parse(fs.readFileSync(v['render-only'], 'utf8'))
    const md = render(saved)
    process.stdout.write(`\n${md}\n`)
    if (out) writePipelineBlock(out, md)
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
    await sleep(3000) // the harness runs the post steps of killed mains; give them a moment
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

  /** Runtime token of a job: main writes main's scope; a PR writes its own and reads main's. A marker scope names the job in the double's log. */
  const tokenFor = (event, jobId) =>
    mintRuntimeToken({
      scopes:
        event === 'pull_request'
          ? [
              { Scope: 'refs/pull/7/merge', Permission: 3 },
              { Scope: 'refs/heads/main', Permission: 1 },
              { Scope: `bench-job/${jobId}`, Permission: 1 }
            ]
          : [
              { Scope: 'refs/heads/main', Permission: 3 },
              { Scope: `bench-job/${jobId}`, Permission: 1 }
            ]
    })

  /** Cache bytes a job committed (finalized entries created with its token). */
  const cacheWritten = (double, jobId) => {
    const mine = double.requests.filter((r) => r.kind === 'api' && (r.scopes ?? []).includes(`bench-job/${jobId}`))
    const fin = mine.filter((r) => r.method === 'FinalizeCacheEntryUpload' && r.ok === true)
    return { bytes: fin.reduce((n, r) => n + (Number(r.sizeBytes) || 0), 0), entries: fin.length }
  }

  async function startDouble() {
    // listening on the bridge address itself: BuildKit in its container and the host both reach it
    // there, with no forwarder in between
    const double = await startCacheV2Double({ host: engine.bridgeIp, token: mintRuntimeToken({ scope: 'refs/heads/main' }) })
    owned.closers.push(() => double.close())
    return { double, url: double.url.endsWith('/') ? double.url : `${double.url}/` }
  }

  // --- the jobs ------------------------------------------------------------------------------

  /** (A) one build job: the bundled action, defaults (docker-container, gha per component-arch). */
  async function jobA({ component, platform, sha, event, cache, jobId }) {
    const builder = `bench-pipe-a-${hex(4)}`
    const cfg = freshConfig()
    owned.builders.add(builder)
    owned.builderConfig.set(builder, cfg)
    const t = Date.now()
    const r = await runAction({
      engine: 'current',
      stack,
      cwd: ctx,
      sha,
      event,
      dockerConfig: cfg,
      secrets: [password],
      timeoutMs: 20 * 60_000,
      signal: stopAll.signal,
      cache: { url: cache.url, token: tokenFor(event, jobId), version: 2 },
      inputs: {
        mode: 'build',
        component,
        platform,
        registry: engine.registry,
        image: bridgeImage('A', component),
        username: user,
        password,
        // one builder per job as on a fresh runner; named uniquely only because the jobs share one engine
        builder,
        'build-args': buildArgs.join('\n')
      }
    })
    const ms = Date.now() - t
    r.cleanup()
    const ok = resultExitCode(r) === 0
    if (!ok) say(`A ${component} ${platform} failed:\n${r.log.split('\n').slice(-30).join('\n')}`)
    const argv = r.log.split('\n').find((l) => /^\[command\].*docker buildx build /.test(l))
    if (argv) results.argv.A = argv.replace(/^\[command\]\S*docker /, 'docker ')
    const create = r.log.split('\n').find((l) => /^\[command\].*docker buildx create /.test(l))
    if (create) results.argv.Acreate = create.replace(/^\[command\]\S*docker /, 'docker ')
    const error = ok ? '' : (r.annotations.find((a) => a.level === 'error')?.message ?? 'failed')
    return { ok, ms, log: r.log, digest: r.outputs.digest, pushed: r.outputs.pushed === 'true', error }
  }

  /** (B)/(C) one build job: login, setup-buildx, build-push-action, post steps. */
  async function jobRecipe(variant, { component, platform, sha, event, cache, jobId }) {
    const cfg = freshConfig()
    const tmp = tempDir('brokkr-pipe-bpa-')
    const push = event !== 'pull_request'
    const env = {
      ...dockerEnvFor(cfg),
      ACTIONS_RESULTS_URL: cache.url,
      ACTIONS_RUNTIME_TOKEN: tokenFor(event, jobId),
      ACTIONS_CACHE_SERVICE_V2: 'True',
      BUILDX_METADATA_WARNINGS: 'true'
    }
    const name = recipeBuilderName()
    owned.builders.add(name)
    owned.builderConfig.set(name, cfg)
    const c = recipeCache(variant, component, archOf(platform))
    const created = new Date().toISOString()
    const labels = [
      `org.opencontainers.image.created=${created}`,
      `org.opencontainers.image.revision=${sha}`,
      `org.opencontainers.image.source=${SERVER}/${REPO_NAME}`,
      `org.opencontainers.image.title=brokkr`,
      `org.opencontainers.image.url=${SERVER}/${REPO_NAME}`,
      `org.opencontainers.image.version=${event === 'pull_request' ? 'pr-7' : 'main'}`
    ]
    const argv = buildPushArgv({
      buildArgs,
      cacheFrom: c.from,
      cacheTo: c.to,
      file: `docker/Dockerfile.${component}`,
      tmp,
      labels,
      image: bridgeImage(variant, component),
      push,
      platform,
      runUrl: `${SERVER}/${REPO_NAME}/actions/runs/${1000 + (jobId % 1000)}`,
      context: '.'
    })
    results.argv[variant] = `docker ${argv.join(' ')}`
    const t = Date.now()
    const steps = []
    const step = async (args, o = {}) => {
      const res = await run('docker', args, { env, cwd: ctx, ...o })
      steps.push({ args, ...res })
      return res
    }
    let ok = true
    let log = ''
    let digest
    const login = await step(['login', engine.registry, '--username', user, '--password-stdin'], { input: password })
    ok = login.code === 0
    const setupMs0 = Date.now()
    for (const a of setupBuildxArgv(name)) if (ok) ok = (await step(a)).code === 0
    const setupMs = Date.now() - setupMs0
    if (ok) {
      const b = await step(argv)
      log = b.stderr
      ok = b.code === 0
      try {
        digest = JSON.parse(fs.readFileSync(path.join(tmp, 'metadata-file'), 'utf8'))['containerimage.digest']
      } catch {}
    }
    await step(removeBuilderArgv(name))
    owned.builders.delete(name)
    await step(['logout', engine.registry])
    const ms = Date.now() - t
    if (!ok)
      say(
        `${variant} ${component} ${platform} failed:\n${steps.map((s) => `docker ${s.args.join(' ')} -> ${s.code}\n${s.stderr.split('\n').slice(-15).join('\n')}`).join('\n')}`
      )
    const error = ok
      ? ''
      : ((steps.at(-3)?.stderr ?? '')
          .split('\n')
          .filter((l) => /ERROR/.test(l))
          .at(-1) ?? 'failed')
    return { ok, ms, log, digest, pushed: push && ok, setupMs, error }
  }

  /** (A) manifest job: the action's manifest mode. */
  async function manifestA({ component, sha, image, registry }) {
    const t = Date.now()
    const r = await runAction({
      engine: 'current',
      stack,
      cwd: ctx,
      sha,
      dockerConfig: freshConfig(),
      secrets: [password],
      timeoutMs: 10 * 60_000,
      signal: stopAll.signal,
      inputs: { mode: 'manifest', component, registry, image, username: user, password, 'wait-timeout': '120s' }
    })
    r.cleanup()
    const ok = resultExitCode(r) === 0
    return {
      ok,
      ms: Date.now() - t,
      mainMs: r.main.durationMs,
      error: ok ? '' : (r.annotations.find((a) => a.level === 'error')?.message ?? r.log.split('\n').slice(-3).join(' '))
    }
  }

  /** (B)/(C) merge job: login, setup-buildx, imagetools create + inspect, post steps. */
  async function manifestRecipe({ image, registry, sha, digests }) {
    const cfg = freshConfig()
    const env = dockerEnvFor(cfg)
    const name = recipeBuilderName()
    owned.builders.add(name)
    owned.builderConfig.set(name, cfg)
    const t = Date.now()
    let ok = (await run('docker', ['login', registry, '--username', user, '--password-stdin'], { env, input: password })).code === 0
    for (const a of setupBuildxArgv(name)) if (ok) ok = (await run('docker', a, { env })).code === 0
    let error = ''
    if (ok) {
      const c = await run('docker', imagetoolsCreateArgv(image, [sha, 'main'], digests), { env })
      ok = c.code === 0
      if (!ok) error = c.stderr.trim().split('\n').slice(-1)[0]
      else ok = (await run('docker', imagetoolsInspectArgv(image, sha), { env })).code === 0
    }
    await run('docker', removeBuilderArgv(name), { env })
    owned.builders.delete(name)
    await run('docker', ['logout', registry], { env })
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
      say(
        `  ${variant} ${round}#${rep} ${component} ${archOf(platform)}: ${r.ok ? 'ok' : 'FAILED'} ${secs(r.ms)}, CACHED ${counts.cached}/${counts.all}, cache written ${mib(written.bytes)}`
      )
      return job
    })
    const buildMs = Date.now() - tb
    let manifestMs = 0
    let manifests = []
    if (event !== 'pull_request' && jobs.every((j) => j.ok)) {
      const tm = Date.now()
      manifests = await Promise.all(
        COMPONENTS.map((component) =>
          variant === 'A'
            ? manifestA({ component, sha, image: loopImage('A', component), registry: senv.BROKKR_REGISTRY })
            : manifestRecipe({
                image: loopImage(variant, component),
                registry: senv.BROKKR_REGISTRY,
                sha,
                digests: jobs.filter((j) => j.component === component).map((j) => j.digest)
              })
        )
      )
      manifestMs = Date.now() - tm
      for (const m of manifests) if (!m.ok) say(`  ${variant} manifest failed: ${m.error}`)
    }
    const p = {
      variant,
      round,
      rep,
      buildMs,
      manifestMs,
      totalMs: buildMs + manifestMs,
      ok: jobs.every((j) => j.ok) && manifests.every((m) => m.ok),
      manifests: manifests.length,
      // blob downloads as the cache double saw them (arrival to last byte)
      blobDownloads: cache.double.requests
        .slice(firstRequest)
        .filter((q) => q.kind === 'blob' && q.op === 'download')
        .map((q) => ({ ms: q.ms, headMs: q.headMs, bytes: q.bytes, status: q.status })),
      sha,
      digests: Object.fromEntries(jobs.map((j) => [`${j.component}/${archOf(j.platform)}`, j.digest]))
    }
    results.pipelines.push(p)
    say(`${variant} ${round}#${rep}: builds ${secs(buildMs)} + manifests ${secs(manifestMs)} = ${secs(p.totalMs)}${p.ok ? '' : ' (FAILED)'}`)
    return p
  }

  try {
    // --- bootstrap cost of a docker-container builder, alone --------------------------------
    if (bootstrapRuns > 0) {
      say(`bootstrap: ${bootstrapRuns} x create + inspect --bootstrap + rm of a docker-container builder`)
      const cfg = freshConfig()
      const env = dockerEnvFor(cfg)
      for (let i = 0; i < bootstrapRuns; i++) {
        const name = `bench-pipe-boot-${hex(4)}`
        owned.builders.add(name)
        owned.builderConfig.set(name, cfg)
        const [create, inspect] = setupBuildxArgv(name)
        const c = await run('docker', create, { env })
        const b = await run('docker', inspect, { env })
        const rm = await run('docker', removeBuilderArgv(name), { env })
        owned.builders.delete(name)
        results.bootstrap.push({ createMs: c.ms, bootMs: b.ms, rmMs: rm.ms, ok: c.code === 0 && b.code === 0 && rm.code === 0 })
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
        const sha = newSha()
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
            const cfg = freshConfig()
            const name = `bench-pipe-pr-${hex(4)}`
            owned.builders.add(name)
            owned.builderConfig.set(name, cfg)
            const env = {
              ...dockerEnvFor(cfg),
              ACTIONS_RESULTS_URL: caches.A.url,
              // a pull request of its own per build: the recipe's cache export must not serve the next build
              ACTIONS_RUNTIME_TOKEN: mintRuntimeToken({
                scopes: [
                  { Scope: `refs/pull/${100 + ++jobSeq}/merge`, Permission: 3 },
                  { Scope: 'refs/heads/main', Permission: 1 }
                ]
              }),
              ACTIONS_CACHE_SERVICE_V2: 'True'
            }
            const [create, boot] = setupBuildxArgv(name)
            await run('docker', create, { env, cwd: ctx })
            await run('docker', boot, { env, cwd: ctx })
            const common = ['--builder', name, '--build-arg', buildArgs[0], '--file', 'docker/Dockerfile.agent', '--platform', platform]
            const argv =
              kind === 'recipe'
                ? buildPushArgv({
                    buildArgs,
                    cacheFrom: recipeCache('C', 'agent', arch).from,
                    cacheTo: recipeCache('C', 'agent', arch).to,
                    file: 'docker/Dockerfile.agent',
                    tmp: tempDir('brokkr-pipe-pro-'), // the recipe's iidfile and metadata file
                    labels: [],
                    image: bridgeImage('C', 'agent'),
                    push: false,
                    platform,
                    runUrl: `${SERVER}/${REPO_NAME}/actions/runs/1`,
                    context: '.'
                  }).toSpliced(2, 0, '--builder', name)
                : [
                    'buildx',
                    'build',
                    ...common,
                    '--cache-from',
                    `type=gha,scope=agent-${arch}`,
                    '--output',
                    kind === 'cacheonly' ? 'type=cacheonly' : `type=image,name=${bridgeImage('A', 'agent')},push-by-digest=true,name-canonical=true,push=false`,
                    '.'
                  ]
            const b = await run('docker', argv, { env, cwd: ctx })
            await run('docker', removeBuilderArgv(name), { env })
            owned.builders.delete(name)
            const counts = stepCounts(b.stderr)
            results.prOutput.push({ kind, platform, ms: b.ms, ok: b.code === 0, cached: counts.cached, all: counts.all })
            if (b.code !== 0) say(`  pr output ${kind} ${arch} failed:\n${b.stderr.split('\n').slice(-10).join('\n')}`)
          }
        }
      }
    }

    // --- the manifest step under lag and faults -----------------------------------------------
    if (manifestRuns > 0 && variants.includes('A') && variants.includes('B')) {
      const srcA = results.pipelines.filter((p) => p.variant === 'A' && p.round !== 'pr' && p.ok).at(-1)
      const srcB = results.pipelines.filter((p) => p.variant === 'B' && p.round !== 'pr' && p.ok).at(-1)
      if (!srcA || !srcB) {
        results.notes.push('manifest section skipped: no successful main pipeline of A and B to take the arch images from')
      } else {
        const proxy = await startFaultProxy({ target: `http://${senv.BROKKR_REGISTRY}`, seed: 1 })
        owned.closers.push(() => proxy.close())
        // B's merge job as the recipe has it: logged in, a builder set up (not timed here)
        const cfgB = freshConfig()
        const envB = dockerEnvFor(cfgB)
        const nameB = recipeBuilderName()
        owned.builders.add(nameB)
        owned.builderConfig.set(nameB, cfgB)
        await run('docker', ['login', proxy.host, '--username', user, '--password-stdin'], { env: envB, input: password })
        for (const a of setupBuildxArgv(nameB)) await run('docker', a, { env: envB })
        const conditions = {
          lag: (repo, ref, digest) => ({
            hide: [
              { repo, tag: ref, seconds: 3, from: 'now' },
              { repo, tag: digest, seconds: 3, from: 'now' }
            ]
          }),
          faults: (_repo, _ref, _digest, i) => ({ errorRate: 0.1, statuses: [500, 502, 503, 429], retryAfter: 1, resetRate: 0.05, seed: 7000 + i })
        }
        const copyTag = async (repo, from, to) => {
          const src = await registryFetch(`/v2/${repo}/manifests/${from}`)
          const type = (src.headers.get('content-type') ?? '').split(';')[0]
          const body = Buffer.from(await src.arrayBuffer())
          const put = await registryFetch(`/v2/${repo}/manifests/${to}`, { method: 'PUT', headers: { 'Content-Type': type }, body })
          if (put.status !== 201) throw new Error(`copy ${repo}:${from} -> ${to}: HTTP ${put.status}`)
        }
        for (const [cond, rules] of Object.entries(conditions)) {
          say(`manifest step under ${cond}: ${manifestRuns} runs each of A and B, interleaved`)
          for (let i = 0; i < manifestRuns; i++) {
            for (const variant of i % 2 ? ['B', 'A'] : ['A', 'B']) {
              const component = 'agent'
              const repo = repoOf(variant, component)
              const armDigest = (variant === 'A' ? srcA : srcB).digests[`${component}/arm64`]
              const sha = newSha()
              let r
              if (variant === 'A') {
                for (const arch of ['amd64', 'arm64']) await copyTag(repo, `${srcA.sha}-${arch}`, `${sha}-${arch}`)
                proxy.configure(rules(repo, `${sha}-arm64`, armDigest, i))
                r = await manifestA({ component, sha, image: `${proxy.host}/${repo}`, registry: proxy.host })
              } else {
                proxy.configure(rules(repo, sha, armDigest, i))
                const digests = ['amd64', 'arm64'].map((a) => srcB.digests[`${component}/${a}`])
                const c = await run('docker', imagetoolsCreateArgv(`${proxy.host}/${repo}`, [sha], digests), { env: envB })
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
        await run('docker', removeBuilderArgv(nameB), { env: envB })
        owned.builders.delete(nameB)
      }
    }
  } finally {
    await cleanup(dockerEnvFor)
    if (await stopStackIfStarted().catch(() => false)) say('stopped the stack this run started')
  }

  const wallS = (Date.now() - t0) / 1000
  const figures = {
    results,
    engine: { dockerVersion: engine.dockerVersion, buildxVersion: engine.buildxVersion, buildkitVersion: engine.buildkitVersion, registry: engine.registry },
    commit,
    wallS,
    date: new Date().toISOString(),
    reps,
    variants,
    rounds,
    depSteps
  }
  if (v.json) fs.writeFileSync(path.resolve(v.json), JSON.stringify(figures, null, 1))
  const md = render(figures)
  process.stdout.write(`\n${md}\n`)
  if (out) {
    writePipelineBlock(out, md)
    say(`wrote the pipeline block of ${path.relative(process.cwd(), out) || out}`)
  }
  say(`done in ${wallS.toFixed(0)} s`)
  // the rivals' failures are results; only a failure of this action's pipeline fails the run
  return results.pipelines.some((p) => p.variant === 'A' && !p.ok) ? 1 : 0
}

// ---------------------------------------------------------------------------------------------
// Markdown

function render({ results, engine, commit, wallS, date, reps, variants, rounds, depSteps }) {
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
  if (ex('B')) L.push(ex('B'))
  if (ex('C')) L.push(ex('C'))
  L.push(`docker ${removeBuilderArgv('builder-<uuid>').join(' ')}`, `docker logout ${engine.registry}`)
  L.push('# B and C, merge job (per component)')
  L.push('docker login <registry> --username <user> --password-stdin', '(setup-buildx as above)')
  L.push(`docker ${imagetoolsCreateArgv('<image>', ['<sha>', 'main'], ['<amd64 digest>', '<arm64 digest>']).join(' ')}`)
  L.push(`docker ${imagetoolsInspectArgv('<image>', '<sha>').join(' ')}`, '(post: buildx rm, logout)')
  L.push('# A, build job: what the action ran')
  if (results.argv.Acreate) L.push(results.argv.Acreate)
  if (ex('A')) L.push(ex('A'))
  L.push('```', '', '</details>', '')

  // pipelines
  const med = (xs) => median(xs)
  const pipeOf = (variant, round) => P.filter((p) => p.variant === variant && p.round === round)
  const rows = []
  for (const round of rounds) {
    for (const variant of variants) {
      const ps = pipeOf(variant, round)
      if (!ps.length) continue
      const js = J.filter((j) => j.variant === variant && j.round === round)
      const cachedAll = js.reduce((n, j) => n + j.counts.cached, 0)
      const stepsAll = js.reduce((n, j) => n + j.counts.all, 0)
      const perJob = (j) => `${j.component[0]}/${archOf(j.platform)} ${j.counts.cached}/${j.counts.all}`
      const lastRep = Math.max(...js.map((j) => j.rep))
      const ratio = (other) => {
        const o = med(pipeOf(other, round).map((p) => p.totalMs))
        const a = med(ps.map((p) => p.totalMs))
        return Number.isFinite(o) && o > 0 ? `${((a / o) * 100).toFixed(0)} %` : '—'
      }
      rows.push([
        round,
        `**${variant}**`,
        `${ps.filter((p) => p.ok).length}/${ps.length}`,
        secs(med(ps.map((p) => p.buildMs))),
        round === 'pr' ? '—' : secs(med(ps.map((p) => p.manifestMs))),
        `**${secs(med(ps.map((p) => p.totalMs)))}**`,
        variant === 'A' ? '—' : ratio('A').replace(/^(\d+) %$/, (m, n) => `A = ${((100 * 100) / Number(n)).toFixed(0)} % of ${variant}`),
        secs(med(js.filter((j) => archOf(j.platform) === 'amd64').map((j) => j.ms))),
        secs(med(js.filter((j) => archOf(j.platform) === 'arm64').map((j) => j.ms))),
        `${cachedAll}/${stepsAll} (last rep: ${js
          .filter((j) => j.rep === lastRep)
          .map(perJob)
          .join(', ')})`,
        mib(
          med(
            groupSum(
              js,
              (j) => j.rep,
              (j) => j.written.bytes
            )
          )
        )
      ])
    }
  }
  L.push('### Pipelines (medians over repetitions)', '')
  L.push(
    table(
      [
        'round',
        'variant',
        'ok',
        'build jobs (2 at a time)',
        'manifest jobs',
        'pipeline',
        'A vs this',
        'amd64 job',
        'arm64 job',
        'steps CACHED (all jobs; per job)',
        'cache written per pipeline'
      ],
      rows
    ),
    ''
  )
  L.push(
    '"A vs this" = median pipeline of A / median pipeline of the variant. Job times: median over the jobs of that arch and round, from the first command (A: the `node` main step) to the end of its post step. ' +
      '"steps CACHED": Dockerfile steps (FROM excluded) shown as `CACHED` in the build log. "cache written": bytes of the cache entries the jobs of one pipeline committed to the cache service (finalized uploads).',
    ''
  )

  // per job detail
  const jrows = J.filter((j) => j.rep === Math.max(...J.map((x) => x.rep))).map((j) => [
    j.round,
    j.variant,
    `${j.component} ${archOf(j.platform)}`,
    j.ok ? 'ok' : '**failed**',
    secs(j.ms),
    j.setupMs !== undefined ? secs(j.setupMs) : '(in main)',
    `${j.counts.cached}/${j.counts.all}`,
    `${mib(j.written.bytes)} (${j.written.entries})`
  ])
  L.push('<details><summary>every job of the last repetition</summary>', '')
  L.push(table(['round', 'variant', 'job', 'result', 'wall', 'setup-buildx', 'CACHED', 'cache written (entries)'], jrows), '', '</details>', '')

  // lazy fetches of cached layers (issue 16: a stalled fetch must not hide in a median)
  const fetchesOf = (jobs) => jobs.flatMap((j) => (j.fetches ?? []).map((f) => ({ ...f, job: j })))
  const allFetches = fetchesOf(J)
  if (allFetches.length) {
    L.push('### Fetches of cached layers', '')
    const frows = []
    for (const round of rounds) {
      for (const variant of variants) {
        const jobs = J.filter((j) => j.variant === variant && j.round === round)
        const fs_ = fetchesOf(jobs)
        const blobs = pipeOf(variant, round).flatMap((p) => p.blobDownloads ?? [])
        if (!fs_.length && !blobs.length) continue
        const worst = fs_.reduce((a, f) => (a === null || f.seconds > a.seconds ? f : a), null)
        const worstBlob = blobs.reduce((a, b) => (a === null || b.ms > a.ms ? b : a), null)
        frows.push([
          round,
          `**${variant}**`,
          String(fs_.length),
          worst
            ? `${worst.seconds.toFixed(1)} s (${worst.job.component}/${archOf(worst.job.platform)} rep ${worst.job.rep}, ${mib(worst.bytes)}, transfer ${worst.transferSeconds.toFixed(1)} s)`
            : '—',
          String(fs_.filter((f) => f.seconds > 3).length),
          String(blobs.length),
          worstBlob ? `${worstBlob.ms} ms (first byte after ${worstBlob.headMs ?? '?'} ms, ${mib(worstBlob.bytes ?? 0)})` : '—'
        ])
      }
    }
    L.push(
      table(
        [
          'round',
          'variant',
          'cached-layer fetches (all reps)',
          'slowest, as the builder saw it',
          'over 3 s',
          'blob downloads the double served',
          'slowest at the double'
        ],
        frows
      ),
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
        if (!xs.length) continue
        prow.push([
          label[kind],
          archOf(platform),
          `${xs.filter((x) => x.ok).length}/${xs.length}`,
          ...st(xs.filter((x) => x.ok).map((x) => x.ms)).slice(0, 2),
          `${xs[0].cached}/${xs[0].all}`
        ])
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
  if (results.bootstrap.length) {
    const b = results.bootstrap
    L.push('### docker-container builder bootstrap, alone', '')
    L.push(
      table(
        ['step', 'median', 'min – max', 'n'],
        [
          ['`docker buildx create --driver docker-container …`', ...st(b.map((x) => x.createMs))],
          ['`docker buildx inspect --bootstrap`', ...st(b.map((x) => x.bootMs))],
          ['`docker buildx rm`', ...st(b.map((x) => x.rmMs))],
          ['**total per job**', ...st(b.map((x) => x.createMs + x.bootMs + x.rmMs))]
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
    const mrows = []
    for (const cond of ['lag', 'faults']) {
      for (const variant of ['A', 'B']) {
        const ms = results.manifest.filter((m) => m.cond === cond && m.variant === variant)
        if (!ms.length) continue
        const errs = [...new Set(ms.filter((m) => !m.ok).map((m) => m.error))].slice(0, 2).join('; ')
        mrows.push([
          cond === 'lag'
            ? '3 s lag (arm64 tag and digest 404 for 3 s from the start)'
            : 'fault mix of reliability scenario 12 (10 % 500/502/503/429 with Retry-After 1, 5 % resets)',
          variant === 'A' ? '**A** `mode: manifest` (main + post)' : '**B** `docker buildx imagetools create`',
          `**${ms.filter((m) => m.ok).length}/${ms.length}**`,
          secs(median(ms.filter((m) => m.ok).map((m) => m.ms))),
          secs(median(ms.map((m) => m.ms))),
          errs ? errs.replace(/\|/g, '\\|').slice(0, 200) : '—'
        ])
      }
    }
    L.push(table(['condition', 'variant', 'succeeded', 'median time (successful)', 'median time (all)', 'failures said'], mrows), '')
    L.push(
      "Through the fault proxy in front of the stack registry; the index is counted as a success only when the registry then holds it with both platforms. A gets a fresh sha whose arch tags are copies of its last main round; B merges its last main round's digests under a fresh tag. B's builder and login are set up before and not timed; A's time includes its login and logout.",
      ''
    )
  }

  // targets
  const warm = J.filter((j) => j.variant === 'A' && j.round === 'warm')
  const allCachedWarm = warm.length > 0 && warm.every((j) => j.counts.all > 0 && j.counts.cached === j.counts.all)
  const cmp = (other, strict) => {
    const ok = []
    for (const round of rounds) {
      const a = median(pipeOf('A', round).map((p) => p.totalMs))
      const o = median(pipeOf(other, round).map((p) => p.totalMs))
      if (Number.isFinite(a) && Number.isFinite(o)) ok.push({ round, met: strict ? a < o : a <= o, a, o })
    }
    return ok
  }
  const faultyA = results.manifest.filter((m) => m.variant === 'A')
  L.push(...standing({ J, P, rounds, variants, pipeOf }), '')
  L.push('### Targets', '')
  const trows = [
    [
      'every step of every A job CACHED on the warm round',
      allCachedWarm ? '**met**' : '**missed**',
      warm.map((j) => `${j.component}/${archOf(j.platform)} ${j.counts.cached}/${j.counts.all}`).join(', ')
    ]
  ]
  for (const [other, strict] of [
    ['C', false],
    ['B', true]
  ]) {
    if (!variants.includes(other)) continue
    const c = cmp(other, strict)
    trows.push([
      `A's pipeline ${strict ? '<' : '≤'} ${other}'s`,
      c.every((x) => x.met)
        ? '**met**'
        : `**missed** (${c
            .filter((x) => !x.met)
            .map((x) => x.round)
            .join(', ')})`,
      c.map((x) => `${x.round}: ${secs(x.a)} vs ${secs(x.o)}`).join('; ')
    ])
  }
  if (allFetches.length) {
    const worst = allFetches.reduce((a, f) => (a === null || f.seconds > a.seconds ? f : a), null)
    trows.push([
      'slowest fetch of a cached layer (any job, any variant) under 3 s',
      worst.seconds < 3 ? '**met**' : '**missed**',
      `${worst.seconds.toFixed(1)} s: ${worst.job.variant} ${worst.job.round} ${worst.job.component}/${archOf(worst.job.platform)} rep ${worst.job.rep}, \`${worst.step.replace(/\|/g, '\\|').slice(0, 80)}\`; ${allFetches.length} fetches in all`
    ])
  }
  if (faultyA.length) {
    trows.push([
      'A succeeds on every faulty manifest run',
      faultyA.every((m) => m.ok) ? '**met**' : '**missed**',
      `${faultyA.filter((m) => m.ok).length}/${faultyA.length}`
    ])
  }
  L.push(table(['target', 'result', 'figures'], trows), '')
  if (results.notes.length) L.push('<details><summary>cache double counters</summary>', '', ...results.notes.map((n) => `- ${n}`), '', '</details>', '')
  return L.join('\n')
}

/** "Where A stands": per round and rival, the pipeline ratio and what differs, from the figures. */
function standing({ J, P, rounds, variants, pipeOf }) {
  const L = ['### Where A stands', '']
  const jobsOf = (variant, round) => J.filter((j) => j.variant === variant && j.round === round)
  const cachedOf = (variant, round) => {
    const js = jobsOf(variant, round)
    const reps = new Set(js.map((j) => j.rep)).size || 1
    return `${(js.reduce((n, j) => n + j.counts.cached, 0) / reps).toFixed(0)}/${(js.reduce((n, j) => n + j.counts.all, 0) / reps).toFixed(0)}`
  }
  const writtenOf = (variant, round) =>
    median(
      groupSum(
        jobsOf(variant, round),
        (j) => j.rep,
        (j) => j.written.bytes
      )
    )
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
        `build jobs ${secs(median(a.map((p) => p.buildMs)))} vs ${secs(median(o.map((p) => p.buildMs)))}`,
        `steps CACHED ${cachedOf('A', round)} vs ${cachedOf(other, round)}`,
        `cache written ${mib(writtenOf('A', round))} vs ${mib(writtenOf(other, round))}`
      ]
      if (round !== 'pr') parts.push(`manifest jobs ${secs(median(a.map((p) => p.manifestMs)))} vs ${secs(median(o.map((p) => p.manifestMs)))}`)
      const fails = o.filter((p) => !p.ok).length + a.filter((p) => !p.ok).length
      L.push(
        `- **vs ${other}, ${round}**: A ${secs(am)} vs ${secs(om)}, **${verdictWord}** (${((ratio - 1) * 100).toFixed(0)} %, ${secs(am - om)}): ${parts.join('; ')}${fails ? `; failed pipelines: A ${a.filter((p) => !p.ok).length}, ${other} ${o.filter((p) => !p.ok).length}` : ''}.`
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
      `On the pull request A still commits cache entries to the pull request's scope (${prA.reduce((n, j) => n + j.written.entries, 0)} entries, ${mib(prA.reduce((n, j) => n + j.written.bytes, 0))} over the repetitions), as B and C do; a read-only cache on pull requests (issue 10's \`cache-write: auto\`) removes that export.`
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

function st(xs) {
  const v = xs.filter(Number.isFinite)
  return [secs(median(v)), `${secs(Math.min(...v))} – ${secs(Math.max(...v))}`, String(v.length)]
}

/** Sums `val` per group key, returning the list of sums. */
function groupSum(items, key, val) {
  const m = new Map()
  for (const it of items) m.set(key(it), (m.get(key(it)) ?? 0) + val(it))
  return [...m.values()]
}

main().then(
  (code) => {
    // everything this run started was stopped above; a keep-alive socket of a client library
    // must not keep the process waiting
    process.exit(code)
  },
  (e) => {
    process.stderr.write(`bench:pipeline: ${e?.stack ?? e}\n`)
    process.exitCode = 1
  }
)
