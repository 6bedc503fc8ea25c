"""What each provider takes in one MMS (count, sizes, types), checked when a send is
accepted, before anything is reserved, so a file the provider would refuse costs nothing.

Sources: Twilio's Messages API (up to 10 `MediaUrl`, 5 MB in all; JPEG, PNG and GIF are
formatted for the handset, other types such as video, PDF and vCard are passed on);
MessageMedia's Messages API (`media` URLs with `format: MMS`, `subject` up to 64
characters; images); Sinch's SMS REST API MMS support (`mt_media`, one `body.url`: jpg,
png, gif, mp4, vCard, PDF). Where a provider publishes no size, Twilio's 5 MB total is used
(carriers transcode what they forward)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tenants.media.store import LABELS


@dataclass(frozen=True)
class MediaLimits:
    provider: str  # the provider's name, for the messages people read
    max_files: int
    max_file_bytes: int
    max_total_bytes: int
    types: frozenset[str]
    subject: bool = True


ALL_TYPES = frozenset(LABELS)
MB = 1_000_000
LIMITS: dict[str, MediaLimits] = {
    "simulator": MediaLimits("the simulator", 10, 5 * MB, 5 * MB, ALL_TYPES),
    "twilio": MediaLimits("Twilio", 10, 5 * MB, 5 * MB, ALL_TYPES),
    "messagemedia": MediaLimits(
        "MessageMedia", 10, 5 * MB, 5 * MB, frozenset({"image/jpeg", "image/png", "image/gif"})
    ),
    "sinch_sms": MediaLimits(
        "Sinch SMS",
        1,
        5 * MB,
        5 * MB,
        frozenset(
            {"image/jpeg", "image/png", "image/gif", "video/mp4", "text/vcard", "application/pdf"}
        ),
        subject=False,
    ),
}


@dataclass(frozen=True)
class Candidate:
    """One file of a send as the limits see it."""

    content_type: str
    size: int


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB"


def media_problem(limits: MediaLimits, files: Sequence[Candidate]) -> str | None:
    """Why `limits`' provider would refuse these files, or None when it takes them."""
    if not files:
        return "An MMS needs at least one image, video or document."
    if len(files) > limits.max_files:
        return f"{limits.provider} takes at most {limits.max_files} file(s) per MMS."
    for position, item in enumerate(files, start=1):
        if item.content_type not in limits.types:
            kinds = ", ".join(sorted(LABELS[t] for t in limits.types))
            label = LABELS.get(item.content_type, item.content_type)
            return f"File {position} is a {label}; {limits.provider} takes {kinds}."
        if item.size > limits.max_file_bytes:
            return f"File {position} is over {_mb(limits.max_file_bytes)} ({limits.provider})."
    total = sum(item.size for item in files)
    if total > limits.max_total_bytes:
        return f"The files come to {_mb(total)}; {limits.provider} takes {_mb(limits.max_total_bytes)} in all."
    return None
