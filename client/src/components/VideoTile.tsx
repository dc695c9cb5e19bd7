import { useEffect, useRef, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { SPEAKING_THRESHOLD, watchAudioLevel } from '../services/media'
import type { EmojiReaction, MediaState } from '../services/protocol'
import type { TileHealth } from '../hooks/useMediaHealth'
import { FloatingEmoji } from './FloatingEmoji'
import { CameraIcon, MicIcon } from './Icons'

export const AUTOPLAY_BLOCKED_EVENT = 'sfu-autoplay-blocked'

/** Unmutes every remote video after a user gesture; returns whether all now play. */
export async function enableRemoteSound(): Promise<void> {
  const videos = document.querySelectorAll<HTMLVideoElement>('video[data-local="no"]')
  for (const v of videos) {
    v.muted = false
    await v.play().catch(() => undefined)
  }
}

export interface VideoTileProps {
  userId: string
  name: string
  stream: MediaStream | null
  media: MediaState
  isLocal: boolean
  /** Local camera preview is mirrored like a mirror; a shared screen never is. */
  mirrored: boolean
  reactions: EmojiReaction[]
  /** A remote tile's media status and connection quality (none for the local tile). */
  health?: TileHealth
  /** A local tile's note, e.g. while its publish connection is repaired. */
  localStatus?: string | null
  /** Place in the raised-hands queue (1 = first), or null when the hand is down. */
  hand?: number | null
  /** Where the layout puts the tile: the one grid, or the large stage and the strip beside it. */
  place?: 'grid' | 'stage' | 'strip'
  /** Fill the tile (crop the picture) instead of showing it whole (letterboxed). */
  crop?: boolean
  pinned?: boolean
  onPin?: () => void
  /** Told when this tile's person starts or stops speaking (speaker view). */
  onSpeaking?: (userId: string, speaking: boolean) => void
  /** The speakers a remote tile's sound plays on (setSinkId); unset: the default. */
  outputId?: string
  /** This person records the meeting in their browser (as their app says). */
  recordingLocally?: boolean
  /** Not on the grid's current page: hidden, its sound still playing. */
  offPage?: boolean
}

function initials(name: string): string {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => [...w][0]?.toUpperCase() ?? '')
    .join('')
}

export function VideoTile({
  userId,
  name,
  stream,
  media,
  isLocal,
  mirrored,
  reactions,
  health,
  localStatus,
  hand = null,
  place = 'grid',
  crop = false,
  pinned = false,
  onPin,
  onSpeaking,
  outputId,
  recordingLocally = false,
  offPage = false,
}: VideoTileProps) {
  const { t } = useTranslation()
  const videoRef = useRef<HTMLVideoElement>(null)
  const [speaking, setSpeaking] = useState(false)

  useEffect(() => {
    const v = videoRef.current
    if (!v) return
    if (v.srcObject !== stream) v.srcObject = stream
    if (!stream) return
    v.play().catch((err: { name?: string }) => {
      // Autoplay with sound needs a user gesture (e.g. a room link opened directly): play
      // muted for now and let the room offer an "Enable sound" button.
      if (err?.name !== 'NotAllowedError' || isLocal) return
      v.muted = true
      void v.play().catch(() => undefined)
      window.dispatchEvent(new Event(AUTOPLAY_BLOCKED_EVENT))
    })
  }, [stream, isLocal])

  useEffect(() => {
    const v = videoRef.current as (HTMLVideoElement & { setSinkId?: (id: string) => Promise<void> }) | null
    if (!v || isLocal || !outputId || !v.setSinkId) return
    v.setSinkId(outputId).catch(() => undefined) // a device unplugged meanwhile: the default plays
  }, [outputId, isLocal])

  const audioTrackId = stream?.getAudioTracks()[0]?.id
  useEffect(() => {
    if (!stream || !audioTrackId) return
    let last = false
    const stop = watchAudioLevel(stream, (level) => {
      const now = level > SPEAKING_THRESHOLD
      if (now !== last) {
        last = now
        setSpeaking(now)
      }
    })
    return () => {
      stop()
      setSpeaking(false)
    }
  }, [stream, audioTrackId])

  const isSpeaking = speaking && media.audio
  useEffect(() => {
    onSpeaking?.(userId, isSpeaking)
  }, [onSpeaking, userId, isSpeaking])
  const showVideo = (media.video || media.screen) && !!stream?.getVideoTracks().length
  const status = isLocal ? (localStatus ?? null) : (health?.message ?? null)

  return (
    <div
      className={`tile tile-${place}${isSpeaking ? ' speaking' : ''}${media.screen ? ' screen' : ''}${crop && !media.screen ? ' cropped' : ''}${offPage ? ' off-page' : ''}`}
      data-testid="video-tile"
      data-place={place}
      data-pinned={pinned ? 'yes' : 'no'}
      onDoubleClick={onPin}
      data-user-id={userId}
      data-name={name}
      data-audio={media.audio ? 'on' : 'off'}
      data-video={media.video ? 'on' : 'off'}
      data-screen={media.screen ? 'on' : 'off'}
      data-hand={hand !== null ? 'up' : 'down'}
      data-speaking={isSpeaking ? 'yes' : 'no'}
      data-media-status={health?.status}
      data-quality={health?.quality}
    >
      <video
        ref={videoRef}
        aria-label={name}
        data-user-id={userId}
        data-local={isLocal ? 'yes' : 'no'}
        autoPlay
        playsInline
        muted={isLocal}
        className={`${mirrored ? 'mirrored' : ''}${showVideo ? '' : ' hidden-video'}`}
      />
      {!showVideo && (
        <div className="avatar" aria-hidden="true">
          {initials(name) || '?'}
        </div>
      )}
      <div className="tile-bar">
        <span className="tile-name">
          {isLocal ? t('common.you', { name }) : name}
        </span>
        {media.screen && <span className="badge screen-badge">{t('videoTile.screen')}</span>}
        {recordingLocally && (
          <span className="badge local-rec-badge" data-testid="local-rec-badge" title={t('videoTile.recordingTitle')}>
            {t('videoTile.recording')}
          </span>
        )}
        {onPin && (
          <button
            type="button"
            className={`pin-btn${pinned ? ' active' : ''}`}
            onClick={onPin}
            aria-pressed={pinned}
            aria-label={pinned ? t('videoTile.unpinName', { name }) : t('videoTile.pinName', { name })}
            title={pinned ? t('videoTile.unpinTitle') : t('videoTile.pinTitle')}
            data-testid="pin-button"
          >
            📌
          </button>
        )}
        {hand !== null && (
          <span className="badge hand-badge" data-testid="hand-badge" role="img" aria-label={t('videoTile.handPlace', { place: hand })} title={t('common.handRaised')}>
            ✋ {hand}
          </span>
        )}
        {health && health.quality !== 'unknown' && (
          <span
            className={`quality quality-${health.quality}`}
            data-testid="quality"
            title={health.qualityText}
            aria-label={health.qualityText}
            role="img"
          >
            <span />
            <span />
            <span />
          </span>
        )}
        {/* Muted is written out on the tile, not only an icon and a label for screen readers. */}
        <span
          className={`icon ${media.audio ? 'on' : 'off muted-pill'}`}
          data-testid={media.audio ? 'mic-on' : 'mic-off'}
          title={media.audio ? t('common.microphoneOn') : t('common.microphoneOff')}
          role="img"
          aria-label={media.audio ? t('common.microphoneOn') : t('common.microphoneOff')}
        >
          <MicIcon off={!media.audio} />
          {!media.audio && <span className="muted-text">{t('videoTile.muted')}</span>}
        </span>
        <span
          className={`icon ${media.video ? 'on' : 'off'}`}
          data-testid={media.video ? 'camera-on' : 'camera-off'}
          title={media.video ? t('common.cameraOn') : t('common.cameraOff')}
          role="img"
          aria-label={media.video ? t('common.cameraOn') : t('common.cameraOff')}
        >
          <CameraIcon off={!media.video} />
        </span>
      </div>
      {status && (
        <div className={`tile-status status-${isLocal ? 'local' : health?.status}`} data-testid="tile-status" role="status">
          {status}
        </div>
      )}
      <div className="emoji-layer">
        {reactions.map((r) => (
          <FloatingEmoji key={r.id} reaction={r} />
        ))}
      </div>
    </div>
  )
}
