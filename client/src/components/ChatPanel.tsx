import { linkify } from '../lib/linkify'
import { useEffect, useRef, useState } from 'react'
import { useTranslation } from 'react-i18next'
import type { ChatMessage } from '../services/protocol'

function time(ts: number): string {
  const d = new Date(ts)
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`
}

export function ChatPanel({
  messages,
  selfId,
  onSend,
  onClose,
  maxLength = 1000,
  canSend = true,
}: {
  messages: ChatMessage[]
  selfId: string | null
  onSend: (text: string) => Promise<boolean>
  onClose: () => void
  maxLength?: number
  /** False: this participant may read the chat but not write (no chat grant). */
  canSend?: boolean
}) {
  const { t } = useTranslation()
  const [text, setText] = useState('')
  const listRef = useRef<HTMLOListElement>(null)
  useEffect(() => {
    const el = listRef.current
    if (el) el.scrollTop = el.scrollHeight
  }, [messages.length])

  return (
    <aside className="panel chat-panel" aria-label={t('chat.title')}>
      <header className="panel-head">
        <h2>{t('chat.title')}</h2>
        <button type="button" className="icon-btn" onClick={onClose} aria-label={t('chat.close')} autoFocus={!canSend}>
          ✕
        </button>
      </header>
      <ol className="chat-list" ref={listRef} data-testid="chat-list">
        {messages.length === 0 && <li className="muted">{t('chat.empty')}</li>}
        {messages.map((m) => (
          <li key={m.id} className={`chat-msg${m.userId === selfId ? ' own' : ''}`} data-testid="chat-message">
            <div className="chat-meta">
              <span className="chat-author">{m.userName}</span>
              <span className="chat-time">{time(m.timestamp)}</span>
            </div>
            <div className="chat-text">
              {linkify(m.message).map((part, i) =>
                part.href ? (
                  <a key={i} href={part.href} target="_blank" rel="noopener noreferrer" data-testid="chat-link">
                    {part.text}
                  </a>
                ) : (
                  <span key={i}>{part.text}</span>
                ),
              )}
            </div>
          </li>
        ))}
      </ol>
      {!canSend && (
        <p className="muted small chat-readonly" data-testid="chat-readonly">
          {t('chat.readOnly')}
        </p>
      )}
      {canSend && (<form
        className="chat-form"
        onSubmit={async (e) => {
          e.preventDefault()
          const value = text
          if (!value.trim()) return
          setText('')
          const ok = await onSend(value)
          if (!ok) setText(value)
        }}
      >
        <input
          aria-label={t('chat.message')}
          autoFocus
          placeholder={t('chat.placeholder')}
          value={text}
          maxLength={maxLength}
          onChange={(e) => setText(e.target.value)}
        />
        <button type="submit" disabled={!text.trim()}>
          {t('chat.send')}
        </button>
      </form>)}
    </aside>
  )
}
