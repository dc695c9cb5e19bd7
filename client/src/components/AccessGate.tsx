// The screens between a link and the room: the password prompt, the lobby's waiting screen,
// the recording consent question, and the full-page ends (refused, removed, meeting ended).
import { useState } from 'react'
import { useTranslation } from 'react-i18next'
import type { ConsentChoice, Gate } from '../hooks/useWebRTC'

/** Refusals that may not hold a moment later. */
const RETRYABLE = ['room_full']

export function AccessGate({
  gate,
  roomId,
  busy,
  onPassword,
  onConsent,
  onLeave,
  onHome,
  onRetry,
}: {
  gate: Gate
  roomId: string
  /** A password was sent and its answer is awaited. */
  busy: boolean
  onPassword: (password: string) => void
  onConsent: (choice: ConsentChoice) => void
  onLeave: () => void
  onHome: () => void
  /** Try the same link again (a full meeting may have a seat now). */
  onRetry?: () => void
}) {
  const { t } = useTranslation()
  switch (gate.kind) {
    case 'password':
      return <PasswordPrompt key={gate.error + (gate.text ?? '')} gate={gate} roomId={roomId} busy={busy} onPassword={onPassword} onLeave={onLeave} />
    case 'lobby':
      return (
        <main className="page center" data-testid="lobby-waiting">
          <h1>{t('gate.waiting')}</h1>
          <p className="muted">{t('gate.locked')}</p>
          <button type="button" onClick={onLeave} data-testid="lobby-leave">
            {t('common.leave')}
          </button>
        </main>
      )
    case 'consent':
      return (
        <main className="page center" data-testid="recording-consent">
          <div className="card consent-card" role="dialog" aria-labelledby="consent-title">
            <h1 id="consent-title">{t('gate.consentTitle')}</h1>
            <p data-testid="recording-consent-text">
              {gate.startedByName ? t('gate.startedBy', { name: gate.startedByName }) : t('gate.running')} {t('gate.notSent')}
            </p>
            <div className="consent-actions">
              <button type="button" onClick={() => onConsent('media')} data-testid="consent-join-media">
                {t('gate.joinMedia')}
              </button>
              <button type="button" onClick={() => onConsent('muted')} data-testid="consent-join-muted">
                {t('gate.joinMuted')}
              </button>
              <button type="button" className="leave" onClick={() => onConsent('leave')} data-testid="consent-leave">
                {t('common.leave')}
              </button>
            </div>
          </div>
        </main>
      )
    case 'page':
      return (
        <main className="page center" data-testid="access-page" data-reason={gate.reason}>
          <h1 data-testid="access-page-title">{gate.title}</h1>
          <p data-testid="access-page-text">{gate.text}</p>
          <div className="consent-actions">
            {RETRYABLE.includes(gate.reason) && onRetry && (
              <button type="button" onClick={onRetry} data-testid="access-retry">
                {t('common.tryAgain')}
              </button>
            )}
            <a
              href="/"
              onClick={(e) => {
                e.preventDefault()
                onHome()
              }}
              data-testid="access-home-link"
            >
              {t('common.goHome')}
            </a>
          </div>
        </main>
      )
  }
}

function PasswordPrompt({
  gate,
  roomId,
  busy,
  onPassword,
  onLeave,
}: {
  gate: Extract<Gate, { kind: 'password' }>
  roomId: string
  busy: boolean
  onPassword: (password: string) => void
  onLeave: () => void
}) {
  const { t } = useTranslation()
  const [password, setPassword] = useState('')
  return (
    <main className="page center" data-testid="password-prompt">
      <h1>{t('gate.needsPassword', { id: roomId })}</h1>
      <form
        className="card join-form"
        onSubmit={(e) => {
          e.preventDefault()
          if (password) onPassword(password)
        }}
      >
        <label className="field">
          {t('common.password')}
          <input
            type="password"
            aria-label={t('common.meetingPassword')}
            autoFocus
            autoComplete="off"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            data-testid="password-input"
          />
        </label>
        {gate.text && (
          <p className="error" role="alert" data-testid="password-error" data-error={gate.error}>
            {gate.text}
          </p>
        )}
        <div className="consent-actions">
          <button type="submit" disabled={!password || busy} data-testid="password-submit">
            {t('common.join')}
          </button>
          <button type="button" className="leave" onClick={onLeave} data-testid="password-leave">
            {t('common.leave')}
          </button>
        </div>
      </form>
    </main>
  )
}
