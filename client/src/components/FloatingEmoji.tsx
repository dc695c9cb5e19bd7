import type { EmojiReaction } from '../services/protocol'

/** A reaction floating up over the sender's tile (removed by the room after a few seconds). */
export function FloatingEmoji({ reaction }: { reaction: EmojiReaction }) {
  // A stable horizontal offset per reaction so several reactions do not stack exactly.
  let h = 0
  for (const c of reaction.id) h = (h * 31 + c.charCodeAt(0)) % 997
  const left = 15 + (h % 70)
  return (
    <span
      className="floating-emoji"
      data-testid="floating-emoji"
      data-user-id={reaction.userId}
      style={{ left: `${left}%` }}
      title={`${reaction.userName}: ${reaction.emoji}`}
    >
      {reaction.emoji}
    </span>
  )
}
