"""The built-in provider simulator: an ASGI app the portal mounts at /simulator (loopback).

It accepts batches of messages, answers after a configurable latency, and later posts
status callbacks (sent, delivered, failed with error codes, rejected, read) to the
callback URL each submission names, with configurable rates, duplicate and reordered
callbacks. It records every submission per reference (our message id) for
GET /simulator/outbox, answers lookups by reference, and injects inbound messages.
Every endpoint needs the `X-Simulator-Secret` header (the outbox shows every tenant's
messages); `SIMULATOR_ENABLED=0` leaves it unmounted. Nothing leaves the machine. Its records live in the memory of the process serving it.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from litestar import Litestar, Request, Response, get, post

from tasks.gateways.simulator import portal_base_url, simulator_secret, verify_secret
from tenants.errors import PermissionDenied
from tenants.settings import get_settings

FAILURE_CODES = (
    "RECIPIENT_NOT_REACHABLE",
    "UNKNOWN_SUBSCRIBER",
    "ABSENT_SUBSCRIBER",
    "HANDSET_FULL",
    "EXPIRED",
)
OUTCOMES = ("delivered", "failed", "rejected", "read", "reject_submit")


@dataclass
class SimulatorConfig:
    latency_ms: float = 50.0  # answer time of each submission request
    callback_delay_ms: float = 200.0  # time from submission to the first callback
    delivered_rate: float = 0.95  # of accepted messages; the rest fail or are rejected
    failed_rate: float = 0.04
    rejected_rate: float = 0.01  # rejected by the network after acceptance (callback)
    submit_reject_rate: float = 0.0  # refused in the submission answer itself
    read_rate: float = 0.2  # of delivered messages (RCS / WhatsApp style read receipts)
    duplicate_rate: float = 0.05  # a callback posted twice
    reorder_rate: float = 0.05  # a message's callbacks posted in shuffled order
    seed: int | None = None
    outcomes: dict[str, str] = field(default_factory=dict)  # phone -> forced outcome

    @classmethod
    def from_settings(cls) -> SimulatorConfig:
        """The starting configuration (SIMULATOR_* settings)."""
        sim = get_settings().simulator
        return cls(
            latency_ms=sim.latency_ms,
            callback_delay_ms=sim.callback_delay_ms,
            delivered_rate=sim.delivered_rate,
            failed_rate=sim.failed_rate,
            rejected_rate=sim.rejected_rate,
            submit_reject_rate=sim.submit_reject_rate,
            read_rate=sim.read_rate,
            duplicate_rate=sim.duplicate_rate,
            reorder_rate=sim.reorder_rate,
        )

    def update(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name == "outcomes":
                if not isinstance(value, dict) or any(v not in OUTCOMES for v in value.values()):
                    raise ValueError(f"outcomes: each must be one of {', '.join(OUTCOMES)}")
                self.outcomes = {str(k): str(v) for k, v in value.items()}
            elif name == "seed":
                self.seed = None if value is None else int(value)
            elif name in self.__dataclass_fields__:
                setattr(self, name, float(value))
            else:
                raise ValueError(f"unknown setting {name!r}")


@dataclass
class Record:
    message_id: str
    to: str
    sender: str
    body: str
    channel: str
    provider_ref: str
    submissions: int = 1
    accepted: bool = True
    outcome: str = ""  # the last status its callbacks report


@dataclass(order=True)
class PendingCallback:
    due: float
    seq: int
    url: str = field(compare=False)
    event: dict[str, Any] = field(compare=False)


class Simulator:
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig.from_settings()
        self.records: dict[str, Record] = {}
        self.pending: list[PendingCallback] = []
        self.posted_callbacks = 0
        self.callback_transport: httpx.AsyncBaseTransport | None = None
        self._lock = threading.Lock()
        self._seq = 0
        self._random = random.Random(self.config.seed)
        self._flushers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    def reset(self) -> None:
        with self._lock:
            self.records.clear()
            self.pending.clear()
            self.posted_callbacks = 0
            self.config = SimulatorConfig.from_settings()
            self._random = random.Random(self.config.seed)

    def stop_flushers(self) -> None:
        """Cancel the callback flushers of every event loop (tests, shutdown)."""
        for loop, task in list(self._flushers.items()):
            if not task.done() and not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)
        self._flushers.clear()
        self._clients.clear()

    def configure(self, values: dict[str, Any]) -> None:
        with self._lock:
            self.config.update(values)
            if "seed" in values:
                self._random = random.Random(self.config.seed)

    # --- submissions ----------------------------------------------------------------

    async def submit(
        self, messages: list[dict[str, Any]], callback_url: str
    ) -> list[dict[str, Any]]:
        await asyncio.sleep(self.config.latency_ms / 1000)
        results = []
        with self._lock:
            for item in messages:
                results.append(self._accept(item, callback_url))
        self._ensure_flusher()
        return results

    def _accept(self, item: dict[str, Any], callback_url: str) -> dict[str, Any]:
        reference = str(item["reference"])
        known = self.records.get(reference)
        if known is not None:
            # Idempotent by reference: counted, answered as before, not sent again.
            known.submissions += 1
            return self._answer(known)
        forced = self.config.outcomes.get(str(item.get("to", "")))
        refuse = forced == "reject_submit" or (
            forced is None and self._random.random() < self.config.submit_reject_rate
        )
        record = Record(
            message_id=reference,
            to=str(item.get("to", "")),
            sender=str(item.get("from", "")),
            body=str(item.get("body", "")),
            channel=str(item.get("channel", "sms")),
            provider_ref="sim_" + secrets.token_hex(8),
            accepted=not refuse,
        )
        self.records[reference] = record
        if record.accepted:
            self._schedule(record, forced, callback_url)
        return self._answer(record)

    @staticmethod
    def _answer(record: Record) -> dict[str, Any]:
        if record.accepted:
            return {
                "reference": record.message_id,
                "accepted": True,
                "provider_ref": record.provider_ref,
            }
        return {
            "reference": record.message_id,
            "accepted": False,
            "provider_ref": record.provider_ref,
            "error_code": "INVALID_DESTINATION",
        }

    def _schedule(self, record: Record, forced: str | None, url: str) -> None:
        cfg, rnd = self.config, self._random
        outcome = forced
        if outcome is None:
            roll = rnd.random()
            if roll < cfg.rejected_rate:
                outcome = "rejected"
            elif roll < cfg.rejected_rate + cfg.failed_rate:
                outcome = "failed"
            else:
                # Read receipts exist on RCS and WhatsApp, not on SMS or MMS.
                readable = record.channel in ("rcs", "whatsapp")
                outcome = "read" if readable and rnd.random() < cfg.read_rate else "delivered"
        statuses = ["sent"]
        if outcome == "read":
            statuses += ["delivered", "read"]
        else:
            statuses.append(outcome)
        record.outcome = statuses[-1]
        events = []
        for status in statuses:
            event: dict[str, Any] = {
                "event_id": f"{record.provider_ref}:{status}",
                "message_id": record.message_id,
                "provider_ref": record.provider_ref,
                "status": status,
            }
            if status == "failed":
                event["error_code"] = rnd.choice(FAILURE_CODES)
            if status == "rejected":
                event["error_code"] = "BLOCKED_BY_CARRIER"
            events.append(event)
        if rnd.random() < cfg.reorder_rate:
            rnd.shuffle(events)
        if rnd.random() < cfg.duplicate_rate:
            events.append(dict(rnd.choice(events)))
        loop_now = _monotonic()
        step = cfg.callback_delay_ms / 1000
        for index, event in enumerate(events):
            self._seq += 1
            due = loop_now + step * (1 + index * 0.5)
            self.pending.append(PendingCallback(due, self._seq, url, event))

    def lookup(self, references: list[str]) -> dict[str, str]:
        with self._lock:
            return {
                ref: self.records[ref].provider_ref
                for ref in references
                if ref in self.records and self.records[ref].accepted
            }

    def statuses(self, references: list[str]) -> dict[str, dict[str, str]]:
        """Where the accepted messages among `references` end, as their callbacks say."""
        with self._lock:
            found = [self.records[r] for r in references if r in self.records]
            return {
                r.message_id: {"status": r.outcome, "provider_ref": r.provider_ref}
                for r in found
                if r.accepted and r.outcome
            }

    def outbox(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "message_id": int(r.message_id)
                    if r.message_id.isascii() and r.message_id.isdigit()
                    else r.message_id,
                    "to": r.to,
                    "from": r.sender,
                    "body": r.body,
                    "submissions": r.submissions,
                    "accepted": r.accepted,
                    "provider_ref": r.provider_ref,
                }
                for r in self.records.values()
            ]

    # --- callbacks -------------------------------------------------------------------

    def _take_due(self, everything: bool) -> list[PendingCallback]:
        with self._lock:
            moment = _monotonic()
            due = [p for p in self.pending if everything or p.due <= moment]
            if due:
                taken = {id(p) for p in due}
                self.pending = [p for p in self.pending if id(p) not in taken]
        return sorted(due)

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                transport=self.callback_transport,
                timeout=30.0,
                headers={"X-Simulator-Secret": simulator_secret()},
            )
            self._clients[loop] = client
        return client

    async def flush(self, *, everything: bool = False) -> int:
        """Post the callbacks that are due (or all of them), batched per callback URL."""
        due = self._take_due(everything)
        by_url: dict[str, list[dict[str, Any]]] = {}
        stamp = datetime.now(UTC).isoformat()
        for item in due:
            # The event happened when the network reports it, in posting order.
            item.event.setdefault("at", stamp)
            by_url.setdefault(item.url, []).append(item.event)
        posted = 0
        for url, events in by_url.items():
            for start in range(0, len(events), 500):
                part = events[start : start + 500]
                try:
                    response = await self._client().post(url, json=part)
                    response.raise_for_status()
                    posted += len(part)
                except httpx.HTTPError:
                    # The portal is restarting or busy: keep the events and try again.
                    retry_at = _monotonic() + 1.0
                    with self._lock:
                        for event in part:
                            self._seq += 1
                            self.pending.append(PendingCallback(retry_at, self._seq, url, event))
        self.posted_callbacks += posted
        return posted

    def _ensure_flusher(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._flushers.get(loop)
        if task is None or task.done():
            self._flushers[loop] = loop.create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        # Ends after a second with nothing to post; the next submission starts it again.
        idle = 0
        while idle < 20:
            await asyncio.sleep(0.05)
            if self.pending:
                idle = 0
                await self.flush()
            else:
                idle += 1

    async def inject_inbound(self, message: dict[str, Any]) -> httpx.Response:
        """Post an inbound message to the portal as a phone would have sent it."""
        return await self._client().post(
            f"{portal_base_url()}/hooks/simulator/inbound", json=message
        )


def _monotonic() -> float:
    import time

    return time.monotonic()


SIMULATOR = Simulator()


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None


def _check(request: Request[Any, Any, Any]) -> Response[Any] | None:
    try:
        verify_secret(request.headers)
    except PermissionDenied:
        return Response({"code": "forbidden", "message": "bad X-Simulator-Secret"}, status_code=403)
    return None


@post("/api/messages", status_code=200)
async def submit_messages(request: Request[Any, Any, Any]) -> Response[Any]:
    if (denied := _check(request)) is not None:
        return denied
    data = _json_body(await request.body())
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        return Response({"code": "invalid", "message": "messages: a list"}, status_code=422)
    callback_url = data.get("callback_url") or f"{portal_base_url()}/hooks/simulator/status"
    results = await SIMULATOR.submit(data["messages"], str(callback_url))
    return Response({"results": results})


@post("/api/lookup", status_code=200)
async def lookup(request: Request[Any, Any, Any]) -> Response[Any]:
    if (denied := _check(request)) is not None:
        return denied
    data = _json_body(await request.body())
    references = data.get("references") if isinstance(data, dict) else None
    if not isinstance(references, list):
        return Response({"code": "invalid", "message": "references: a list"}, status_code=422)
    wanted = [str(r) for r in references]
    return Response({"found": SIMULATOR.lookup(wanted), "statuses": SIMULATOR.statuses(wanted)})


@get("/outbox")
async def outbox(request: Request[Any, Any, Any]) -> Response[Any]:
    """Every tenant's recipients and texts: only for whoever holds the simulator secret."""
    if (denied := _check(request)) is not None:
        return denied
    return Response(SIMULATOR.outbox())


@get("/config")
async def get_config(request: Request[Any, Any, Any]) -> Response[Any]:
    if (denied := _check(request)) is not None:
        return denied
    return Response(asdict(SIMULATOR.config))


@post("/config", status_code=200)
async def set_config(request: Request[Any, Any, Any]) -> Response[Any]:
    if (denied := _check(request)) is not None:
        return denied
    data = _json_body(await request.body())
    if not isinstance(data, dict):
        return Response({"code": "invalid", "message": "send a JSON object"}, status_code=422)
    try:
        SIMULATOR.configure(data)
    except (TypeError, ValueError) as exc:
        return Response({"code": "invalid", "message": str(exc)}, status_code=422)
    return Response(asdict(SIMULATOR.config))


@post("/inbound", status_code=202)
async def inject_inbound(request: Request[Any, Any, Any]) -> Response[Any]:
    """A phone writes to one of our numbers: `{from, to, body}` (an id is made if absent)."""
    if (denied := _check(request)) is not None:
        return denied
    data = _json_body(await request.body())
    if not isinstance(data, dict):
        return Response({"code": "invalid", "message": "send a JSON object"}, status_code=422)
    message = {"id": data.get("id") or "in_" + secrets.token_hex(8), **data}
    answer = await SIMULATOR.inject_inbound(message)
    return Response(answer.json(), status_code=answer.status_code)


@post("/flush", status_code=200)
async def flush(request: Request[Any, Any, Any]) -> Response[Any]:
    if (denied := _check(request)) is not None:
        return denied
    return Response({"posted": await SIMULATOR.flush(everything=True)})


def create_simulator_app() -> Litestar:
    return Litestar(
        route_handlers=[
            submit_messages,
            lookup,
            outbox,
            get_config,
            set_config,
            inject_inbound,
            flush,
        ],
        debug=False,
        openapi_config=None,
    )


simulator_app = create_simulator_app()
