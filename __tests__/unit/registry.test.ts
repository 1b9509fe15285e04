import { parseChallenge, registryBaseUrl, repositoryOf } from '../../src/registry/client.js'
import { parseRegistryErrors, RegistryError } from '../../src/model/errors.js'

// the client against the real registry: __tests__/fast/registry-client.test.ts
describe('registry client', () => {
  it('reads the error body of the distribution spec and nothing else', () => {
    expect(parseRegistryErrors('{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"},{"code":"X"}]}')).toEqual([
      { code: 'DENIED', message: 'requested access to the resource is denied' },
      { code: 'X', message: '' }
    ])
    for (const body of ['', '<html>502</html>', '{"message":"x"}', '{"errors":"x"}', '{"errors":[{"message":"no code"}]}'])
      expect(parseRegistryErrors(body)).toEqual([])
    expect(new RegistryError('r/a:t', 404, [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }]).message).toBe(
      'r/a:t: not found (MANIFEST_UNKNOWN: manifest unknown)'
    )
    expect(new RegistryError('r/a:t', 401, [{ code: 'UNAUTHORIZED', message: 'authentication required' }]).message).toBe(
      'r/a:t: access denied (HTTP 401, UNAUTHORIZED: authentication required)'
    )
    expect(new RegistryError('r/a:t', 503).message).toBe('r/a:t: HTTP 503')
    expect(new RegistryError('r/a:t', 500, [{ code: 'UNKNOWN', message: 'x'.repeat(400) }]).message.length).toBeLessThan(330)
  })
  it('maps hosts and repositories like docker does', () => {
    expect(registryBaseUrl('127.0.0.1:5000')).toBe('http://127.0.0.1:5000')
    expect(registryBaseUrl('localhost')).toBe('http://localhost')
    expect(registryBaseUrl('ghcr.io')).toBe('https://ghcr.io')
    expect(registryBaseUrl('docker.io')).toBe('https://registry-1.docker.io')
    expect(repositoryOf('docker.io/busybox', 'docker.io')).toBe('library/busybox')
    expect(repositoryOf('ghcr.io/colliery-io/brokkr-agent', 'ghcr.io')).toBe('colliery-io/brokkr-agent')
    expect(parseChallenge('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:a:pull' }
    })
  })
})
