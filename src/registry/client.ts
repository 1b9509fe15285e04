import { createHash } from 'node:crypto'
import type { Credentials } from '../config/types.js'
import { isDigest, MANIFEST_ACCEPT, type Manifest } from '../model/oci.js'
import { classifyStatus, ClassifiedError, DigestMismatchError, parseRegistryErrors, parseRetryAfter, RegistryError } from '../model/errors.js'
import { NO_RETRY, READ_AFTER_WRITE, type RetryPolicy } from './retry.js'

/** Registries on the loopback interface speak plain http, as docker itself assumes. */
export function registryBaseUrl(host: string): string {
  const name = host.replace(/:\d+$/, '')
  const loopback = name === 'localhost' || /^127\./.test(name) || name === '[::1]'
  const apiHost = host === 'docker.io' ? 'registry-1.docker.io' : host
  return `${loopback ? 'http' : 'https'}://${apiHost}`
}

/** The repository path the API wants for `host/path` (Docker Hub's bare names live under library/). */
export function repositoryOf(image: string, registry: string): string {
  if (image === registry) return ''
  let repository = image.startsWith(`${registry}/`) ? image.slice(registry.length + 1) : image
  if (registry === 'docker.io' && !repository.includes('/')) repository = `library/${repository}`
  return repository
}

interface Challenge {
  scheme: string
  params: Record<string, string>
}

export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined
  const m = /^(\w+)\s*(.*)$/.exec(header.trim())
  if (!m) return undefined
  const params: Record<string, string> = {}
  for (const [, key, value] of m[2].matchAll(/(\w+)="([^"]*)"/g)) params[key] = value
  return { scheme: m[1].toLowerCase(), params }
}

const REQUEST_TIMEOUT_MS = 30_000
const UPLOAD_TIMEOUT_MS = 15 * 60_000

export type Access = 'pull' | 'push'

interface RequestOptions {
  method?: string
  headers?: Record<string, string>
  /** made anew for every send, so a retried or re-authenticated request has a fresh body */
  body?: () => BodyInit
  timeoutMs?: number
  what: string
}

/**
 * A small client of the distribution API, one per run and image: credentials resolved once, one
 * token handshake, and the run's retry policy inside every call. Reads and pushes go through it
 * rather than through docker so that every request sees real status codes and Retry-After headers
 * and is retried on its own: one flaky request must not cost a whole push.
 */
export class RegistryClient {
  private readonly base: string
  private readonly repository: string
  private authorization?: string

  constructor(
    readonly image: string,
    readonly registry: string,
    private readonly credentials: Credentials | undefined,
    private readonly access: Access = 'pull',
    /** how every call below is retried; `poll` alone is single-shot (the wait owns its loop) */
    readonly retry: RetryPolicy = NO_RETRY
  ) {
    this.base = registryBaseUrl(registry)
    this.repository = repositoryOf(image, registry)
  }

  /** Checks that the registry accepts our credentials (`GET /v2/`). */
  async ping(): Promise<void> {
    await this.retry.run(async () => {
      const res = await this.request('/v2/', { what: this.registry })
      await res.arrayBuffer().catch(() => undefined)
    })
  }

  /** A manifest by tag or digest, retried on transient failures. */
  async manifest(reference: string): Promise<Manifest> {
    return this.retry.run(() => this.poll(reference))
  }

  /**
   * Reads back what this run (or the job before it) just wrote. The registry may need a moment
   * before it shows it, so not-found is retried too, at least 3 times even with `retries: 0`: a
   * fresh write is not a flaky registry.
   */
  async readBack(reference: string): Promise<Manifest> {
    return this.retry.atLeast(3).run(() => this.poll(reference), READ_AFTER_WRITE)
  }

  /** One request for a manifest, no retry: for loops that decide themselves when to ask again. */
  async poll(reference: string): Promise<Manifest> {
    const what = this.describe(reference)
    const res = await this.request(`/v2/${this.repository}/manifests/${reference}`, { headers: { Accept: MANIFEST_ACCEPT }, what })
    const body = await readBody(res, what)
    const digest = sha256(body)
    // asked by digest, the bytes must hash to it: a tag may move, a digest may not
    if (isDigest(reference) && digest !== reference) throw new DigestMismatchError(what, reference, digest)
    let json: any
    try {
      json = JSON.parse(body.toString('utf8'))
    } catch {
      throw new ClassifiedError(`${what}: the registry sent a manifest that is not JSON`, 'transient')
    }
    const mediaType = json.mediaType || res.headers.get('content-type')?.split(';')[0] || ''
    return { digest, mediaType, size: body.length, json }
  }

  /**
   * A JSON blob (an image config, an in-toto statement) by a digest we were handed: not-found may
   * be lag, so it is retried too. With `maxBytes`, a larger blob is refused without reading it all.
   */
  async blobJson(digest: string, maxBytes?: number): Promise<any> {
    return this.retry.run(() => this.fetchBlobJson(digest, maxBytes), READ_AFTER_WRITE)
  }

  private async fetchBlobJson(digest: string, maxBytes?: number): Promise<any> {
    const what = this.describe(digest)
    const res = await this.request(`/v2/${this.repository}/blobs/${digest}`, { what })
    const body = maxBytes === undefined ? await readBody(res, what) : await readCappedBody(res, what, maxBytes)
    const actual = sha256(body)
    if (isDigest(digest) && actual !== digest) throw new DigestMismatchError(what, digest, actual)
    const text = body.toString('utf8')
    try {
      return JSON.parse(text)
    } catch {
      throw new ClassifiedError(`${what}: the blob is not JSON`, 'transient')
    }
  }

  async hasBlob(digest: string): Promise<boolean> {
    return this.retry.run(() => this.headBlob(digest))
  }

  private async headBlob(digest: string): Promise<boolean> {
    try {
      const res = await this.request(`/v2/${this.repository}/blobs/${digest}`, { method: 'HEAD', what: this.describe(digest) })
      await res.arrayBuffer().catch(() => undefined)
      return true
    } catch (error) {
      if (error instanceof ClassifiedError && error.outcome === 'absent') return false
      throw error
    }
  }

  /** A monolithic upload: open a session, then PUT the whole blob with its digest. */
  async uploadBlob(digest: string, size: number, open: () => BodyInit): Promise<void> {
    await this.retry.run(() => this.upload(digest, size, open))
  }

  private async upload(digest: string, size: number, open: () => BodyInit): Promise<void> {
    const what = this.describe(digest)
    const started = await this.request(`/v2/${this.repository}/blobs/uploads/`, { method: 'POST', headers: { 'Content-Length': '0' }, what })
    await started.arrayBuffer().catch(() => undefined)
    const location = started.headers.get('location')
    if (!location) throw new ClassifiedError(`${what}: the registry opened an upload without a Location`, 'transient')
    // keep the registry's upload URL as it is (a signed query must not be re-encoded), add the digest
    const url = new URL(location, this.base)
    const target = `${url.href}${url.search ? '&' : '?'}digest=${encodeURIComponent(digest)}`
    const done = await this.request(target, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) },
      body: open,
      timeoutMs: UPLOAD_TIMEOUT_MS,
      what
    })
    await done.arrayBuffer().catch(() => undefined)
  }

  /**
   * Opens a blob upload and cancels it at once: proves the credentials may write the repository
   * without writing anything. A registry that cannot cancel an upload lets it expire.
   */
  async probeUpload(): Promise<void> {
    await this.retry.run(() => this.openAndCancelUpload())
  }

  private async openAndCancelUpload(): Promise<void> {
    const what = `${this.image} (upload)`
    const started = await this.request(`/v2/${this.repository}/blobs/uploads/`, { method: 'POST', headers: { 'Content-Length': '0' }, what })
    await started.arrayBuffer().catch(() => undefined)
    const location = started.headers.get('location')
    if (!location) return
    try {
      const cancelled = await this.request(new URL(location, this.base).href, { method: 'DELETE', what })
      await cancelled.arrayBuffer().catch(() => undefined)
    } catch {
      // the upload was opened, which is all the check needs
    }
  }

  async putManifest(reference: string, mediaType: string, body: Buffer): Promise<void> {
    await this.retry.run(async () => {
      const res = await this.request(`/v2/${this.repository}/manifests/${reference}`, {
        method: 'PUT',
        headers: { 'Content-Type': mediaType },
        body: () => new Uint8Array(body),
        what: this.describe(reference)
      })
      await res.arrayBuffer().catch(() => undefined)
    })
  }

  private describe(reference: string): string {
    return `${this.image}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`
  }

  private async request(path: string, options: RequestOptions): Promise<Response> {
    const sentWith = this.authorization
    let res = await this.send(path, options)
    if (res.status === 401) {
      const challenge = parseChallenge(res.headers.get('www-authenticate'))
      await res.arrayBuffer().catch(() => undefined)
      // parallel requests share one client: another may have authenticated while this one was in flight
      const renewed = this.authorization !== sentWith || (challenge !== undefined && (await this.authenticate(challenge, sentWith, options.what)))
      if (renewed) res = await this.send(path, options)
    }
    if (res.ok) return res
    // the registry says why in its body (`{"errors": [{"code", "message"}]}`): keep it for the user
    const body = await errorBody(res)
    throw new RegistryError(options.what, res.status, parseRegistryErrors(body), parseRetryAfter(res.headers.get('retry-after'), Date.now()))
  }

  /** `path` is below the registry, or an absolute URL it handed out (an upload location). */
  private async send(path: string, options: RequestOptions): Promise<Response> {
    const url = new URL(path, this.base)
    const headers: Record<string, string> = { ...options.headers }
    // credentials go to the registry only, never to another host it points us at
    if (this.authorization && url.origin === new URL(this.base).origin) headers.Authorization = this.authorization
    const body = options.body?.()
    try {
      return await fetch(url, {
        method: options.method ?? 'GET',
        headers,
        body,
        // a streamed body needs half duplex in Node's fetch
        ...(body && !(body instanceof Uint8Array) && typeof body !== 'string' ? { duplex: 'half' } : {}),
        signal: AbortSignal.timeout(options.timeoutMs ?? REQUEST_TIMEOUT_MS)
      } as RequestInit)
    } catch (error) {
      throw new ClassifiedError(`${options.what}: ${networkReason(error)}`, networkOutcome(error))
    }
  }

  /** Answers a 401 challenge once: Basic with our credentials, or a Bearer token from the realm. */
  private async authenticate(challenge: Challenge, sentWith: string | undefined, what: string): Promise<boolean> {
    const basic = this.credentials?.password
      ? `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`
      : undefined
    if (challenge.scheme === 'basic') {
      if (!basic || sentWith === basic) return false
      this.authorization = basic
      return true
    }
    // a Bearer token may simply have expired: fetch a fresh one (each request renews at most once)
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) return false
    let url: URL
    try {
      url = new URL(challenge.params.realm, this.base)
    } catch {
      throw new ClassifiedError(`${what}: the registry sent an unusable token realm`, 'fatal')
    }
    if (url.protocol !== 'https:' && !this.base.startsWith('http:')) {
      throw new ClassifiedError(`${what}: the registry asked for credentials over plain http (${url.origin}); refusing`, 'fatal')
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service)
    // a bare ping (login check) has no repository to ask a scope for
    if (this.repository) url.searchParams.set('scope', `repository:${this.repository}:${this.access === 'push' ? 'pull,push' : 'pull'}`)
    let res: Response
    try {
      res = await fetch(url, { headers: basic ? { Authorization: basic } : {}, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    } catch (error) {
      throw new ClassifiedError(`${what}: token request failed: ${networkReason(error)}`, networkOutcome(error))
    }
    if (!res.ok) {
      await res.arrayBuffer().catch(() => undefined)
      const outcome = classifyStatus(res.status) === 'transient' ? 'transient' : 'auth'
      throw new ClassifiedError(`${what}: token request answered HTTP ${res.status}`, outcome, parseRetryAfter(res.headers.get('retry-after'), Date.now()))
    }
    let body: { token?: string; access_token?: string }
    try {
      body = JSON.parse((await readBody(res, what)).toString('utf8'))
    } catch (error) {
      if (error instanceof ClassifiedError) throw error
      throw new ClassifiedError(`${what}: the token answer is not JSON`, 'transient')
    }
    const token = body.token || body.access_token
    if (!token) return false
    this.authorization = `Bearer ${token}`
    return true
  }
}

/** An error answer's body, at most 64 KiB of it; '' when there is none or it cannot be read. */
async function errorBody(res: Response): Promise<string> {
  try {
    const bytes = Buffer.from(await res.arrayBuffer())
    return bytes.subarray(0, 64 * 1024).toString('utf8')
  } catch {
    return ''
  }
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** Reads a whole body; a connection that drops halfway is a transient failure like any other. */
async function readBody(res: Response, what: string): Promise<Buffer> {
  try {
    return Buffer.from(await res.arrayBuffer())
  } catch (error) {
    throw new ClassifiedError(`${what}: ${networkReason(error)}`, 'transient')
  }
}

/** Reads a body of at most `maxBytes`; a larger one is refused (fatal: it will not get smaller) and left unread. */
async function readCappedBody(res: Response, what: string, maxBytes: number): Promise<Buffer> {
  const tooLarge = () => new ClassifiedError(`${what}: the blob is larger than ${maxBytes} bytes; refusing to read it`, 'fatal')
  const declared = Number(res.headers.get('content-length') ?? NaN)
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => undefined)
    throw tooLarge()
  }
  if (!res.body) return readBody(res, what)
  const chunks: Buffer[] = []
  let total = 0
  const reader = res.body.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      total += value.byteLength
      if (total > maxBytes) {
        await reader.cancel().catch(() => undefined)
        throw tooLarge()
      }
      chunks.push(Buffer.from(value))
    }
  } catch (error) {
    if (error instanceof ClassifiedError) throw error
    throw new ClassifiedError(`${what}: ${networkReason(error)}`, 'transient')
  }
  return Buffer.concat(chunks)
}

/**
 * A TLS failure (a plain-http registry spoken to over https, a certificate that does not verify)
 * answers the same way every time: retrying it only waits out the backoff. Anything else on the
 * wire (resets, timeouts, refused connections) is worth another try.
 */
export function networkOutcome(error: unknown): 'transient' | 'fatal' {
  const code = String((error as { cause?: { code?: string } })?.cause?.code ?? '')
  return /^(ERR_SSL_|ERR_TLS_|EPROTO$|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/.test(code) ? 'fatal' : 'transient'
}

function networkReason(error: unknown): string {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } }
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'request timed out'
  return e?.cause?.code || e?.cause?.message || e?.message || String(error)
}
