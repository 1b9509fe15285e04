import { stampIsStale } from '../doubles/stamp.mjs'

/** The doubles' checks run only when the doubles change (see jest.config.js): a change must have run them. */
it('the doubles were checked against the real clients since they last changed', () => {
  if (stampIsStale())
    throw new Error(
      'the cache doubles changed: run npm run test:doubles (it checks them against the real clients and refreshes __tests__/doubles/verified.sha256)'
    )
})
