import type { GitHubContext } from '../../src/model/github.js'
import { parseConfig, type BuildConfig } from '../../src/config/parse.js'
import { readEnvironment, type RunnerEnvironment } from '../../src/config/environment.js'
import { defaultInputs } from '../fixtures/inputs.js'

export const pushToMain: GitHubContext = {
  eventName: 'push',
  ref: 'refs/heads/main',
  sha: '0123456789abcdef0123456789abcdef01234567',
  repository: 'colliery-io/brokkr',
  owner: 'colliery-io',
  serverUrl: 'https://github.com',
  fromFork: false
}

/** A validated build config from action.yml defaults plus overrides, as main would build it. */
export function configWith(overrides: Record<string, string> = {}, github: GitHubContext = pushToMain): BuildConfig {
  const inputs: Record<string, string> = { ...defaultInputs(), sha: 'abc1234', ...overrides }
  const config = parseConfig((name) => (inputs[name] ?? '').trim(), { github, exists: () => true })
  if (config.mode !== 'build') throw new Error('configWith builds build-mode configs')
  return config
}

/** The runner environment main would read from these variables (and nothing else). */
export function envWith(vars: Record<string, string> = {}): RunnerEnvironment {
  return readEnvironment({ RUNNER_TEMP: '/runner/temp', DOCKER_CONFIG: '/nonexistent/docker', ...vars }, '/workspace')
}
