import { describe, expect, it } from 'vitest'
import { deniedAdvice, isPermissionDenied } from '../src/lib/permissions'

describe('a denied camera', () => {
  it.each([
    ['NotAllowedError', true],
    ['SecurityError', true],
    ['NotFoundError', false],
    ['NotReadableError', false],
    [undefined, false],
  ])('%s is a denial: %s', (name, denied) => expect(isPermissionDenied({ name })).toBe(denied))

  it.each([
    ['Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', 'crossed-out camera icon'],
    ['Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36 Edg/130.0', 'lock icon'],
    ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36', 'camera icon at the right'],
    ['Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15', 'Settings for this website'],
    ['curl/8', "site settings"],
  ])('advice for %s', (ua, words) => {
    const advice = deniedAdvice(ua)
    expect(advice).toContain(words)
    expect(advice).toContain('Try again')
  })
})
