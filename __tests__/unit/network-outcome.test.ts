import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { networkOutcome } from '../../src/registry/client.js'

/** The error Node's fetch really throws for a URL. */
async function fetchError(url: string): Promise<unknown> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(5000) })
  } catch (error) {
    return error
  }
  throw new Error(`${url} answered`)
}

describe('network failures', () => {
  it('treats https spoken to a plain-http registry as final (retrying only waits out the backoff)', async () => {
    const server = createServer((_req, res) => res.end('plain http'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = server.address() as AddressInfo
      expect(networkOutcome(await fetchError(`https://127.0.0.1:${port}/v2/`))).toBe('fatal')
    } finally {
      server.close()
    }
  })

  it('retries a refused connection', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    await new Promise((resolve) => server.close(resolve))
    expect(networkOutcome(await fetchError(`http://127.0.0.1:${port}/v2/`))).toBe('transient')
  })
})
