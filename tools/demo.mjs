#!/usr/bin/env node
// `npm run demo`: the whole Brokkr flow locally, as the workflow runs it.
//
//  1. bring the e2e stack up (or reuse it) and start the cache double;
//  2. build and push broker and agent for linux/amd64 and linux/arm64
//     (4 build jobs, push on refs/heads/main, one sha);
//  3. assemble and push the index of each component (2 manifest jobs);
//  4. read each index back from the registry and check it holds both platforms.
//
// Every job's summary is printed. Exits non-zero if a step fails or an index
// lacks a platform. Stops the stack at the end only if the demo started it.
//
// Options: --sha SHA, --node PATH, --keep-stack, --input NAME=VALUE (for every job),
// --action-dir DIR (run another action dir, for testing the demo itself), -h.

import * as path from 'node:path'
import { cli, runMain } from './bench/common.mjs'

import { resultExitCode, repoHeadSha } from '../__tests__/e2e/support/harness.mjs'
import { openSession, runStepLocally, printResult } from '../__tests__/e2e/support/session.mjs'
import { docker, dockerEnv, makeDockerConfig, registryManifest } from '../__tests__/e2e/support/stack.mjs'

const COMPONENTS = ['broker', 'agent']
const PLATFORMS = ['linux/amd64', 'linux/arm64']

const USAGE = `usage: npm run demo [-- --sha SHA] [--node PATH] [--keep-stack] [--input NAME=VALUE ...] [--action-dir DIR]

Builds broker and agent for ${PLATFORMS.join(' and ')} with the bundled action,
pushes the two multi-arch indexes to the local stack registry and verifies them.`

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'])

/** Reads an index back from the stack registry (`image`: the action's `image` output, `<registry>/<repo>`). */
async function readIndex(image, registry, tag) {
  const repo = image.startsWith(`${registry}/`) ? image.slice(registry.length + 1) : image
  const m = await registryManifest(repo, tag)
  const platforms = []
  for (const d of m.manifest?.manifests ?? []) {
    const p = d.platform
    if (!p || p.os === 'unknown' || p.architecture === 'unknown') continue // attestation manifests
    platforms.push([p.os, p.architecture, p.variant].filter(Boolean).join('/'))
  }
  return { ref: `${image}:${tag}`, digest: m.digest, mediaType: m.mediaType, platforms, status: m.status }
}

async function main() {
  const a = cli('demo', USAGE, {
    sha: { type: 'string' },
    node: { type: 'string' },
    'action-dir': { type: 'string' },
    input: { type: 'string', multiple: true, default: [] },
    'keep-stack': { type: 'boolean', default: false }
  })
  if (typeof a === 'number') return a
  const v = a.values
  const extraInputs = {}
  for (const kv of v.input) {
    const eq = kv.indexOf('=')
    if (eq <= 0) {
      process.stderr.write(`demo: --input wants NAME=VALUE, got '${kv}'\n`)
      return 2
    }
    extraInputs[kv.slice(0, eq)] = kv.slice(eq + 1)
  }

  const say = (m) => process.stdout.write(`${m}\n`)
  const sha = v.sha ?? repoHeadSha()
  const actionDir = v['action-dir'] && path.resolve(v['action-dir'])
  const ref = 'refs/heads/main'
  say(`demo: Brokkr flow for ${COMPONENTS.join(', ')} on ${PLATFORMS.join(', ')} — push ${ref} @ ${sha}`)
  const session = await openSession({ ref, keepStack: v['keep-stack'], log: (m) => say(m.replace(/^local:/, 'demo:')) })
  const registry = session.engine.localRegistry
  const failures = []
  /** @type {Map<string, {image: string, digest: string, tags: string}>} */
  const manifests = new Map()
  let verified = 0
  let interrupted = false
  session.abort.signal.addEventListener('abort', () => {
    interrupted = true
  })

  try {
    const jobs = [
      ...COMPONENTS.flatMap((component) => PLATFORMS.map((platform) => ({ command: 'build', component, platform }))),
      ...COMPONENTS.map((component) => ({ command: 'manifest', component, platforms: PLATFORMS.join(',') }))
    ]
    for (const [i, job] of jobs.entries()) {
      if (interrupted) break
      const title = `${job.command} ${job.component}${job.platform ? ` ${job.platform}` : ''}`
      say(`\n━━ [${i + 1}/${jobs.length}] ${title}`)
      const r = await runStepLocally(session, { ...job, sha, event: 'push', ref, node: v.node, inputs: extraInputs, actionDir })
      printResult(r, { title })
      const code = resultExitCode(r)
      if (code !== 0) {
        failures.push(`${title}: exit ${code}`)
        continue
      }
      if (job.command === 'manifest') manifests.set(job.component, { image: r.outputs.image, digest: r.outputs.digest, tags: r.outputs.tags })
    }

    if (!interrupted) {
      say('\n━━ indexes as read back from the registry')
      const inspectEnv = dockerEnv(makeDockerConfig({ auth: true, engine: session.engine.engine }), { engine: session.engine.engine })
      for (const component of COMPONENTS) {
        const m = manifests.get(component)
        const missing = !m ? 'no index (its manifest job failed)' : !m.image ? "the manifest job gave no 'image' output" : ''
        if (missing) {
          failures.push(`${component}: ${missing}`)
          continue
        }
        const idx = await readIndex(m.image, registry, sha)
        say(`${idx.ref}`)
        say(`  HTTP ${idx.status}  ${idx.mediaType ?? '?'}`)
        say(`  digest    ${idx.digest ?? '?'}${m.digest && idx.digest && m.digest !== idx.digest ? `  (the action reported ${m.digest}!)` : ''}`)
        say(`  platforms ${idx.platforms.join(', ') || '(none)'}`)
        if (m.tags) say(`  tags      ${m.tags}`)
        const problems = []
        if (idx.status !== 200) problems.push(`HTTP ${idx.status}`)
        if (!INDEX_TYPES.has(idx.mediaType ?? '')) problems.push(`not an index (${idx.mediaType})`)
        for (const p of PLATFORMS) if (!idx.platforms.includes(p)) problems.push(`lacks ${p}`)
        if (m.digest && idx.digest && m.digest !== idx.digest) problems.push(`digest ${idx.digest} differs from the action's output ${m.digest}`)
        if (problems.length) failures.push(`${component}: ${problems.join('; ')}`)
        else verified++
        const it = await docker(['buildx', 'imagetools', 'inspect', idx.ref], { env: inspectEnv, allowFail: true })
        if (it.code === 0) say(it.stdout.trimEnd().replace(/^/gm, '  │ '))
        else say(`  (docker buildx imagetools inspect failed: ${it.stderr.trim().split('\n').pop()})`)
      }
    }
  } finally {
    await session.close()
  }

  if (interrupted) failures.push('interrupted')
  if (failures.length) {
    say(`\ndemo: FAILED — ${failures.length} problem(s):`)
    for (const f of failures) say(`  - ${f}`)
    say(`demo: ${verified} of ${COMPONENTS.length} indexes verified`)
    return 1
  }
  say(`\ndemo: ${verified} indexes verified`)
  return 0
}

runMain('demo', main)
