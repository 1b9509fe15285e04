import type { GitHubContext } from './github.js'
import { autoTags } from './tags.js'

// The org.opencontainers.image.* facts about an image, from the repository and the run: one set,
// written as labels on each arch image and as annotations on the multi-arch index (which is what
// GHCR reads for a multi-arch package's description, source link and license).

/** The version: the release for v* tags, else the branch, else the sha. */
export function versionLabel(github: GitHubContext, sha: string): string {
  const auto = autoTags(github)
  return auto[0] ?? sha
}

export function imageMetadata(github: GitHubContext, image: string, sha: string, created: string): Record<string, string> {
  const metadata: Record<string, string> = {}
  if (github.repository) metadata['org.opencontainers.image.source'] = `${github.serverUrl}/${github.repository}`
  metadata['org.opencontainers.image.revision'] = sha
  if (created) metadata['org.opencontainers.image.created'] = created
  metadata['org.opencontainers.image.title'] = image.split('/').pop() ?? image
  metadata['org.opencontainers.image.version'] = versionLabel(github, sha)
  if (github.description) metadata['org.opencontainers.image.description'] = github.description
  if (github.license) metadata['org.opencontainers.image.licenses'] = github.license
  return metadata
}

/** `key=value` lines (labels, annotations) over a base set: later lines win. */
export function withOverrides(base: Record<string, string>, lines: string[]): Record<string, string> {
  const merged = { ...base }
  for (const line of lines) {
    const eq = line.indexOf('=')
    merged[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return merged
}
