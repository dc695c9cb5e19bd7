import type { ReactNode, Ref } from 'react'

/** A button of the meeting's toolbar (#18): an icon, its label as the accessible name and as a
 * tooltip shown on hover and on keyboard focus (in the phone's More menu, beside the icon). */
export function ToolbarButton({
  label,
  icon,
  testId,
  onClick,
  className = '',
  pressed,
  expanded,
  controls,
  disabled = false,
  hint,
  badge,
  ref,
}: {
  /** The accessible name and the tooltip, e.g. "Mute". */
  label: string
  icon: ReactNode
  testId: string
  onClick: () => void
  className?: string
  /** A toggle's state (aria-pressed); undefined for plain actions. */
  pressed?: boolean
  expanded?: boolean
  controls?: string
  disabled?: boolean
  /** Why it is disabled, or a longer explanation: added to the tooltip. */
  hint?: string
  /** Shown over the icon (the unread count): part of the name via ``label``. */
  badge?: ReactNode
  ref?: Ref<HTMLButtonElement>
}) {
  return (
    <button
      ref={ref}
      type="button"
      className={`tool-btn${className ? ` ${className}` : ''}`}
      onClick={onClick}
      aria-label={label}
      aria-pressed={pressed}
      aria-expanded={expanded}
      aria-controls={controls}
      aria-description={hint}
      disabled={disabled}
      data-testid={testId}
    >
      {icon}
      {badge}
      <span className="tool-tip" role="tooltip">
        {hint ? `${label}: ${hint}` : label}
      </span>
    </button>
  )
}
