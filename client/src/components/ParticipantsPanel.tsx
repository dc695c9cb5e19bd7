import { useState } from 'react'
import { useTranslation } from 'react-i18next'
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
  const { t } = useTranslation()
  const [removing, setRemoving] = useState<string | null>(null)
  const [reason, setReason] = useState('')
  const [confirmEnd, setConfirmEnd] = useState(false)
  const moderate = canModerate && !!actions
  return (
    <aside className="panel participants-panel" aria-label={t('participants.label')}>
      <header className="panel-head">
        <h2>{t('participants.title', { count: participants.length })}</h2>
        <button type="button" className="icon-btn" onClick={onClose} aria-label={t('participants.close')} autoFocus>
          ✕
        </button>
      </header>
      {moderate && (
        <div className="room-actions" data-testid="room-actions">
          <button type="button" onClick={() => void actions.lock(!locked)} aria-pressed={locked} data-testid="lock-room">
            {locked ? t('participants.unlock') : t('participants.lock')}
          </button>
          {confirmEnd ? (
            <>
              <button type="button" className="leave" onClick={() => void actions.endMeeting()} data-testid="end-meeting-confirm">
                {t('participants.endForEveryone')}
              </button>
              <button type="button" onClick={() => setConfirmEnd(false)} data-testid="end-meeting-cancel">
                {t('common.cancel')}
              </button>
            </>
          ) : (
            <button type="button" className="leave" onClick={() => setConfirmEnd(true)} data-testid="end-meeting">
              {t('participants.endMeeting')}
            </button>
          )}
        </div>
      )}
      <ul className="participant-list">
        {participants.map((p) => (
          <li key={p.userId} data-testid="participant" data-user-id={p.userId} data-name={p.userName} data-role={p.role}>
            <span className="participant-name">
              {p.isLocal ? t('common.you', { name: p.userName }) : p.userName}
              {p.role === 'moderator' && (
                <span className="badge role-badge" data-testid="role-badge">
                  {t('common.moderator')}
                </span>
              )}
            </span>
            <span className="participant-icons">
              {hands?.has(p.userId) && (
                <span className="badge hand-badge" data-testid="participant-hand" title={t('common.handRaised')}>
                  ✋ {hands.get(p.userId)}
                </span>
              )}
              <span title={p.media.audio ? t('common.microphoneOn') : t('common.microphoneOff')}><MicIcon off={!p.media.audio} /></span>
              <span title={p.media.video ? t('common.cameraOn') : t('common.cameraOff')}><CameraIcon off={!p.media.video} /></span>
              {p.media.screen && <span title={t('participants.sharingScreen')}><ScreenIcon /></span>}
              {!p.isLocal && peerStates[p.userId] && peerStates[p.userId] !== 'connected' && (
                <span className="muted small">{t(`participants.peer.${peerStates[p.userId]}`)}</span>
              )}
            </span>
            {moderate && !p.isLocal && (
              <div className="participant-actions" data-testid="participant-actions">
                {p.role === 'moderator' ? (
                  <button type="button" onClick={() => void actions.setRole(p.userId, 'participant')} data-testid="make-participant">
                    {t('participants.demote')}
                  </button>
                ) : (
                  <button type="button" onClick={() => void actions.setRole(p.userId, 'moderator')} data-testid="make-moderator">
                    {t('participants.promote')}
                  </button>
                )}
                {p.media.audio && (
                  <button type="button" onClick={() => void actions.mute(p.userId, 'audio')} data-testid="ask-mute-audio">
                    {t('participants.mute')}
                  </button>
                )}
                {p.media.video && (
                  <button type="button" onClick={() => void actions.mute(p.userId, 'video')} data-testid="ask-mute-video">
                    {t('participants.stopVideo')}
                  </button>
                )}
                {p.media.screen && (
                  <button type="button" onClick={() => void actions.stopScreenShare(p.userId)} data-testid="stop-share">
                    {t('participants.stopShare')}
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
                      aria-label={t('participants.whyRemove', { name: p.userName })}
                      placeholder={t('participants.reason')}
                      value={reason}
                      maxLength={200}
                      onChange={(e) => setReason(e.target.value)}
                      data-testid="remove-reason"
                      autoFocus
                    />
                    <button type="submit" className="leave" data-testid="remove-confirm">
                      {t('participants.remove')}
                    </button>
                    <button type="button" onClick={() => setRemoving(null)} data-testid="remove-cancel">
                      {t('common.cancel')}
                    </button>
                  </form>
                ) : (
                  <button type="button" className="leave" onClick={() => setRemoving(p.userId)} data-testid="remove-participant">
                    {t('participants.remove')}
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
