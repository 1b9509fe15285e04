import { isPullRequestEvent, type GitHubContext } from './github.js'

/** `auto` pushes on push-like events; `true`/`false` force it (pull requests and forks never push). */
export type PushSetting = 'auto' | 'true' | 'false'

export interface PushDecision {
  push: boolean
  reason: string
  /** set when the user asked for something we refuse */
  warning?: string
}

/** Events on which `push: auto` publishes: code that landed, or a person asked for it. */
const PUSH_EVENTS = new Set(['push', 'release', 'workflow_dispatch', 'schedule', 'repository_dispatch', 'merge_group'])

export function decidePush(setting: PushSetting, github: GitHubContext): PushDecision {
  if (setting === 'false') return { push: false, reason: 'push: false' }
  if (isPullRequestEvent(github.eventName) || github.fromFork) {
    const why = github.fromFork ? 'runs from a fork' : `${github.eventName} event`
    return {
      push: false,
      reason: `${why}: pull requests and forks never log in or push`,
      warning: setting === 'true' ? `push: true is ignored: ${why}; pull requests and forks never log in or push` : undefined
    }
  }
  if (setting === 'true') return { push: true, reason: 'push: true' }
  return PUSH_EVENTS.has(github.eventName)
    ? { push: true, reason: `${github.eventName} event` }
    : { push: false, reason: `push: auto does not publish on ${github.eventName || 'an unknown'} event` }
}
