"""Two small stateful worlds for the tool-calling domain: retail orders and travel bookings.

Each episode gets its own in-memory SQLite database, built from the task's `world` and
`world_seed` (so the verifier can rebuild it and replay the episode's calls). Tools read the
episode's task from `ToolContext.task`; their preconditions are checked inside the tool (an
unmet one is an error observation, the state is unchanged). Tools marked in `DESTRUCTIVE`
change state; the written policy (`POLICIES`) says the agent must first get the user's
explicit confirmation. `ask_user` is the simulated user: its observation is the persona's
reply, so user turns are observations (masked in training like any tool output). With
`resources["user_model"]` set, a language model plays the persona instead (tools/user_model.py).

Not covered: concurrency between episodes (each has its own database) and any notion of
time; a world is a few dozen rows, enough for dependent calls, not for scale.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from longhorizon.tools import user_model
from longhorizon.tools.base import tool
from longhorizon.tools.types import ToolContext, ToolResult

__all__ = [
    "CANCEL_REASONS",
    "CONFIRM_WORDS",
    "DESTRUCTIVE",
    "POLICIES",
    "SLOT_WORDS",
    "WORLD_TOOLS",
    "PreconditionError",
    "Session",
    "persona_reply",
]

RETAIL, TRAVEL = "retail", "travel"
NAMES = ("Ada Park", "Ben Ortiz", "Chloe Wu", "Dev Rao", "Eva Lind", "Femi Bello", "Gus Hahn")
ITEMS = ("desk lamp", "kettle", "backpack", "headphones", "yoga mat", "blender")
STREETS = ("12 Elm St", "4 Quay Rd", "88 Hill Ave", "7 Mill Ln", "31 Park Row", "9 Dock St")
CITIES = ("Lisbon", "Oslo", "Porto", "Vienna", "Zurich")
DATES = ("2026-03-02", "2026-03-03", "2026-03-04")
ORDER_STATES = ("pending", "processing", "delivered", "cancelled")
CANCEL_REASONS = ("no longer needed", "ordered by mistake")
DESTRUCTIVE = frozenset({"cancel_order", "update_address", "book_flight", "cancel_booking"})
WORLD_TOOLS: dict[str, tuple[str, ...]] = {
    RETAIL: ("ask_user", "find_user", "list_orders", "get_order", "cancel_order", "update_address"),
    TRAVEL: (
        "ask_user",
        "find_user",
        "find_flights",
        "list_bookings",
        "get_booking",
        "book_flight",
        "cancel_booking",
    ),
}
_COMMON_POLICY = (
    "Policy you must follow:\n"
    "1. Authenticate the user first: ask for their email and call find_user before reading "
    "or changing anything of theirs.\n"
    "2. Ask the user (ask_user) for any detail you need; never guess ids, dates or addresses.\n"
    "3. Before any action that changes state ({destructive}), state the action and its id "
    "and ask the user to confirm; act only after they answer yes.\n"
)
POLICIES: dict[str, str] = {
    RETAIL: _COMMON_POLICY.format(destructive="cancel_order, update_address")
    + "4. Orders can be cancelled only while pending or processing, and only for one of these "
    f"reasons: {', '.join(CANCEL_REASONS)}. Addresses change only while pending.\n",
    TRAVEL: _COMMON_POLICY.format(destructive="book_flight, cancel_booking")
    + "4. Book only flights with seats left; when the user asks for the cheapest, compare "
    "every matching flight. Tell the user the booking id of a new booking.\n",
}
# slot -> words in a question that ask for it (the scripted persona's ask detection)
SLOT_WORDS: dict[str, tuple[str, ...]] = {
    "email": ("email", "e-mail"),
    "order_id": ("order id", "order number"),
    "booking_id": ("booking id", "booking reference"),
    "address": ("address",),
    "reason": ("reason", "why"),
    "origin": ("origin", "departing", "flying from", "leaving from", "depart from"),
    "date": ("date", "when"),
}
CONFIRM_WORDS = ("confirm", "proceed", "go ahead", "shall i")


class PreconditionError(ValueError):
    """A call whose precondition does not hold in the current state (nothing changes)."""


def _schema(conn: sqlite3.Connection) -> None:
    conn.executescript(
        "CREATE TABLE users (user_id TEXT PRIMARY KEY, name TEXT, email TEXT UNIQUE);"
        "CREATE TABLE orders (order_id TEXT PRIMARY KEY, user_id TEXT, item TEXT, status TEXT,"
        " address TEXT, total REAL);"
        "CREATE TABLE flights (flight_id TEXT PRIMARY KEY, origin TEXT, destination TEXT,"
        " date TEXT, price INTEGER, seats INTEGER);"
        "CREATE TABLE bookings (booking_id TEXT PRIMARY KEY, user_id TEXT, flight_id TEXT,"
        " status TEXT);"
    )


def _users(rng: random.Random, conn: sqlite3.Connection) -> list[str]:
    ids = []
    for name in rng.sample(NAMES, 4):
        uid = f"u{rng.randrange(100, 999)}{name[0].lower()}"
        email = f"{name.split()[0].lower()}.{name.split()[1].lower()}@mail.test"
        conn.execute("INSERT INTO users VALUES (?, ?, ?)", (uid, name, email))
        ids.append(uid)
    return ids


def _retail(rng: random.Random, conn: sqlite3.Connection, users: list[str]) -> None:
    serial = rng.sample(range(1000, 9999), 4 * len(users))
    for i, uid in enumerate(users):
        home = rng.choice(STREETS)
        for j in range(rng.randint(2, 4)):
            conn.execute(
                "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)",
                (
                    f"O{serial[4 * i + j]}",
                    uid,
                    rng.choice(ITEMS),
                    rng.choice(ORDER_STATES),
                    home,
                    round(rng.uniform(15, 240), 2),
                ),
            )


def _travel(rng: random.Random, conn: sqlite3.Connection, users: list[str]) -> None:
    serial = rng.sample(range(100, 999), 16)
    flights = []
    for k in range(16):
        origin, destination = rng.sample(CITIES, 2)
        fid = f"F{serial[k]}"
        row = (
            fid,
            origin,
            destination,
            rng.choice(DATES),
            rng.randrange(80, 400),
            rng.randint(0, 3),
        )
        conn.execute("INSERT INTO flights VALUES (?, ?, ?, ?, ?, ?)", row)
        flights.append(fid)
    for i, uid in enumerate(users):
        for j in range(rng.randint(1, 2)):
            status = rng.choice(("booked", "booked", "cancelled"))
            bid = f"B{i}{j}{rng.randrange(10, 99)}"
            conn.execute(
                "INSERT INTO bookings VALUES (?, ?, ?, ?)", (bid, uid, rng.choice(flights), status)
            )


@dataclass
class Session:
    """One episode's database and the calls that changed it."""

    world: str
    seed: int
    conn: sqlite3.Connection

    @classmethod
    def open(cls, world: str, seed: int) -> Session:
        if world not in WORLD_TOOLS:
            raise ValueError(f"unknown world {world!r}; known: {', '.join(WORLD_TOOLS)}")
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        conn.row_factory = sqlite3.Row
        _schema(conn)
        rng = random.Random(f"world:{world}:{seed}")
        users = _users(rng, conn)
        (_retail if world == RETAIL else _travel)(rng, conn, users)
        return cls(world, seed, conn)

    async def aclose(self) -> None:
        self.conn.close()

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, tuple(args)).fetchall()]

    def one(self, table: str, key: str, value: str) -> dict[str, Any]:
        found = self.rows(f"SELECT * FROM {table} WHERE {key} = ?", (value,))
        if not found:
            raise PreconditionError(f"no {table[:-1]} with {key} {value!r}")
        return found[0]

    def snapshot(self) -> dict[str, list[list[Any]]]:
        """Every table's rows, sorted: the state the verifier compares."""
        tables = ("users", "orders", "flights", "bookings")
        return {
            t: sorted([list(r.values()) for r in self.rows(f"SELECT * FROM {t}")]) for t in tables
        }

    # ---- the operations the tools expose ---------------------------------------------------
    def find_user(self, email: str) -> dict[str, Any]:
        user = self.one("users", "email", email.strip().lower())
        return {"user_id": user["user_id"], "name": user["name"]}

    def list_orders(self, user_id: str) -> list[dict[str, Any]]:
        self.one("users", "user_id", user_id)
        sql = "SELECT order_id, item, status FROM orders WHERE user_id = ? ORDER BY order_id"
        return self.rows(sql, (user_id,))

    def cancel_order(self, order_id: str, reason: str) -> dict[str, Any]:
        order = self.one("orders", "order_id", order_id)
        if order["status"] not in ("pending", "processing"):
            raise PreconditionError(
                f"order {order_id} is {order['status']}: it cannot be cancelled"
            )
        if reason not in CANCEL_REASONS:
            raise PreconditionError(f"reason must be one of {list(CANCEL_REASONS)}")
        self.conn.execute("UPDATE orders SET status = 'cancelled' WHERE order_id = ?", (order_id,))
        return {"order_id": order_id, "status": "cancelled"}

    def update_address(self, order_id: str, address: str) -> dict[str, Any]:
        order = self.one("orders", "order_id", order_id)
        if order["status"] != "pending":
            raise PreconditionError(f"order {order_id} is {order['status']}: address is fixed")
        self.conn.execute("UPDATE orders SET address = ? WHERE order_id = ?", (address, order_id))
        return {"order_id": order_id, "address": address}

    def find_flights(self, origin: str, destination: str, date: str) -> list[dict[str, Any]]:
        if len(date) != 10 or date[4] != "-" or date[7] != "-":
            raise PreconditionError(f"date {date!r}: write it as YYYY-MM-DD")
        sql = (
            "SELECT flight_id, price, seats FROM flights WHERE origin = ? AND destination = ? "
            "AND date = ? ORDER BY flight_id"
        )
        return self.rows(sql, (origin, destination, date))

    def list_bookings(self, user_id: str) -> list[dict[str, Any]]:
        self.one("users", "user_id", user_id)
        sql = (
            "SELECT b.booking_id, b.status, f.origin, f.destination, f.date FROM bookings b "
            "JOIN flights f ON f.flight_id = b.flight_id WHERE b.user_id = ? ORDER BY booking_id"
        )
        return self.rows(sql, (user_id,))

    def book_flight(self, user_id: str, flight_id: str) -> dict[str, Any]:
        self.one("users", "user_id", user_id)
        flight = self.one("flights", "flight_id", flight_id)
        if flight["seats"] <= 0:
            raise PreconditionError(f"flight {flight_id} has no seats left")
        count = len(self.rows("SELECT booking_id FROM bookings"))
        booking_id = f"B{count + 1}{flight_id[1:]}"
        self.conn.execute(
            "INSERT INTO bookings VALUES (?, ?, ?, 'booked')", (booking_id, user_id, flight_id)
        )
        self.conn.execute("UPDATE flights SET seats = seats - 1 WHERE flight_id = ?", (flight_id,))
        return {"booking_id": booking_id, "flight_id": flight_id, "status": "booked"}

    def cancel_booking(self, booking_id: str) -> dict[str, Any]:
        booking = self.one("bookings", "booking_id", booking_id)
        if booking["status"] != "booked":
            raise PreconditionError(f"booking {booking_id} is {booking['status']}")
        self.conn.execute(
            "UPDATE bookings SET status = 'cancelled' WHERE booking_id = ?", (booking_id,)
        )
        self.conn.execute(
            "UPDATE flights SET seats = seats + 1 WHERE flight_id = ?", (booking["flight_id"],)
        )
        return {"booking_id": booking_id, "status": "cancelled"}

    def call(self, name: str, arguments: dict[str, Any]) -> Any:
        """Run one operation by tool name (how tools and the verifier's replay change state)."""
        if name not in WORLD_TOOLS[self.world] or name == "ask_user":
            raise PreconditionError(f"{name} is not a tool of the {self.world} world")
        if name == "get_order":
            return self.one("orders", "order_id", arguments["order_id"])
        if name == "get_booking":
            return self.one("bookings", "booking_id", arguments["booking_id"])
        return getattr(self, name)(**arguments)


def persona_reply(persona: dict[str, Any], question: str) -> str:
    """The scripted user: a confirmation question gets yes (when it names the goal's target
    id) or no; otherwise it reveals exactly the private details the question asks for."""
    text = question.lower()
    if any(w in text for w in CONFIRM_WORDS):
        target = str(persona.get("confirm_id", "")).lower()
        if target and target in text:
            return "Yes, please go ahead."
        return "No, that is not what I asked for."
    details = persona.get("details", {})
    told = [
        f"My {slot.replace('_', ' ')} is {details[slot]}."
        for slot, words in SLOT_WORDS.items()
        if slot in details and any(w in text for w in words)
    ]
    if told:
        return " ".join(told)
    return "Sorry, I am not sure what you need from me. Please ask for a specific detail."


# ---- the tools --------------------------------------------------------------------------------


def _session(ctx: ToolContext) -> Session:
    session = ctx.state.get("world")
    if session is None:
        task = ctx.task
        if task is None or "world" not in task.metadata:
            raise PreconditionError("this tool needs a tool-calling task's world")
        session = Session.open(task.metadata["world"], task.metadata["world_seed"])
        ctx.state["world"] = session
    return session


def _run(ctx: ToolContext, name: str, **arguments: Any) -> ToolResult:
    try:
        value = _session(ctx).call(name, arguments)
    except PreconditionError as exc:
        return ToolResult(content=f"Error: {exc}", error=str(exc))
    refs = sorted({f"{k}:{v}" for k, v in _ids(value)})
    return ToolResult(content=json.dumps(value), refs=refs)


def _ids(value: Any) -> list[tuple[str, str]]:
    rows = value if isinstance(value, list) else [value]
    keys = ("user_id", "order_id", "flight_id", "booking_id")
    return [(k, str(r[k])) for r in rows for k in keys if k in r]


@tool(timeout_s=120.0)  # a model playing the user may take a while on a CPU
async def ask_user(question: str, ctx: ToolContext) -> ToolResult:
    """Ask the user a question (a missing detail, or a confirmation); returns their reply.

    Args:
        question: what to ask, in plain words
    """
    task = ctx.task
    model = ctx.resources.get("user_model")
    if model is None or task is None:  # the default: the scripted persona
        persona = task.metadata.get("persona", {}) if task is not None else {}
        return ToolResult(content=persona_reply(persona, question))
    params = ctx.resources.get("user_model_params") or user_model.DEFAULT_PARAMS
    try:
        return ToolResult(content=await user_model.reply(model, task, ctx.state, question, params))
    except user_model.UserModelError as exc:
        return ToolResult(content=f"Error: {exc}", error=str(exc))


@tool
def find_user(email: str, ctx: ToolContext) -> ToolResult:
    """Find a user by email (authentication); returns user_id and name.

    Args:
        email: the user's email address
    """
    return _run(ctx, "find_user", email=email)


@tool
def list_orders(user_id: str, ctx: ToolContext) -> ToolResult:
    """List a user's orders (order_id, item, status).

    Args:
        user_id: the id find_user returned
    """
    return _run(ctx, "list_orders", user_id=user_id)


@tool
def get_order(order_id: str, ctx: ToolContext) -> ToolResult:
    """An order's details: item, status, shipping address, total.

    Args:
        order_id: the order id, e.g. O1234
    """
    return _run(ctx, "get_order", order_id=order_id)


@tool
def cancel_order(order_id: str, reason: str, ctx: ToolContext) -> ToolResult:
    """Cancel a pending or processing order. DESTRUCTIVE: confirm with the user first.

    Args:
        order_id: the order id
        reason: "no longer needed" or "ordered by mistake"
    """
    return _run(ctx, "cancel_order", order_id=order_id, reason=reason)


@tool
def update_address(order_id: str, address: str, ctx: ToolContext) -> ToolResult:
    """Change the shipping address of a pending order. DESTRUCTIVE: confirm with the user first.

    Args:
        order_id: the order id
        address: the new street address
    """
    return _run(ctx, "update_address", order_id=order_id, address=address)


@tool
def find_flights(origin: str, destination: str, date: str, ctx: ToolContext) -> ToolResult:
    """Flights between two cities on a date (flight_id, price, seats left).

    Args:
        origin: departure city
        destination: arrival city
        date: YYYY-MM-DD
    """
    return _run(ctx, "find_flights", origin=origin, destination=destination, date=date)


@tool
def list_bookings(user_id: str, ctx: ToolContext) -> ToolResult:
    """A user's bookings (booking_id, status, route, date).

    Args:
        user_id: the id find_user returned
    """
    return _run(ctx, "list_bookings", user_id=user_id)


@tool
def get_booking(booking_id: str, ctx: ToolContext) -> ToolResult:
    """A booking's details.

    Args:
        booking_id: the booking id
    """
    return _run(ctx, "get_booking", booking_id=booking_id)


@tool
def book_flight(user_id: str, flight_id: str, ctx: ToolContext) -> ToolResult:
    """Book a seat on a flight for a user. DESTRUCTIVE: confirm with the user first.

    Args:
        user_id: the id find_user returned
        flight_id: the flight id find_flights returned
    """
    return _run(ctx, "book_flight", user_id=user_id, flight_id=flight_id)


@tool
def cancel_booking(booking_id: str, ctx: ToolContext) -> ToolResult:
    """Cancel a booking and free its seat. DESTRUCTIVE: confirm with the user first.

    Args:
        booking_id: the booking id
    """
    return _run(ctx, "cancel_booking", booking_id=booking_id)
