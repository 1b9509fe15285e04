import * as core from '@actions/core'

/** What the main step hands to the post step (the runner passes it back as STATE_<name>). */
export interface PostState {
  /** name of a builder this run created, to remove unless keep-builder */
  builderCreated?: string
  keepBuilder?: boolean
  /** a fresh builder made for a build without the cache after a cache read stalled: always removed */
  coldBuilder?: string
  /** registries this run logged in to, to log out of */
  logins?: string[]
  /** cache: local, set only after a successful build */
  localCache?: { dir: string; exportDir: string; key: string }
}

const KEY = 'brokkr'

/** Saves the whole state again: each save replaces the last, so the post step sees the latest. */
export function saveState(state: PostState): void {
  core.saveState(KEY, JSON.stringify(state))
}

export function loadState(): PostState {
  const text = core.getState(KEY)
  if (!text) return {}
  try {
    return JSON.parse(text) as PostState
  } catch {
    return {}
  }
}
