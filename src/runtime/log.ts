import * as core from '@actions/core'

/**
 * Runs `fn` inside a collapsed log group. The group is closed even when `fn` throws, so the
 * job's final error lands outside it, where the reader sees it.
 */
export async function group<T>(title: string, fn: () => Promise<T> | T): Promise<T> {
  core.startGroup(title)
  try {
    return await fn()
  } finally {
    core.endGroup()
  }
}
