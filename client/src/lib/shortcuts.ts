// Keyboard shortcuts of the meeting room, as Google Meet and Jitsi Meet have them (#18).
// Pure: which action a key press means; MeetingRoom performs it.
import { t } from '../i18n'

export type ShortcutAction = 'toggle-mic' | 'toggle-camera' | 'raise-hand' | 'help' | 'push-to-talk'

/** The shortcuts as the help dialog lists them, in the current language (called at render). */
export function shortcutList(): { keys: string; what: string }[] {
  return [
    { keys: t('shortcuts.micKeys'), what: t('shortcuts.mic') },
    { keys: t('shortcuts.cameraKeys'), what: t('shortcuts.camera') },
    { keys: t('shortcuts.talkKeys'), what: t('shortcuts.talk') },
    { keys: 'H', what: t('shortcuts.hand') },
    { keys: '?', what: t('shortcuts.help') },
  ]
}

export interface KeyLike {
  key: string
  ctrlKey?: boolean
  metaKey?: boolean
  altKey?: boolean
  repeat?: boolean
  /** The element the key went to: typing in a field is never a shortcut. */
  target?: { tagName?: string; isContentEditable?: boolean } | null
}

const TYPING = new Set(['INPUT', 'TEXTAREA', 'SELECT'])

/** The action of a keydown, or null (a key held down repeats nothing). */
export function shortcutFor(e: KeyLike): ShortcutAction | null {
  const t = e.target
  if (t && (TYPING.has((t.tagName ?? '').toUpperCase()) || t.isContentEditable)) return null
  if (e.repeat || e.altKey) return null
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key
  if (e.ctrlKey || e.metaKey) {
    if (key === 'd') return 'toggle-mic'
    if (key === 'e') return 'toggle-camera'
    return null
  }
  switch (key) {
    case 'm':
      return 'toggle-mic'
    case 'v':
      return 'toggle-camera'
    case 'h':
      return 'raise-hand'
    case '?':
      return 'help'
    case ' ':
      return 'push-to-talk'
    default:
      return null
  }
}
