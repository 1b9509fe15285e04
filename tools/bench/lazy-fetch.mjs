#!/usr/bin/env node
// `npm run bench:lazy-fetch`: the smallest build that shows a lazy fetch from the gha cache, over and
// over. The pipeline benchmark's final stage has `COPY --from=deps` of a 12 MiB layer; when the
// deps stage is CACHED in the gha cache and a later step of that stage has to run (sources
// changed), BuildKit fetches the layer lazily from the cache service. This script warms the deps
// stage once, then repeats: change the sources, fresh docker-container builder, build with
// `--cache-from type=gha`, and reports how long the `COPY --from=deps` step and every blob fetch
// from the cache v2 double took. With --capture it records everything needed to tell a stall's
// cause: a packet capture on the bridge (tshark, filter on the double's port), the double's
// request log (start, head, end, peer of every request), buildkitd's --debug log per build.
//
// Runs on the CURRENT engine of the e2e stack (docker-container driver, BuildKit 0.25).

import { execFileSync, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { randomBytes } from 'node:crypto'

import { cli, count, runMain, sayer, table } from './common.mjs'
import { changeSources, writeContext } from './pipeline-workload.mjs'
import { cachedLayerFetches } from '../../__tests__/support/build-log.mjs'

const USAGE = `usage: npm run bench:lazy-fetch [-- --reps N] [--platform P] [--capture DIR] [--parallel LIST] [--flip-mac-after S]

  --reps N        builds after the warm-up (default 8)
  --platform P    default linux/amd64 (the fetch does not depend on the arch)
  --capture DIR   keep there: the double's request log, a tshark capture of the double's port
                  on the bridge, buildkitd --debug logs and every build log
  --component C   broker or agent (default broker)
  --parallel LIST run these jobs at once in every repetition instead, each with its own builder and
                  scope, e.g. agent/amd64,agent/arm64 (the pipeline runs its matrix two at a time)
  --flip-mac-after S  S seconds into every repetition, give the bridge another MAC address (what
                  an unpinned bridge does by itself when a port with the lowest MAC leaves) and
                  put the pinned one back after the repetition: turns the stall on at will`

const say = sayer('lazy-fetch', 12)
const s = (seconds) => `${seconds.toFixed(1)} s`

async function main() {
  const a = cli('lazy-fetch', USAGE, {
    reps: { type: 'string', default: '8' },
    platform: { type: 'string', default: 'linux/amd64' },
    capture: { type: 'string' },
    component: { type: 'string', default: 'broker' },
    parallel: { type: 'string', default: '' },
    'flip-mac-after': { type: 'string' }
  })
  if (typeof a === 'number') return a
  const v = a.values
  const reps = count(v.reps, 8, 1)
  const capture = v.capture ? path.resolve(v.capture) : null
  if (capture) fs.mkdirSync(capture, { recursive: true })

  const { docker, ensureStack, engineEnv, makeDockerConfig, dockerEnv, stopStackIfStarted } = await import('../../__tests__/e2e/support/stack.mjs')
  const { startCacheV2Double } = await import('../../__tests__/e2e/support/cache-v2-double.mjs')
  const { mintRuntimeToken } = await import('../../__tests__/e2e/support/cache-double.mjs')

  const stack = await ensureStack({ lease: true, quiet: true })
  const engine = engineEnv(stack.env, 'current')
  const bridge = stack.env.BROKKR_CURRENT_BRIDGE ?? 'brokkr1'
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'brokkr-lazy-ctx-'))
  writeContext(ctx)
  const logFile = capture ? path.join(capture, 'double-requests.jsonl') : undefined
  const double = await startCacheV2Double({ host: engine.bridgeIp, token: mintRuntimeToken({ scope: 'refs/heads/main' }), logFile })
  say(`cache v2 double on ${double.origin}, azurite on 127.0.0.1:${double.azurite.port}`)

  const flipAfter = v['flip-mac-after'] === undefined ? null : Number(v['flip-mac-after'])
  const pinnedMac = fs.readFileSync(`/sys/class/net/${bridge}/address`, 'utf8').trim()
  const setBridgeMac = (mac) => execFileSync('ip', ['link', 'set', 'dev', bridge, 'address', mac])

  const cfg = makeDockerConfig({ engine: 'current', buildkitd: true })
  const env = { ...dockerEnv(cfg, { engine: 'current' }) }
  const tag = randomBytes(3).toString('hex')
  const jobs = (v.parallel ? v.parallel.split(',') : [`${v.component}/${v.platform.replace(/^linux\//, '')}`]).map((j) => {
    const [component, arch] = j.trim().split('/')
    return { component, platform: `linux/${arch}`, scope: `lazy-${tag}-${component}-${arch}`, label: `${component}-${arch}` }
  })
  const builders = []

  async function build(job, label, cacheArgs) {
    const name = `lazy-${randomBytes(4).toString('hex')}`
    builders.push(name)
    const flags = capture ? '--debug' : ''
    const create = ['buildx', 'create', '--name', name, '--driver', 'docker-container', ...(flags ? ['--buildkitd-flags', flags] : []), '--bootstrap']
    const c = await docker(create, { env, allowFail: true })
    if (c.code !== 0) throw new Error(`buildx create: ${c.stderr}`)
    const argv = ['buildx', 'build', '--builder', name, '--platform', job.platform, '--file', path.join(ctx, 'docker', `Dockerfile.${job.component}`)]
    argv.push('--build-arg', `BASE_IMAGE=${engine.baseImage}`, '--progress', 'plain', '--output', 'type=cacheonly', ...cacheArgs, ctx)
    const t0 = Date.now()
    const b = await docker(argv, { env, allowFail: true })
    const wallMs = Date.now() - t0
    if (capture) {
      fs.writeFileSync(path.join(capture, `${label}.build.log`), b.stderr)
      const logs = await docker(['logs', '--timestamps', `buildx_buildkit_${name}0`], { env, allowFail: true })
      fs.writeFileSync(path.join(capture, `${label}.buildkitd.log`), logs.stdout + logs.stderr)
    }
    await docker(['buildx', 'rm', '--force', name], { env, allowFail: true })
    builders.splice(builders.indexOf(name), 1)
    if (b.code !== 0) throw new Error(`${label}: build failed:\n${b.stderr.split('\n').slice(-20).join('\n')}`)
    return { wallMs, log: b.stderr }
  }

  const rows = []
  let tshark = null
  try {
    if (capture) {
      // tshark comes from Debian's package of that name (not part of the stack)
      tshark = spawn('tshark', ['-i', bridge, '-f', `tcp port ${double.port} or arp`, '-w', path.join(capture, 'bridge.pcapng'), '-q'], {
        stdio: ['ignore', 'ignore', 'pipe']
      })
      const failed = await new Promise((r) => {
        tshark.once('error', (e) => r(e))
        setTimeout(() => r(null), 1500) // capture started before the first packet
      })
      if (failed) throw new Error(`--capture needs tshark (apt-get install tshark): ${failed.message}`)
      say(`tshark (pid ${tshark.pid}) on ${bridge}, port ${double.port}`)
    }

    say(`warming ${jobs.map((j) => j.scope).join(', ')}`)
    await Promise.all(jobs.map((j) => build(j, `warm-${j.label}`, ['--cache-to', double.ghaCache({ scope: j.scope, mode: 'max' })])))
    for (let i = 1; i <= reps; i++) {
      for (const j of jobs) changeSources(ctx, j.component, i)
      const before = double.requests.length
      let flip = null
      if (flipAfter !== null) {
        flip = setTimeout(() => {
          setBridgeMac(`02:de:ad:00:00:${String(i % 100).padStart(2, '0')}`)
          say(`rep ${i}: bridge ${bridge} MAC flipped`)
        }, flipAfter * 1000)
      }
      const results = await Promise.all(jobs.map((j) => build(j, `rep${i}-${j.label}`, ['--cache-from', double.ghaCache({ scope: j.scope })])))
      clearTimeout(flip)
      if (flipAfter !== null) setBridgeMac(pinnedMac)
      const recs = double.requests.slice(before)
      const downloads = recs.filter((q) => q.kind === 'blob' && q.op === 'download')
      const slowest = downloads.reduce((a, q) => (q.ms > (a?.ms ?? -1) ? q : a), null)
      const slowApi = recs.filter((q) => q.kind === 'api').reduce((a, q) => (q.ms > (a?.ms ?? -1) ? q : a), null)
      const slow = [slowest ? `${slowest.ms} ms` : '-', slowApi ? `${slowApi.ms} ms (${slowApi.method})` : '-']
      results.forEach((r, k) => {
        const copy = cachedLayerFetches(r.log).find((f) => / COPY --from=deps /.test(f.title)) ?? null
        rows.push([i, jobs[k].label, s(r.wallMs / 1000), ...(copy ? [s(copy.seconds), s(copy.transferSeconds)] : ['n/a', '']), downloads.length, ...slow])
        const its = `COPY --from=deps ${copy?.seconds ?? '?'} s (its transfer ${copy?.transferSeconds ?? '?'} s)`
        say(`rep ${i} ${jobs[k].label}: build ${(r.wallMs / 1000).toFixed(1)} s, ${its}`)
      })
      const head = `head after ${slowest?.headMs ?? '-'} ms`
      say(`rep ${i}: ${downloads.length} blob downloads, slowest ${slowest?.ms ?? '-'} ms (${head}), slowest api ${slowApi?.ms ?? '-'} ms`)
    }
  } finally {
    if (flipAfter !== null) setBridgeMac(pinnedMac)
    for (const name of builders) await docker(['buildx', 'rm', '--force', name], { env, allowFail: true }).catch(() => {})
    if (tshark?.pid && tshark.exitCode === null) {
      tshark.kill('SIGINT')
      await new Promise((r) => tshark.once('close', r))
    }
    await double.close()
    fs.rmSync(ctx, { recursive: true, force: true })
    await stopStackIfStarted().catch(() => {})
  }

  const head = ['rep', 'job', 'build', '`COPY --from=deps`', 'its blob transfer', 'blob downloads (rep)', 'slowest download (rep)', 'slowest API call (rep)']
  process.stdout.write(`${table(head, rows)}\n`)
  return 0
}

runMain('lazy-fetch', main)
