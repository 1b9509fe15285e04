// Local sessions of the bundled action against the e2e stack: bring the stack
// up, start the GitHub Actions cache double in-process, run one step of dist/
// through the runner harness and print its result. Used by the e2e suites and
// by the CLIs in tools/ (local.mjs, demo.mjs).

import { REPO_ROOT } from '../../support/paths.mjs'
import { runAction } from './harness.mjs'
import { engineEnv, ensureStack, makeDockerConfig, stopStackIfStarted } from './stack.mjs'

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
