#!/usr/bin/env node
// The project's local runner: runs the bundled action (dist/) through the
// runner harness against the e2e stack, with the GitHub Actions cache double
// running in-process.
//
//   npm run local -- build    --component agent --platform linux/arm64 [options]
//   npm run local -- manifest --component agent [--platforms linux/amd64,linux/arm64] [options]
//
// Run `npm run local -- --help` for the options. Exit code: main's, or post's
// when main passed and post failed.

import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { runAction, resultExitCode, repoHeadSha, REPO_ROOT } from './harness.mjs'
import { engineEnv, ensureStack, makeDockerConfig, stopStackIfStarted } from './stack.mjs'

const USAGE = `usage: npm run local -- <build|manifest> --component NAME [options]

Runs dist/index.js then dist/post/index.js exactly as the GitHub runner would,
against the local e2e stack (engine, buildx, QEMU, registry), with a GitHub
Actions cache double. Rebuild dist/ first with \`npm run package\`.

commands
  build                  build and push <image>:<sha>-<arch> for one platform
  manifest               verify the arch images and push the index <image>:<sha>

options
  --component NAME       component, e.g. broker or agent (required)
  --platform P           build: target platform (default linux/amd64)
  --platforms LIST       manifest: platforms the index must hold (default: action.yml's)
  --event E              push (default) or pull_request
  --ref REF              default refs/heads/main (push) / refs/pull/7/merge (pull_request)
  --sha SHA              commit (default: git rev-parse HEAD of this repo)
  --head-repo OWNER/REPO pull_request: head repository (a fork when it differs)
  --input NAME=VALUE     any action input, repeatable (wins over the defaults below)
  --node PATH            node binary to run the action with (default: this node)
  --workspace DIR        GITHUB_WORKSPACE / working dir (default: the repo root)
  --action-dir DIR       run another action (its action.yml and bundles; default: this repo)
  --no-cache-double      do not start the cache double (no ACTIONS_CACHE_URL)
  --no-post              skip the post step
  --debug                ACTIONS_STEP_DEBUG=true (shows ::debug:: lines)
  --keep-stack           leave the stack running if this run started it
  --engine GEN           current (Docker 28, buildx 0.29, cache service v2; default) or previous
                         (Docker 26, buildx 0.13, cache service v1)
  --json                 print the full result as JSON at the end
  -h, --help             this text

inputs set by default
  mode, component, platform|platforms, registry=<stack registry>,
  username/password=<stack credentials>, driver=docker,
  build-args=BASE_IMAGE=<BROKKR_BASE_IMAGE> (when the stack provides a base image)`

/**
 * @typedef {object} LocalSession
 * @property {import('./stack.mjs').Stack} stack
 * @property {import('./stack.mjs').EngineEnv} engine  the engine generation the steps run on
 * @property {{url: string, token: string, version: 1|2, close: () => Promise<void>}|null} cache
 * @property {string} dockerConfig
 * @property {AbortController} abort
 * @property {() => Promise<void>} close  closes the cache double and stops the stack if this process started it
 */

/**
 * Brings the stack up, starts the cache double and a DOCKER_CONFIG for the
 * action, and arranges for Ctrl-C to kill a running step and clean up.
 * @param {object} [o]
 * @param {boolean} [o.cacheDouble=true]
 * @param {string} [o.ref='refs/heads/main']   scope of the cache runtime token
 * @param {boolean} [o.keepStack=false]
 * @param {'previous'|'current'} [o.engine='current']  engine generation; the cache double speaks
 *   what that generation's runners get: v1 for previous, v2 (Twirp + Azurite) for current
 * @param {(msg: string) => void} [o.log]
 * @returns {Promise<LocalSession>}
 */
export async function openSession({
  cacheDouble = true,
  ref = 'refs/heads/main',
  keepStack = false,
  engine = 'current',
  log = (m) => process.stderr.write(`${m}\n`)
} = {}) {
  const t0 = Date.now()
  log('local: ensuring the e2e stack (stack.sh up)…')
  const stack = await ensureStack({ lease: true })
  log(
    `local: stack ${stack.started ? 'started' : 'already running, reused'} in ${((Date.now() - t0) / 1000).toFixed(1)}s: registry ${stack.env.BROKKR_REGISTRY}, DOCKER_HOST ${stack.env.DOCKER_HOST}`
  )
  const generation = engineEnv(stack.env, engine)
  let cache = null
  if (cacheDouble) {
    const { startCacheDouble, mintRuntimeToken } = await import('./cache-double.mjs')
    const pr = /^refs\/pull\//.test(ref)
    const token = pr
      ? mintRuntimeToken({
          scopes: [
            { Scope: ref, Permission: 3 },
            { Scope: 'refs/heads/main', Permission: 1 }
          ]
        })
      : mintRuntimeToken({ scope: ref })
    if (engine === 'current') {
      const { startCacheV2Double } = await import('./cache-v2-double.mjs')
      cache = Object.assign(await startCacheV2Double({ token }), { version: 2 })
    } else {
      cache = Object.assign(await startCacheDouble({ token }), { version: 1 })
    }
    log(`local: cache double (v${cache.version}) at ${cache.url}`)
  }
  const dockerConfig = makeDockerConfig({ engine })
  const abort = new AbortController()
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    if (cache) await cache.close().catch(() => {})
    if (keepStack) {
      if (stack.started) log('local: --keep-stack: the stack stays up (stop it with `bash __tests__/e2e/stack/stack.sh down`)')
      return
    }
    if (await stopStackIfStarted()) log('local: stopped the stack this run started')
  }
  let interrupted = 0
  const onSignal = (sig) => {
    interrupted++
    if (interrupted > 1) process.exit(130)
    log(`local: ${sig}: stopping the running step and cleaning up…`)
    abort.abort()
    close().finally(() => process.exit(130))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return { stack, engine: generation, cache, dockerConfig, abort, close }
}

/**
 * Inputs a local run passes by default for a component.
 * @param {LocalSession} session
 * @param {{command: 'build'|'manifest', component: string, platform?: string, platforms?: string}} o
 */
export function defaultInputs(session, { command, component, platform, platforms }) {
  const env = session.stack.env
  const inputs = {
    mode: command,
    component,
    registry: session.engine.localRegistry,
    username: env.BROKKR_REGISTRY_USER,
    password: env.BROKKR_REGISTRY_PASSWORD,
    driver: 'docker'
  }
  if (command === 'build') {
    inputs.platform = platform ?? 'linux/amd64'
    if (session.engine.baseImage) inputs['build-args'] = `BASE_IMAGE=${session.engine.baseImage}`
  } else if (platforms) {
    inputs.platforms = platforms
  }
  return inputs
}

/**
 * Runs one step of the action in a session, printing the masked log live.
 * @param {LocalSession} session
 * @param {object} o
 * @param {'build'|'manifest'} o.command
 * @param {string} o.component
 * @param {string} [o.platform]
 * @param {string} [o.platforms]
 * @param {Record<string,string>} [o.inputs]  overrides
 * @param {string} o.sha
 * @param {'push'|'pull_request'} [o.event]
 * @param {string} [o.ref]
 * @param {string} [o.headRepo]
 * @param {string} [o.node]
 * @param {string} [o.cwd]
 * @param {boolean} [o.post]
 * @param {boolean} [o.debug]
 * @param {string} [o.label]   prefix of the printed lines
 * @param {string} [o.actionDir]  another action directory (default: this repo)
 * @returns {Promise<import('./harness.mjs').ActionResult>}
 */
export async function runStepLocally(session, o) {
  const inputs = { ...defaultInputs(session, o), ...(o.inputs ?? {}) }
  const label = o.label ?? `${o.command}:${o.component}${o.command === 'build' ? `:${inputs.platform}` : ''}`
  return runAction({
    inputs,
    event: o.event ?? 'push',
    ref: o.ref,
    sha: o.sha,
    headRepo: o.headRepo,
    node: o.node,
    cwd: o.cwd ?? REPO_ROOT,
    actionDir: o.actionDir,
    post: o.post !== false,
    dockerConfig: session.dockerConfig,
    cache: session.cache ? { url: session.cache.url, token: session.cache.token, version: session.cache.version } : null,
    engine: session.engine.engine,
    stack: session.stack,
    secrets: [session.stack.env.BROKKR_REGISTRY_PASSWORD].filter(Boolean),
    env: o.debug ? { ACTIONS_STEP_DEBUG: 'true' } : {},
    signal: session.abort.signal,
    onLine: (line, { step }) => process.stdout.write(`[${label} ${step}] ${line}\n`)
  })
}

/** Prints outputs, annotations, the summary and the step results of a run. */
export function printResult(r, { title = 'result' } = {}) {
  const w = (s = '') => process.stdout.write(`${r.mask(s)}\n`)
  w()
  w(
    `── ${title}: main exit ${r.main.code}${r.main.timedOut ? ' (timed out)' : ''} in ${(r.main.durationMs / 1000).toFixed(1)}s` +
      (r.post ? `, post exit ${r.post.code}${r.post.timedOut ? ' (timed out)' : ''} in ${(r.post.durationMs / 1000).toFixed(1)}s` : ', no post step')
  )
  w('outputs:')
  const keys = Object.keys(r.outputs)
  if (keys.length === 0) w('  (none)')
  for (const k of keys) {
    const v = r.outputs[k]
    w(
      v.includes('\n')
        ? `  ${k}:\n${v
            .split('\n')
            .map((l) => `    ${l}`)
            .join('\n')}`
        : `  ${k} = ${v}`
    )
  }
  if (r.annotations.length) {
    w('annotations:')
    for (const a of r.annotations) w(`  [${a.step}] ${a.level}: ${a.message}`)
  }
  w('job summary:')
  w(
    r.summary.trim()
      ? r.summary
          .trimEnd()
          .split('\n')
          .map((l) => `  ${l}`)
          .join('\n')
      : '  (empty)'
  )
}

async function main(argv) {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        component: { type: 'string' },
        platform: { type: 'string' },
        platforms: { type: 'string' },
        event: { type: 'string', default: 'push' },
        ref: { type: 'string' },
        sha: { type: 'string' },
        'head-repo': { type: 'string' },
        input: { type: 'string', multiple: true, default: [] },
        node: { type: 'string' },
        workspace: { type: 'string' },
        'action-dir': { type: 'string' },
        'no-cache-double': { type: 'boolean', default: false },
        'no-post': { type: 'boolean', default: false },
        debug: { type: 'boolean', default: false },
        'keep-stack': { type: 'boolean', default: false },
        engine: { type: 'string', default: 'current' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false }
      }
    })
  } catch (e) {
    process.stderr.write(`local: ${e.message}\n(see --help)\n`)
    return 2
  }
  const { values: v, positionals } = parsed
  if (v.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const command = positionals[0]
  const usageError = (msg) => {
    process.stderr.write(`local: ${msg}\n(see --help)\n`)
    return 2
  }
  if (command !== 'build' && command !== 'manifest') return usageError(command ? `unknown command '${command}'` : 'missing command (build or manifest)')
  if (positionals.length > 1) return usageError(`unexpected argument '${positionals[1]}'`)
  if (!v.component) return usageError('--component is required')
  if (v.engine !== 'current' && v.engine !== 'previous') return usageError(`--engine must be current or previous, not '${v.engine}'`)
  if (v.event !== 'push' && v.event !== 'pull_request') return usageError(`--event must be push or pull_request, not '${v.event}'`)
  if (command === 'manifest' && v.platform) return usageError('--platform is for build; use --platforms for manifest')
  if (command === 'build' && v.platforms) return usageError('--platforms is for manifest; use --platform for build')
  const inputs = {}
  for (const kv of v.input) {
    const eq = kv.indexOf('=')
    if (eq <= 0) return usageError(`--input wants NAME=VALUE, got '${kv}'`)
    inputs[kv.slice(0, eq)] = kv.slice(eq + 1)
  }

  const ref = v.ref ?? (v.event === 'pull_request' ? 'refs/pull/7/merge' : 'refs/heads/main')
  const sha = v.sha ?? repoHeadSha()
  const session = await openSession({ cacheDouble: !v['no-cache-double'], ref, keepStack: v['keep-stack'], engine: v.engine })
  let code = 1
  try {
    process.stderr.write(`local: ${command} ${v.component}${command === 'build' ? ` ${v.platform ?? 'linux/amd64'}` : ''} on ${v.event} ${ref} @ ${sha}\n`)
    const r = await runStepLocally(session, {
      command,
      component: v.component,
      platform: v.platform,
      platforms: v.platforms,
      inputs,
      sha,
      event: v.event,
      ref,
      headRepo: v['head-repo'],
      node: v.node,
      cwd: v.workspace ? path.resolve(v.workspace) : undefined,
      actionDir: v['action-dir'] ? path.resolve(v['action-dir']) : undefined,
      post: !v['no-post'],
      debug: v.debug
    })
    printResult(r, { title: `${command} ${v.component}` })
    if (v.json) {
      const { main: m, post: p, ...rest } = r
      const strip = (s) => s && { code: s.code, signal: s.signal, timedOut: s.timedOut, outcome: s.outcome, durationMs: s.durationMs, log: s.log }
      process.stdout.write(`${r.mask(JSON.stringify({ ...rest, main: strip(m), post: strip(p) }, null, 2))}\n`)
    }
    code = resultExitCode(r)
  } finally {
    await session.close()
  }
  return code
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (e) => {
      process.stderr.write(`local: ${e?.stack ?? e}\n`)
      process.exitCode = 1
    }
  )
}
