export const EMOJIS = ['👍', '👏', '😂', '❤️', '🎉', '😮', '🤔', '👋']

export function EmojiPicker({ onPick, onClose }: { onPick: (emoji: string) => void; onClose: () => void }) {
  return (
    <div className="emoji-picker" role="menu" aria-label="Reactions">
      {EMOJIS.map((e) => (
        <button
          key={e}
          type="button"
          role="menuitem"
          className="emoji-btn"
          aria-label={`React ${e}`}
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
