import { useEffect, useRef, type KeyboardEvent } from 'react'
import { useTranslation } from 'react-i18next'

export const EMOJIS = ['👍', '👏', '😂', '❤️', '🎉', '😮', '🤔', '👋']

/** The reactions menu: the focus goes to its first item; the arrow keys move between items
 * (Escape closes it: MeetingRoom, which gives the focus back to the React button). */
export function EmojiPicker({ onPick, onClose }: { onPick: (emoji: string) => void; onClose: () => void }) {
  const { t } = useTranslation()
  const ref = useRef<HTMLDivElement>(null)
  useEffect(() => {
    ref.current?.querySelector<HTMLButtonElement>('button')?.focus()
  }, [])
  const move = (e: KeyboardEvent) => {
    const step = { ArrowRight: 1, ArrowDown: 4, ArrowLeft: -1, ArrowUp: -4, Home: -EMOJIS.length, End: EMOJIS.length }[e.key]
    if (step === undefined) return
    e.preventDefault()
    const items = Array.from(ref.current?.querySelectorAll<HTMLButtonElement>('button') ?? [])
    const at = items.indexOf(document.activeElement as HTMLButtonElement)
    items[Math.max(0, Math.min(items.length - 1, at + step))]?.focus()
  }
  return (
    <div className="emoji-picker" role="menu" aria-label={t('emoji.menu')} ref={ref} onKeyDown={move}>
      {EMOJIS.map((e) => (
        <button
          key={e}
          type="button"
          role="menuitem"
          className="emoji-btn"
          aria-label={t('emoji.react', { emoji: e })}
          onClick={() => {
            onPick(e)
            onClose()
          }}
        >
          {e}
        </button>
      ))}
    </div>
  )
}
