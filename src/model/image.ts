import { archTag, type Platform } from './platform.js'

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/

/** Checks an image name (no tag, no digest): registry host, then lower-case path components. */
export function imageNameProblem(image: string): string | undefined {
  if (/[@\s]/.test(image)) return `'${image}' must be a plain image name without digest or spaces`
  const parts = image.split('/')
  const last = parts[parts.length - 1]
  if (last.includes(':')) return `'${image}' must not carry a tag; the action tags <sha>-<arch> and <sha> itself`
  const path = parts.length > 1 && looksLikeHost(parts[0]) ? parts.slice(1) : parts
  if (path.length === 0 || !path.every((c) => PATH_COMPONENT.test(c))) {
    return `'${image}' is not a valid image name (lower-case letters, digits and . _ - between slashes)`
  }
  return undefined
}

function looksLikeHost(part: string): boolean {
  return part.includes('.') || part.includes(':') || part === 'localhost'
}

/** The registry an image lives in: its first path part when that is a host, else Docker Hub. */
export function registryOf(image: string): string {
  const first = image.split('/')[0]
  return image.includes('/') && looksLikeHost(first) ? first : 'docker.io'
}

/** The per-arch tag, `<sha>-<arch>`: what build mode pushes and manifest mode waits for. */
export function archImageTag(sha: string, platform: Platform): string {
  return `${sha}-${archTag(platform)}`
}

export function archRef(image: string, sha: string, platform: Platform): string {
  return `${image}:${archImageTag(sha, platform)}`
}
