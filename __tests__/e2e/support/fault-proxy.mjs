// Fault-injecting reverse proxy for a Docker Registry HTTP API v2 / OCI distribution registry.
//
// Everything is forwarded verbatim (method, path, query, headers including the client's Host,
// streamed bodies both ways) unless a rule decides to fault the request, in which case the
// request is answered (or its socket reset) WITHOUT being forwarded, so a faulted upload can
// never leave partial data in the registry.
//
// Rule precedence for a `/v2/...` request: forced `status` rules, then the `outageSeconds`
// window, then `hide`, then the random `resetRate`, then the random `errorRate`.
// Both random draws are taken for every eligible request (in that order) from a seeded PRNG,
// so a given seed + request sequence always produces the same faults.
//
// Node 20 built-ins only.

import http from 'node:http'
import { listen, makePrng } from './service.mjs'

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade'])

const ERROR_CODES = {
  400: ['BAD_REQUEST', 'bad request'],
  401: ['UNAUTHORIZED', 'authentication required'],
  403: ['DENIED', 'requested access to the resource is denied'],
  404: ['NAME_UNKNOWN', 'repository name not known to registry'],
  405: ['UNSUPPORTED', 'The operation is unsupported.'],
  408: ['UNKNOWN', 'request timeout'],
  409: ['UNKNOWN', 'conflict'],
  429: ['TOOMANYREQUESTS', 'too many requests'],
  500: ['UNKNOWN', 'unknown error'],
  502: ['UNKNOWN', 'bad gateway'],
  503: ['UNAVAILABLE', 'service unavailable'],
  504: ['UNKNOWN', 'gateway timeout']
}

/** Parse `/v2/<name>/manifests/<reference>`; returns null for other paths. */
function parseManifestPath(pathname) {
  const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(pathname)
  if (!m) return null
  let ref = m[2]
  try {
    ref = decodeURIComponent(ref)
  } catch {
    /* keep raw */
  }
  return { repo: m[1], ref }
}

function toRegex(r) {
  if (r instanceof RegExp) return r
  return new RegExp(String(r))
}

function normalizeRules(rules = {}) {
  const r = rules ?? {}
  return {
    hide: (r.hide ?? []).map((h) => ({
      repo: h.repo ?? undefined,
      tag: h.tag ?? undefined,
      seconds: Number(h.seconds ?? 0),
      from: h.from === 'push' ? 'push' : 'now',
      // from:'push': every manifest PUT of the tag restarts the window (a client that re-pushes
      // keeps seeing the lag); rearm:false → only the first PUT after configure() counts.
      rearm: h.rearm !== false,
      firstPush: undefined,
      methods: h.methods ? h.methods.map((m) => m.toUpperCase()) : ['GET', 'HEAD']
    })),
    errorRate: Math.max(0, Math.min(1, Number(r.errorRate ?? 0))),
    statuses: Array.isArray(r.statuses) && r.statuses.length ? r.statuses.map(Number) : [500, 502, 503, 429],
    retryAfter: r.retryAfter ?? undefined,
    resetRate: Math.max(0, Math.min(1, Number(r.resetRate ?? 0))),
    outageSeconds: Number(r.outageSeconds ?? 0),
    status: (r.status ?? []).map((s) => ({
      pathRegex: toRegex(s.pathRegex ?? '.*'),
      status: Number(s.status),
      count: s.count === undefined || s.count === null ? Infinity : Number(s.count),
      methods: s.methods ? s.methods.map((m) => m.toUpperCase()) : s.method ? [String(s.method).toUpperCase()] : undefined,
      retryAfter: s.retryAfter,
      // an answer of the test's own instead of a registry error (e.g. wrong bytes under a digest)
      body: s.body === undefined ? undefined : typeof s.body === 'string' ? s.body : JSON.stringify(s.body),
      headers: s.headers,
      used: 0
    })),
    seed: r.seed
  }
}

function registryError(status, codeOverride, messageOverride, detail) {
  const [code, message] = ERROR_CODES[status] ?? ['UNKNOWN', `status ${status}`]
  return JSON.stringify({
    errors: [{ code: codeOverride ?? code, message: messageOverride ?? message, detail: detail ?? null }]
  })
}

/**
 * @param {object} opts
 * @param {string} opts.target upstream registry, e.g. 'http://127.0.0.1:5000'
 * @param {number} [opts.port=0]
 * @param {string} [opts.host='127.0.0.1'] listen address
 * @param {number} [opts.seed=1]
 * @param {object} [opts.rules] initial rules (same as configure())
 */
export async function startFaultProxy({ target, port = 0, host = '127.0.0.1', seed = 1, rules } = {}) {
  if (!target) throw new Error('startFaultProxy: target is required')
  const targetUrl = new URL(target)
  if (targetUrl.protocol !== 'http:') throw new Error('startFaultProxy: only http:// targets are supported')
  const targetOrigin = targetUrl.origin
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })

  const log = []
  let cfg = normalizeRules({})
  let configuredAt = Date.now()
  let rand = makePrng(seed)
  /** key `${repo}\0${ref}` → ms timestamp of the last manifest PUT that went through */
  const pushedAt = new Map()
  let selfOrigin = ''

  function record(entry, res) {
    log.push(entry) // visible immediately; `status` is filled in when the answer is known
    const done = () => {
      if (entry.ms !== undefined) return
      entry.ms = Date.now() - entry.t
      if (entry.fate === 'forwarded' && !res.writableFinished) entry.aborted = true
    }
    res.on('finish', done)
    res.on('close', done)
  }

  function configure(newRules = {}) {
    cfg = normalizeRules(newRules)
    configuredAt = Date.now()
    rand = makePrng(cfg.seed ?? seed)
    return api
  }

  function hiddenBy(method, pathname, now) {
    const mp = parseManifestPath(pathname)
    if (!mp) return null
    for (const h of cfg.hide) {
      if (!h.methods.includes(method)) continue
      if (h.repo !== undefined && h.repo !== mp.repo) continue
      if (h.tag !== undefined && h.tag !== mp.ref) continue
      let start
      if (h.from === 'now') start = configuredAt
      else start = h.rearm ? pushedAt.get(`${mp.repo}\0${mp.ref}`) : h.firstPush?.get(`${mp.repo}\0${mp.ref}`)
      if (start === undefined) continue
      if (start <= now && now < start + h.seconds * 1000) return h
    }
    return null
  }

  function decide(req, pathname) {
    const method = req.method ?? 'GET'
    const now = Date.now()
    if (!pathname.startsWith('/v2/') && pathname !== '/v2') return { fate: 'forwarded' }

    for (const s of cfg.status) {
      if (s.used >= s.count) continue
      if (s.methods && !s.methods.includes(method)) continue
      if (!s.pathRegex.test(pathname)) continue
      s.used += 1
      return { fate: 'forced', status: s.status, retryAfter: s.retryAfter, body: s.body, headers: s.headers }
    }

    if (cfg.outageSeconds > 0 && now < configuredAt + cfg.outageSeconds * 1000) {
      return { fate: 'outage', status: 503, retryAfter: 1 }
    }

    if (hiddenBy(method, pathname, now)) return { fate: 'hidden', status: 404 }

    if (cfg.resetRate > 0 || cfg.errorRate > 0) {
      const r1 = rand()
      const r2 = rand()
      const r3 = rand()
      if (r1 < cfg.resetRate) return { fate: 'reset' }
      if (r2 < cfg.errorRate) {
        const status = cfg.statuses[Math.floor(r3 * cfg.statuses.length) % cfg.statuses.length]
        return { fate: 'error', status, retryAfter: cfg.retryAfter }
      }
    }
    return { fate: 'forwarded' }
  }

  function answerFault(req, res, decision) {
    const { status } = decision
    const headers = {
      'Content-Type': 'application/json; charset=utf-8',
      'Docker-Distribution-Api-Version': 'registry/2.0'
    }
    const body =
      decision.fate === 'hidden'
        ? registryError(404, 'MANIFEST_UNKNOWN', 'manifest unknown', { fault: 'hidden by fault-proxy' })
        : (decision.body ?? registryError(status, undefined, undefined, { fault: `${decision.fate} by fault-proxy` }))
    if ((status === 429 || status === 503) && decision.retryAfter !== undefined && decision.retryAfter !== null) {
      headers['Retry-After'] = String(decision.retryAfter)
    }
    if (status === 401) headers['WWW-Authenticate'] = 'Basic realm="fault-proxy"'
    Object.assign(headers, decision.headers)
    const buf = Buffer.from(body)
    headers['Content-Length'] = String(buf.length)
    const respond = () => {
      if (res.destroyed || res.headersSent) return
      res.writeHead(status, headers)
      res.end(req.method === 'HEAD' ? undefined : buf)
    }
    // Read (and discard) the request body before answering, like a registry that failed after
    // receiving the upload: answering early and closing would risk a TCP RST that eats the
    // response on the client side. Nothing is forwarded either way.
    if (req.complete) respond()
    else {
      req.on('end', respond)
      req.on('error', () => res.destroy())
      req.resume()
    }
  }

  function rewriteLocation(value, clientHost) {
    if (typeof value !== 'string') return value
    if (value.startsWith(targetOrigin)) {
      const base = clientHost ? `http://${clientHost}` : selfOrigin
      return base + value.slice(targetOrigin.length)
    }
    return value
  }

  function forward(req, res, entry, manifest) {
    const headers = []
    const raw = req.rawHeaders
    for (let i = 0; i < raw.length; i += 2) {
      if (HOP_BY_HOP.has(raw[i].toLowerCase())) continue
      headers.push([raw[i], raw[i + 1]])
    }
    const upstreamReq = http.request({
      protocol: targetUrl.protocol,
      hostname: targetUrl.hostname,
      port: targetUrl.port || 80,
      method: req.method,
      path: req.url,
      headers: Object.fromEntries(groupHeaders(headers)),
      agent,
      setHost: false
    })
    // `Host` is copied from the client (so the registry builds Location URLs pointing at us).
    if (!req.headers.host) upstreamReq.setHeader('Host', targetUrl.host)

    upstreamReq.on('response', (up) => {
      entry.status = up.statusCode
      if (manifest && req.method === 'PUT' && up.statusCode >= 200 && up.statusCode < 300) {
        const k = `${manifest.repo}\0${manifest.ref}`
        pushedAt.set(k, Date.now())
        for (const h of cfg.hide) {
          if (h.from !== 'push' || h.rearm) continue
          h.firstPush ??= new Map()
          if (!h.firstPush.has(k)) h.firstPush.set(k, Date.now())
        }
        entry.pushed = `${manifest.repo}:${manifest.ref}`
      }
      const out = []
      const r = up.rawHeaders
      for (let i = 0; i < r.length; i += 2) {
        const k = r[i]
        const lk = k.toLowerCase()
        if (HOP_BY_HOP.has(lk)) continue
        out.push(k, lk === 'location' ? rewriteLocation(r[i + 1], req.headers.host) : r[i + 1])
      }
      res.writeHead(up.statusCode ?? 502, up.statusMessage, out)
      up.pipe(res)
      up.on('error', () => res.destroy())
    })
    upstreamReq.on('error', (err) => {
      entry.error = String(err?.message ?? err)
      if (!res.headersSent) {
        entry.status = 502
        const buf = Buffer.from(registryError(502, undefined, `fault-proxy: upstream error: ${entry.error}`))
        res.writeHead(502, { 'Content-Type': 'application/json', 'Content-Length': String(buf.length), Connection: 'close' })
        res.end(buf)
      } else {
        res.destroy()
      }
      req.resume()
    })
    req.on('close', () => {
      if (!req.complete) upstreamReq.destroy()
    })
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy()
    })
    req.pipe(upstreamReq)
  }

  function groupHeaders(pairs) {
    // Preserve duplicates as arrays (Node serializes arrays as repeated header lines).
    const map = new Map()
    for (const [k, v] of pairs) {
      const lk = k.toLowerCase()
      if (map.has(lk)) {
        const cur = map.get(lk)
        cur[1] = Array.isArray(cur[1]) ? [...cur[1], v] : [cur[1], v]
      } else {
        map.set(lk, [k, v])
      }
    }
    return [...map.values()]
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy.invalid')
    const decision = decide(req, url.pathname)
    const entry = {
      t: Date.now(),
      method: req.method,
      path: url.pathname,
      query: url.search || undefined,
      fate: decision.fate,
      status: decision.status ?? null
    }
    record(entry, res)

    if (decision.fate === 'reset') req.socket.destroy()
    else if (decision.fate !== 'forwarded') answerFault(req, res, decision)
    else forward(req, res, entry, parseManifestPath(url.pathname))
  })
  server.keepAliveTimeout = 30_000
  server.requestTimeout = 0
  server.headersTimeout = 60_000

  const listening = await listen(server, { port, host })
  selfOrigin = listening.origin

  const api = {
    url: selfOrigin,
    host: listening.hostPort,
    log,
    configure,
    clearLog() {
      log.length = 0
    },
    async close() {
      await listening.close()
      agent.destroy()
    }
  }
  if (rules) configure(rules)
  return api
}
