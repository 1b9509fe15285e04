import type { GitHubContext } from '../../src/github-context.js'
import { parseConfig, type Config } from '../../src/inputs.js'
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

/** A validated config from action.yml defaults plus overrides, as main would build it. */
export function configWith(overrides: Record<string, string> = {}, github: GitHubContext = pushToMain): Config {
  const inputs: Record<string, string> = { ...defaultInputs(), sha: 'abc1234', ...overrides }
  return parseConfig((name) => (inputs[name] ?? '').trim(), { github, exists: () => true })
}
