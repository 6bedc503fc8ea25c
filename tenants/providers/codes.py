"""What providers' own error codes mean, in words a customer can act on. Gateways keep a
provider's code as `<provider>:<code>` (e.g. `twilio:30003`) so nothing is lost in
translation; the message timeline explains it with these tables."""

from __future__ import annotations

# Sinch SMS REST API delivery report codes (0 is delivered; 4xx are Sinch's own codes,
# anything else is an operator's SMPP error code passed through).
SINCH_SMS: dict[str, str] = {
    "402": "Sinch could not route the message to any operator.",
    "403": "Sinch had an internal error and aborted the message.",
    "404": "The operator reported a temporary delivery failure and gave up.",
    "405": "A parameter of the message did not match (for example a template parameter).",
    "406": "The message expired inside Sinch before it could be delivered.",
    "407": "The message was cancelled before it reached the operator.",
    "408": "Sinch rejected the message (for example a blocked destination).",
    "410": "No default sender matches this destination; set a sender.",
    "411": "The message needs more parts than the limit allows.",
    "412": "The destination region is not enabled on the Sinch service plan.",
    "413": "The Sinch account is blocked.",
    "414": "The media URL could not be fetched (MMS).",
}

# Twilio Messages API error codes seen on submission and in status callbacks.
TWILIO: dict[str, str] = {
    "20003": "Twilio refused the account SID or auth token.",
    "20429": "Twilio asked us to slow down (too many requests).",
    "21211": "Twilio refused the number as not a valid phone number.",
    "21408": "Sending to this region is not enabled on the Twilio account.",
    "21606": "The sender is not a valid Twilio number or sender ID for this destination.",
    "21610": "The recipient replied STOP to this Twilio number; Twilio blocks messages to them.",
    "21612": "Twilio cannot route from this sender to this destination.",
    "21614": "The number is not a mobile number.",
    "21617": "The message body is longer than Twilio allows.",
    "30003": "The phone was off or unreachable.",
    "30004": "The message was blocked (by the recipient or their carrier).",
    "30005": "The number is unknown to its carrier or no longer in service.",
    "30006": "The number is a landline or its carrier cannot receive messages.",
    "30007": "The carrier filtered the message as spam or a violation.",
    "30008": "The carrier reported an unknown error.",
    "30034": "The sender number is not registered for this kind of traffic (A2P 10DLC).",
    "63016": "WhatsApp allows free text only within 24 hours of the customer's last message.",
}

# MessageMedia delivery report statuses that end a message without delivery.
MESSAGEMEDIA: dict[str, str] = {
    "undeliverable": "The network could not deliver the message to this number.",
    "expired": "The message expired before the network could deliver it.",
    "rejected": "The network rejected the message.",
    "failed": "The message failed to be delivered.",
    "400": "MessageMedia refused the message as invalid.",
}

# Sinch Conversation API delivery failure reasons not already in the platform's table.
SINCH_CONVERSATION: dict[str, str] = {
    "OUTSIDE_ALLOWED_SENDING_WINDOW": "WhatsApp allows free text only within 24 hours of the customer's last message.",
    "CHANNEL_FAILURE": "The channel (RCS, WhatsApp) failed to deliver the message.",
    "CHANNEL_REJECT": "The channel rejected the message.",
    "RECIPIENT_INVALID_CHANNEL_IDENTITY": "The number is not reachable on this channel.",
    "RECIPIENT_NOT_OPTED_IN": "The recipient has not opted in to this channel.",
    "NO_CHANNEL_IDENTITY_FOR_CONTACT": "The recipient has no identity on this channel.",
    "UNSUPPORTED_OPERATION": "The channel does not support this kind of message.",
    "INVALID_ARGUMENT": "Sinch refused the request as invalid.",
    "PERMISSION_DENIED": "Sinch refused the request for this app (permission denied).",
}

TABLES: dict[str, dict[str, str]] = {
    "sinch": {**SINCH_SMS, **SINCH_CONVERSATION},
    "twilio": TWILIO,
    "messagemedia": MESSAGEMEDIA,
}


# Provider codes that mean the recipient unsubscribed (replied STOP to the provider, which
# now blocks them, e.g. Twilio's Advanced Opt-Out): the platform records a provider opt-out.
OPT_OUT_CODES = frozenset({"twilio:21610"})


def means_opted_out(code: str | None) -> bool:
    return code in OPT_OUT_CODES


def provider_code(provider: str, code: object) -> str:
    """The stored form of a provider's code (at most 64 characters)."""
    return f"{provider}:{code}"[:64]


def explain_provider_code(code: str) -> str | None:
    provider, sep, raw = code.partition(":")
    if not sep:
        return None
    return TABLES.get(provider, {}).get(raw)


# Provider and platform error codes, in words a customer can act on.
ERROR_CODES: dict[str, str] = {
    "RECIPIENT_NOT_REACHABLE": "The phone was off or out of coverage until the network gave up.",
    "UNKNOWN_SUBSCRIBER": "The number is not in service on any network.",
    "ABSENT_SUBSCRIBER": "The phone has not been seen on its network for a long time.",
    "HANDSET_FULL": "The phone's message memory is full.",
    "BLOCKED_BY_CARRIER": "The recipient's carrier blocked the message (filtering or a block list).",
    "SPAM_FILTERED": "The carrier's spam filter stopped the message.",
    "EXPIRED": "The network could not deliver the message before it expired.",
    "INVALID_DESTINATION": "The provider refused the number as not a valid destination.",
    "INVALID_SENDER": "The provider refused the sender ID for this destination.",
    "CONTENT_REJECTED": "The provider refused the message text.",
    "PROVIDER_UNAVAILABLE": "The provider could not be reached after several attempts.",
    "CHANNEL_UNSUPPORTED": "The account's provider does not offer this channel.",
    "OPTED_OUT": "The recipient opted out before the message was sent, so it was not sent.",
    "OUTSIDE_SERVICE_WINDOW": "WhatsApp free text may go only within 24 hours of the person's last message to this sender; that window had closed when the message was due, so it was not sent (send an approved template instead).",
    "CANCELLED": "The send was cancelled before this message went out.",
    "PROVIDER_DISABLED": "The provider integration was switched off before this message went out.",
    "PROVIDER_AUTH_FAILED": "The provider refused the integration's credentials; nothing was sent.",
    "PROVIDER_REFUSED": "The provider refused the request for the whole integration (account or feature disabled).",
    "NO_DELIVERY_REPORT": "The provider took the message but never said whether it arrived, even when asked; it may or may not have been delivered.",
}


def explain_error(code: str | None) -> str:
    if not code:
        return ""
    if code in ERROR_CODES:
        return ERROR_CODES[code]
    return explain_provider_code(code) or "The provider reported this code without further detail."
