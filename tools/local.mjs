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
import { cli, runMain } from './bench/common.mjs'

import { resultExitCode, repoHeadSha } from '../__tests__/e2e/support/harness.mjs'
import { openSession, runStepLocally, printResult } from '../__tests__/e2e/support/session.mjs'

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

async function main() {
  const [text, flag] = [{ type: 'string' }, { type: 'boolean', default: false }]
  const parsed = cli(
    'local',
    USAGE,
    {
      ...Object.fromEntries(['component', 'platform', 'platforms', 'ref', 'sha', 'head-repo', 'node', 'workspace', 'action-dir'].map((k) => [k, text])),
      ...Object.fromEntries(['no-cache-double', 'no-post', 'debug', 'keep-stack', 'json'].map((k) => [k, flag])),
      event: { type: 'string', default: 'push' },
      engine: { type: 'string', default: 'current' },
      input: { type: 'string', multiple: true, default: [] }
    },
    { allowPositionals: true }
  )
  if (typeof parsed === 'number') return parsed
  const { values: v, positionals } = parsed
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

runMain('local', main)
