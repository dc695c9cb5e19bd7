// Moderators: who knocks on the locked meeting, with Admit and Deny.
import { useTranslation } from 'react-i18next'
import type { LobbyRequest } from '../services/protocol'

export function LobbyPanel({
  requests,
  onAdmit,
  onDeny,
}: {
  requests: LobbyRequest[]
  onAdmit: (requestId: string) => void
  onDeny: (requestId: string) => void
}) {
  const { t } = useTranslation()
  if (!requests.length) return null
  return (
    <section className="lobby-panel" aria-label={t('lobby.label')} data-testid="lobby-panel">
      <h2>{t('lobby.title', { count: requests.length })}</h2>
      <ul>
        {requests.map((r) => (
          <li key={r.requestId} data-testid="lobby-request" data-request-id={r.requestId} data-name={r.userName}>
            <span className="participant-name">{r.userName}</span>
            <button type="button" onClick={() => onAdmit(r.requestId)} data-testid="lobby-admit">
              {t('lobby.admit')}
            </button>
            <button type="button" className="leave" onClick={() => onDeny(r.requestId)} data-testid="lobby-deny">
              {t('lobby.deny')}
            </button>
          </li>
        ))}
      </ul>
    </section>
  )
}
