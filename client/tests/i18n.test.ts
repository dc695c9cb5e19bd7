import { afterEach, describe, expect, it } from 'vitest'
import i18n, { LANGUAGES, t } from '../src/i18n'
import { de } from '../src/i18n/de'
import { en } from '../src/i18n/en'
import { joinProblem, moderationText } from '../src/lib/access'
import { deniedAdvice } from '../src/lib/permissions'
import { tileStatus } from '../src/state/mediaStatus'

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
    expect(same).toEqual([])
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
