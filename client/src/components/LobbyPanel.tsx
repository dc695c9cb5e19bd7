// Moderators: who knocks on the locked meeting, with Admit and Deny.
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
  if (!requests.length) return null
  return (
    <section className="lobby-panel" aria-label="Waiting to join" data-testid="lobby-panel">
      <h2>Waiting to join ({requests.length})</h2>
      <ul>
        {requests.map((r) => (
          <li key={r.requestId} data-testid="lobby-request" data-request-id={r.requestId} data-name={r.userName}>
            <span className="participant-name">{r.userName}</span>
            <button type="button" onClick={() => onAdmit(r.requestId)} data-testid="lobby-admit">
              Admit
            </button>
            <button type="button" className="leave" onClick={() => onDeny(r.requestId)} data-testid="lobby-deny">
              Deny
            </button>
          </li>
        ))}
      </ul>
    </section>
  )
}
