import type { GitHubContext } from './github.js'

// One time for everything an arch image says about when it was made: the
// org.opencontainers.image.created label and SOURCE_DATE_EPOCH, which BuildKit writes into the
// image config and history and, with rewrite-timestamp, into the layers. It comes from the commit,
// never from the run, so two runs for one commit can push the same image.

/** Where the time came from, most reproducible first. */
export type SourceDateOrigin = 'build-args' | 'push event' | 'git' | 'run start'

export interface SourceDate {
  /** ISO 8601: the created label */
  created: string
  /** whole seconds since 1970: SOURCE_DATE_EPOCH */
  epoch: number
  origin: SourceDateOrigin
  /** the user's SOURCE_DATE_EPOCH build-arg is passed as it is: we add none */
  fromBuildArgs: boolean
  /** said before the build when the image cannot be the same on a re-run */
  notice?: string
}

export interface SourceDateInputs {
  github: GitHubContext
  /** the commit being built (the sha input) */
  sha: string
  buildArgs: string[]
  /** the commit time the checkout's git has for sha, when it has it */
  gitCommitTime?: string
  startedAt: number
}

const USER_EPOCH = /^SOURCE_DATE_EPOCH=(.*)$/

/**
 * The user's SOURCE_DATE_EPOCH build-arg wins (the last one, as buildx takes it); then the head
 * commit's time from the push event, which the multi-arch index uses too, but only when the event
 * is about the commit being built; then the commit time from the checkout's git (workflow_dispatch,
 * pull requests, a sha input of another commit); else the run's start, with a notice.
 */
export function decideSourceDate(i: SourceDateInputs): SourceDate {
  const userArg = i.buildArgs
    .map((arg) => USER_EPOCH.exec(arg)?.[1])
    .filter((v): v is string => v !== undefined)
    .pop()
  if (userArg !== undefined) {
    // parseSources checked it is whole seconds
    const epoch = Number(userArg)
    return { created: new Date(epoch * 1000).toISOString(), epoch, origin: 'build-args', fromBuildArgs: true }
  }
  const fromEvent = i.github.sha === i.sha ? i.github.commitTime : undefined
  const [time, origin]: [string | undefined, SourceDateOrigin] = fromEvent ? [fromEvent, 'push event'] : [i.gitCommitTime, 'git']
  const parsed = time === undefined ? NaN : Date.parse(time)
  if (!Number.isNaN(parsed)) return { ...fromMillis(parsed), origin, fromBuildArgs: false }
  return {
    ...fromMillis(i.startedAt),
    origin: 'run start',
    fromBuildArgs: false,
    notice: `No commit time for ${i.sha.slice(0, 12)} (${eventSays(i)}, and git in the build context could not tell): the image is dated by this run's start, so a re-run pushes a different image. Check out the commit (actions/checkout) or set SOURCE_DATE_EPOCH in build-args.`
  }
}

function eventSays({ github, sha }: SourceDateInputs): string {
  const event = github.eventName || 'unknown'
  return github.commitTime && github.sha !== sha
    ? `the ${event} event's head commit is ${github.sha.slice(0, 12)}, another commit`
    : `no head commit in the ${event} event`
}

/** Whole seconds: SOURCE_DATE_EPOCH cannot say less, so the label says the same time. */
function fromMillis(ms: number): { created: string; epoch: number } {
  const epoch = Math.floor(ms / 1000)
  return { created: new Date(epoch * 1000).toISOString(), epoch }
}
