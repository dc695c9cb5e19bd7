import { afterEach, describe, expect, it } from 'vitest'
import i18n, { LANGUAGES, t } from '../src/i18n'
import { de } from '../src/i18n/de'
import { en } from '../src/i18n/en'
import { joinProblem, moderationText } from '../src/lib/access'
import { deniedAdvice } from '../src/lib/permissions'
import { shortcutList } from '../src/lib/shortcuts'
import { recordingsError, statusLabel, stoppedText } from '../src/pages/Recordings'
import { tileStatus } from '../src/state/mediaStatus'
import { initialRoomState, roomReducer } from '../src/state/room'

type Tree = { [k: string]: string | Tree }
function flatten(tree: Tree, prefix = ''): Map<string, string> {
  const out = new Map<string, string>()
  for (const [k, v] of Object.entries(tree)) {
    const key = prefix ? `${prefix}.${k}` : k
    if (typeof v === 'string') out.set(key, v)
    else for (const [kk, vv] of flatten(v, key)) out.set(kk, vv)
  }
  return out
}
const placeholders = (s: string) => [...s.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]).sort()

afterEach(async () => {
  await i18n.changeLanguage('en')
})

describe('the catalogue', () => {
  const english = flatten(en as Tree)
  const german = flatten(de as Tree)

  it('has every English key in German, and no other', () => {
    expect([...german.keys()].sort()).toEqual([...english.keys()].sort())
  })

  // Values the code passes beyond those the English string uses (German names the person
  // where English uses the possessive "Bob's").
  const EXTRA: Record<string, string[]> = {
    'moderation.cameraOff': ['target'],
    'moderation.stopScreenShare': ['target'],
    'moderation.demote': ['target'],
  }

  it('uses only the values the code passes (those of the English string)', () => {
    for (const [key, text] of english) {
      const wanted = new Set([...placeholders(text), ...(EXTRA[key] ?? [])])
      for (const p of placeholders(german.get(key) ?? '')) expect(wanted, `${key}: {{${p}}}`).toContain(p)
    }
  })

  it('has no empty or untranslated German string', () => {
    const same = [...english].filter(([k, v]) => german.get(k) === v && !/^\{\{\w+\}\} [a-z]+$/.test(v)).map(([k]) => k)
    // Strings that are the same in both languages are named here on purpose.
    expect(same.sort()).toEqual(['chat.title', 'toolbar.chat'])
    for (const [key, text] of german) expect(text.trim(), key).not.toBe('')
  })

  it('lists the languages it ships', () => {
    expect(Object.keys(LANGUAGES)).toEqual(['en', 'de'])
  })
})

describe('switching language', () => {
  it('speaks English by default in tests, German when chosen, and falls back to English', async () => {
    expect(t('access.room_full.title')).toBe('This meeting is full')
    await i18n.changeLanguage('de-AT')
    expect(i18n.resolvedLanguage).toBe('de')
    expect(t('access.room_full.title')).toBe('Diese Besprechung ist voll')
    await i18n.changeLanguage('fr')
    expect(t('access.room_full.title')).toBe('This meeting is full')
  })

  it('reaches the pure modules: refusal pages, moderation toasts, browser advice, tile status', async () => {
    await i18n.changeLanguage('de')
    expect(joinProblem('unknown_room')).toMatchObject({ title: 'Diese Besprechung gibt es nicht' })
    expect(joinProblem('wrong_password')).toMatchObject({ text: 'Falsches Passwort. Versuchen Sie es noch einmal.' })
    expect(moderationText({ action: 'lock', by: 'u1', byName: 'Alice', target: null, targetName: null, detail: null }, 'u2')).toBe(
      'Alice hat die Besprechung gesperrt: Neue Teilnehmende warten, bis sie hereingelassen werden',
    )
    expect(deniedAdvice('Mozilla/5.0 Firefox/128.0')).toMatch(/durchgestrichene Kamerasymbol/)
    const status = tileStatus({
      expected: { video: true, audio: true },
      unsupported: ['video', 'audio'],
      tracker: { expect: 'video', since: 0, videoAt: null, audioAt: null },
      now: 0,
      offline: false,
      connection: 'connected',
      recovering: false,
    } as unknown as Parameters<typeof tileStatus>[0])
    expect(status.message).toBe('Ihr Browser kann Video und Ton dieser Person nicht abspielen')
  })
})

describe('the pages and the room', () => {
  it('speak German in the pure modules: shortcuts, recordings, room toasts', async () => {
    await i18n.changeLanguage('de')
    expect(shortcutList()[0]).toEqual({ keys: 'M  oder  Strg+D', what: 'Mikrofon stummschalten oder einschalten' })
    expect(shortcutList().map((s) => s.keys)).toContain('H')
    const base = { id: 'r1' }
    expect(statusLabel({ ...base, status: 'finishing', progress: 0.426 })).toBe('Wird fertiggestellt… 42 %')
    expect(stoppedText({ ...base, stoppedByName: 'Ada' })).toBe('Beendet von Ada')
    expect(stoppedText({ ...base, stop_reason: 'stopped by u-1' })).toBe('Beendet')
    expect(stoppedText({ ...base, stop_reason: 'stopped by the administrator' })).toBe('Von der Administration beendet')
    expect(recordingsError(401, 'tok', null)).toBe('Dieser Aufnahmelink ist nicht mehr gültig.')
    const bob = { userId: 'bob', userName: 'Bob', media: { audio: true, video: false, screen: false } }
    const joined = roomReducer(initialRoomState, { type: 'user-joined', participant: bob })
    expect(joined.toasts.at(-1)?.message).toBe('Bob ist beigetreten')
    expect(roomReducer(joined, { type: 'hand', userId: 'bob', at: 1 }).toasts.at(-1)?.message).toBe('Bob hat die Hand gehoben')
  })

  it('keep the English wording the end-to-end tests find elements by', () => {
    expect(shortcutList()[2]).toEqual({ keys: 'Space (hold)', what: 'Push to talk while muted' })
    expect(t('toolbar.chatUnread', { count: 3 })).toBe('Chat, 3 unread')
    expect(t('common.you', { name: 'Ada' })).toBe('Ada (you)')
    expect(t('room.tabTitleUnread', { count: 2, where: 'Room abc' })).toBe('(2) Room abc · Meeting')
  })

  // Every component and page takes its words from the catalogue: no English left in an
  // attribute a person or a screen reader meets, nor as a text node between tags.
  const sources = import.meta.glob<string>(['../src/components/*.tsx', '../src/pages/*.tsx', '../src/App.tsx'], {
    query: '?raw',
    import: 'default',
    eager: true,
  })
  const code = (src: string) => src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/[^\n]*/g, '$1')

  it('finds the sources it checks', () => {
    expect(Object.keys(sources).length).toBeGreaterThan(15)
  })

  it.each(Object.keys(sources))('%s has no literal text for people', (file) => {
    const src = code(sources[file])
    const attrs = [...src.matchAll(/\b(aria-label|aria-description|title|placeholder|alt|label)="([^"]*[A-Za-z][^"]*)"/g)].map((m) => m[0])
    const texts = [...src.matchAll(/(?<!=)>\s*([A-Za-z][^<>{}()=;:'"`]*?)\s*</g)].map((m) => m[1])
    expect([...attrs, ...texts]).toEqual([])
  })
})
