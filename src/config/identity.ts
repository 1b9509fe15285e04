import { InputError } from '../model/errors.js'
import { imageNameProblem, registryOf } from '../model/image.js'
import { archTag, formatPlatform, parsePlatform, type Platform } from '../model/platform.js'
import { isValidTag } from '../model/tags.js'
import type { Mode } from './types.js'
import { bool, items, type InputEnvironment, type InputReader } from './read.js'

// What the image is: component, platforms, name, commit and tags.

const COMPONENT = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/
const REGISTRY_HOST = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?$/
const SHA = /^[0-9a-f]{7,64}$/

export function parseComponent(read: InputReader): string {
  const component = read('component')
  if (component === '') throw new InputError('component', 'is required; set it to the component to build, e.g. broker or agent')
  if (!COMPONENT.test(component)) {
    throw new InputError('component', `'${component}' must be lower-case letters and digits, optionally joined by . _ or -`)
  }
  return component
}

function platformInput(name: string, text: string): Platform {
  const parsed = parsePlatform(text)
  if (typeof parsed === 'string') throw new InputError(name, parsed)
  return parsed
}

/** Build mode's one `platform`. */
export function parseBuildPlatform(read: InputReader): Platform {
  const text = read('platform')
  if (text === '') throw new InputError('platform', 'is required in build mode; set one platform such as linux/amd64 or linux/arm64')
  if (text.includes(',') || text.includes('\n')) {
    throw new InputError('platform', `'${text}' names several platforms; build mode builds one (run a matrix, then mode: manifest)`)
  }
  return platformInput('platform', text)
}

/** The index's `platforms`: required in manifest mode, checked in either mode, as always. */
export function parsePlatformList(read: InputReader, mode: Mode): Platform[] {
  const platformTexts = items(read('platforms'))
  if (mode === 'manifest' && platformTexts.length === 0) {
    throw new InputError('platforms', 'is empty; list every platform the index must hold, e.g. linux/amd64,linux/arm64')
  }
  const platforms = platformTexts.map((t) => platformInput('platforms', t))
  const seen = new Set<string>()
  for (const p of platforms) {
    if (seen.has(archTag(p))) throw new InputError('platforms', `${formatPlatform(p)} is listed twice`)
    seen.add(archTag(p))
  }
  return platforms
}

/** The image name: `image`, or `<registry>/<owner>/<image-prefix><component>`. */
export function parseImage(read: InputReader, component: string, env: InputEnvironment): { image: string; registry: string } {
  const registryInput = read('registry').toLowerCase()
  if (!REGISTRY_HOST.test(registryInput)) {
    throw new InputError('registry', `'${read('registry')}' is not a registry host such as ghcr.io or 127.0.0.1:5000`)
  }
  const prefix = read('image-prefix')
  let image = read('image')
  if (image === '') {
    const owner = env.github.owner.toLowerCase()
    if (owner === '') throw new InputError('image', 'is empty and the repository owner is unknown; set image to the full image name')
    image = `${registryInput}/${owner}/${prefix}${component}`
    const problem = imageNameProblem(image)
    if (problem) throw new InputError('image-prefix', `${problem}; fix image-prefix or set image`)
  } else {
    const problem = imageNameProblem(image)
    if (problem) throw new InputError('image', problem)
  }
  return { image, registry: registryOf(image) }
}

export function parseSha(read: InputReader): string {
  const sha = read('sha').toLowerCase()
  if (sha === '') throw new InputError('sha', 'is empty; run inside a GitHub workflow or pass the commit sha')
  if (!SHA.test(sha)) throw new InputError('sha', `'${read('sha')}' is not a commit sha (7 to 64 hex digits)`)
  return sha
}

export function parseTags(read: InputReader): { tags: string[]; autoTags: boolean } {
  const tags = [...new Set(items(read('tags')))]
  for (const tag of tags) {
    if (!isValidTag(tag)) throw new InputError('tags', `'${tag}' is not a valid tag (letters, digits, _ . -; at most 128; not starting with . or -)`)
  }
  return { tags, autoTags: bool(read, 'auto-tags') }
}
