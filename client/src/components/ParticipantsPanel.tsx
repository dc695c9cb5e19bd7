import { CameraIcon, MicIcon, ScreenIcon } from './Icons'
import type { Participant } from '../state/room'
import type { PeerState } from '../services/transport'

export function ParticipantsPanel({
  participants,
  peerStates,
  onClose,
}: {
  participants: Participant[]
  peerStates: Record<string, PeerState>
  onClose: () => void
}) {
  return (
    <aside className="panel participants-panel" aria-label="Participants">
      <header className="panel-head">
        <h2>Participants ({participants.length})</h2>
        <button type="button" className="icon-btn" onClick={onClose} aria-label="Close participants">
          ✕
        </button>
      </header>
      <ul className="participant-list">
        {participants.map((p) => (
          <li key={p.userId} data-testid="participant" data-user-id={p.userId}>
            <span className="participant-name">
              {p.userName}
              {p.isLocal ? ' (you)' : ''}
            </span>
            <span className="participant-icons">
              <span title={p.media.audio ? 'Microphone on' : 'Microphone off'}><MicIcon off={!p.media.audio} /></span>
              <span title={p.media.video ? 'Camera on' : 'Camera off'}><CameraIcon off={!p.media.video} /></span>
              {p.media.screen && <span title="Sharing the screen"><ScreenIcon /></span>}
              {!p.isLocal && peerStates[p.userId] && peerStates[p.userId] !== 'connected' && (
                <span className="muted small">{peerStates[p.userId]}</span>
              )}
            </span>
          </li>
        ))}
      </ul>
    </aside>
  )
}
