import { useState } from 'react'
import { CameraIcon, MicIcon, ScreenIcon } from './Icons'
import type { Participant } from '../state/room'
import type { PeerState } from '../services/transport'
import type { Role } from '../services/protocol'

/** What a moderator can do from the panel (useWebRTC's `moderation`). */
export interface ModerationActions {
  setRole: (userId: string, role: Role) => Promise<boolean>
  mute: (userId: string, kind: 'audio' | 'video') => Promise<boolean>
  stopScreenShare: (userId: string) => Promise<boolean>
  remove: (userId: string, reason?: string) => Promise<boolean>
  lock: (locked: boolean) => Promise<boolean>
  endMeeting: () => Promise<boolean>
}

export function ParticipantsPanel({
  participants,
  hands,
  peerStates,
  onClose,
  canModerate = false,
  locked = false,
  actions,
}: {
  participants: Participant[]
  /** Place of each raised hand in the line (1 = first). */
  hands?: Map<string, number>
  peerStates: Record<string, PeerState>
  onClose: () => void
  canModerate?: boolean
  locked?: boolean
  actions?: ModerationActions
}) {
  const [removing, setRemoving] = useState<string | null>(null)
  const [reason, setReason] = useState('')
  const [confirmEnd, setConfirmEnd] = useState(false)
  const moderate = canModerate && !!actions
  return (
    <aside className="panel participants-panel" aria-label="Participants">
      <header className="panel-head">
        <h2>Participants ({participants.length})</h2>
        <button type="button" className="icon-btn" onClick={onClose} aria-label="Close participants" autoFocus>
          ✕
        </button>
      </header>
      {moderate && (
        <div className="room-actions" data-testid="room-actions">
          <button type="button" onClick={() => void actions.lock(!locked)} aria-pressed={locked} data-testid="lock-room">
            {locked ? 'Unlock meeting' : 'Lock meeting'}
          </button>
          {confirmEnd ? (
            <>
              <button type="button" className="leave" onClick={() => void actions.endMeeting()} data-testid="end-meeting-confirm">
                End for everyone
              </button>
              <button type="button" onClick={() => setConfirmEnd(false)} data-testid="end-meeting-cancel">
                Cancel
              </button>
            </>
          ) : (
            <button type="button" className="leave" onClick={() => setConfirmEnd(true)} data-testid="end-meeting">
              End meeting for all
            </button>
          )}
        </div>
      )}
      <ul className="participant-list">
        {participants.map((p) => (
          <li key={p.userId} data-testid="participant" data-user-id={p.userId} data-name={p.userName} data-role={p.role}>
            <span className="participant-name">
              {p.userName}
              {p.isLocal ? ' (you)' : ''}
              {p.role === 'moderator' && (
                <span className="badge role-badge" data-testid="role-badge">
                  Moderator
                </span>
              )}
            </span>
            <span className="participant-icons">
              {hands?.has(p.userId) && (
                <span className="badge hand-badge" data-testid="participant-hand" title="Hand raised">
                  ✋ {hands.get(p.userId)}
                </span>
              )}
              <span title={p.media.audio ? 'Microphone on' : 'Microphone off'}><MicIcon off={!p.media.audio} /></span>
              <span title={p.media.video ? 'Camera on' : 'Camera off'}><CameraIcon off={!p.media.video} /></span>
              {p.media.screen && <span title="Sharing the screen"><ScreenIcon /></span>}
              {!p.isLocal && peerStates[p.userId] && peerStates[p.userId] !== 'connected' && (
                <span className="muted small">{peerStates[p.userId]}</span>
              )}
            </span>
            {moderate && !p.isLocal && (
              <div className="participant-actions" data-testid="participant-actions">
                {p.role === 'moderator' ? (
                  <button type="button" onClick={() => void actions.setRole(p.userId, 'participant')} data-testid="make-participant">
                    Remove moderator role
                  </button>
                ) : (
                  <button type="button" onClick={() => void actions.setRole(p.userId, 'moderator')} data-testid="make-moderator">
                    Make moderator
                  </button>
                )}
                {p.media.audio && (
                  <button type="button" onClick={() => void actions.mute(p.userId, 'audio')} data-testid="ask-mute-audio">
                    Mute
                  </button>
                )}
                {p.media.video && (
                  <button type="button" onClick={() => void actions.mute(p.userId, 'video')} data-testid="ask-mute-video">
                    Stop video
                  </button>
                )}
                {p.media.screen && (
                  <button type="button" onClick={() => void actions.stopScreenShare(p.userId)} data-testid="stop-share">
                    Stop screen share
                  </button>
                )}
                {removing === p.userId ? (
                  <form
                    className="remove-form"
                    onSubmit={(e) => {
                      e.preventDefault()
                      void actions.remove(p.userId, reason.trim() || undefined)
                      setRemoving(null)
                      setReason('')
                    }}
                  >
                    <input
                      aria-label={`Why remove ${p.userName}`}
                      placeholder="Reason (shown to them)"
                      value={reason}
                      maxLength={200}
                      onChange={(e) => setReason(e.target.value)}
                      data-testid="remove-reason"
                      autoFocus
                    />
                    <button type="submit" className="leave" data-testid="remove-confirm">
                      Remove
                    </button>
                    <button type="button" onClick={() => setRemoving(null)} data-testid="remove-cancel">
                      Cancel
                    </button>
                  </form>
                ) : (
                  <button type="button" className="leave" onClick={() => setRemoving(p.userId)} data-testid="remove-participant">
                    Remove
                  </button>
                )}
              </div>
            )}
          </li>
        ))}
      </ul>
    </aside>
  )
}
