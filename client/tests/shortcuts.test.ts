import { describe, expect, it } from 'vitest'
import { linkify } from '../src/lib/linkify'
import { shortcutFor } from '../src/lib/shortcuts'

describe('shortcutFor', () => {
  const body = { tagName: 'BODY' }
  it.each([
    [{ key: 'm' }, 'toggle-mic'],
    [{ key: 'M' }, 'toggle-mic'],
    [{ key: 'd', ctrlKey: true }, 'toggle-mic'],
    [{ key: 'v' }, 'toggle-camera'],
    [{ key: 'e', metaKey: true }, 'toggle-camera'],
    [{ key: 'h' }, 'raise-hand'],
    [{ key: '?' }, 'help'],
    [{ key: ' ' }, 'push-to-talk'],
    [{ key: 'x' }, null],
    [{ key: 'c', ctrlKey: true }, null], // copy stays copy
    [{ key: 'm', altKey: true }, null],
    [{ key: 'm', repeat: true }, null],
    [{ key: 'Escape' }, null],
  ])('%j -> %s', (e, want) => {
    expect(shortcutFor({ ...e, target: body })).toBe(want)
  })

  it('typing in a field is never a shortcut', () => {
    for (const tagName of ['INPUT', 'textarea', 'SELECT']) expect(shortcutFor({ key: 'm', target: { tagName } })).toBeNull()
    expect(shortcutFor({ key: ' ', target: { tagName: 'DIV', isContentEditable: true } })).toBeNull()
  })
})

describe('linkify', () => {
  it.each([
    ['no link here', [{ text: 'no link here' }]],
    [
      'see https://example.org/a?b=1, then',
      [{ text: 'see ' }, { text: 'https://example.org/a?b=1', href: 'https://example.org/a?b=1' }, { text: ', then' }],
    ],
    ['(http://x.test/p)', [{ text: '(' }, { text: 'http://x.test/p', href: 'http://x.test/p' }, { text: ')' }]],
    ['javascript:alert(1) data:text/html,x', [{ text: 'javascript:alert(1) data:text/html,x' }]],
    [
      'two: https://a.test https://b.test.',
      [
        { text: 'two: ' },
        { text: 'https://a.test', href: 'https://a.test' },
        { text: ' ' },
        { text: 'https://b.test', href: 'https://b.test' },
        { text: '.' },
      ],
    ],
  ])('%s', (text, want) => {
    expect(linkify(text)).toEqual(want)
  })
})
