"""Seeded worlds: a random policy (regions, dated versions, rules of every mechanism, hard exclusions),
a few agreements of up to five categories with region limits and content windows, tens of users with
their posts and engagement, consent histories whose instants sit on version boundaries, at T and just
after it, platform events delivered out of order with late and future event times, tables emptied and
refilled, and builds and revocation batches interleaved.

Everything happens on a timeline after 2090-01-01 (the system's clock is well before it), so "deleted
in the future" means the same to the system's clock and to every T of the world. `world(seed)` is
deterministic. The generator knows the docs' rules only as far as it must to write valid input (no
ambiguous rules, no event the API refuses, no agreements of one partner that overlap).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from docs_oracle import ALL_CATEGORIES, ALL_PURPOSES, ambiguities, parse_policy
from inputs import (
    ENGAGEMENT,
    AddPartner,
    ApplyPolicy,
    Build,
    ConsentChange,
    CreateAgreement,
    Curate,
    EngagementRow,
    Ingest,
    KilledBuild,
    PlatformEvent,
    PostRow,
    RecordConsent,
    RevocationBatch,
    Step,
    SubmitEvents,
    UserRow,
    World,
)

BASE = datetime(2090, 1, 1, tzinfo=UTC)
REGION_POOL = {"EEA": ("DE", "FR", "NO"), "UK": ("GB",), "US": ("US",), "CH": ("CH",)}
UNLISTED = ("BR", "JP")
WORDS = (
    "rain", "tea", "music", "garden", "train", "coffee", "river", "market", "story", "morning",
    "love", "great", "happy", "wonderful", "hate", "awful", "sad", "terrible", "okay", "fine",
)  # fmt: skip
FIELDS = {
    "posts": ("text", "created_at", "lang", "sentiment", "sentiment_label", "pii_types"),
    "likes": ("created_at",),
    "reposts": ("created_at",),
    "bookmarks": ("created_at",),
    "profile": ("country", "region", "created_at"),
}
EVENT_TABLES = {"like_delete": "likes", "repost_delete": "reposts", "bookmark_delete": "bookmarks"}
ACCOUNT_EVENT_TYPES = (
    "user_protect", "user_unprotect", "user_suspend", "user_unsuspend", "user_deactivate", "user_reactivate",
)  # fmt: skip


def _letters(number: int) -> str:
    out = ""
    while True:
        number, digit = divmod(number, 26)
        out = chr(97 + digit) + out
        if number == 0:
            return out


def _yaml_list(items: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{i}"' if i == "*" else i for i in items) + "]"


def _when(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Size:
    """How big a world is: choices for the number of agreements and of rounds (each ends with a build
    of every agreement or a revocation batch), ranges of users, posts, engagement rows per table and
    input actions per round."""

    agreements: tuple[int, ...]
    rounds: tuple[int, ...]
    users: tuple[int, int]
    posts: tuple[int, int]
    engagement: tuple[int, int]
    actions: tuple[int, int]
    categories: tuple[int, ...] = (1, 2, 2, 3, 3, 4)
    killed: float = 0.0  # the chance that one build of the world is a real process killed mid-way


# The normal run: a build costs the system about half a second, so worlds stay small.
SMALL = Size(
    agreements=(1, 1, 2), rounds=(1, 1, 2), users=(8, 12), posts=(10, 16), engagement=(6, 14), actions=(1, 3)
)
# `make soak-oracle`: more agreements (one partner may hold two shares), longer histories.
LARGE = Size(
    agreements=(1, 2, 2, 3),
    rounds=(2, 3, 3),
    users=(10, 15),
    posts=(12, 22),
    engagement=(8, 20),
    actions=(1, 3),
    categories=(1, 2, 3, 3, 4, 5),
    killed=0.15,
)


@dataclass
class Generator:
    rng: random.Random
    seed: int
    size: Size
    steps: list[Step] = field(default_factory=list)
    users: dict[int, UserRow] = field(default_factory=dict)
    posts: dict[int, PostRow] = field(default_factory=dict)
    engagement: dict[str, dict[tuple[int, int], EngagementRow]] = field(
        default_factory=lambda: {c: {} for c in ENGAGEMENT}
    )
    touched_users: set[int] = field(default_factory=set)  # changed by events: never re-ingested
    touched_posts: set[int] = field(default_factory=set)
    touched_pairs: set[tuple[str, int, int]] = field(default_factory=set)
    deleted_accounts: set[int] = field(default_factory=set)
    events: int = 0
    notes: list[str] = field(default_factory=list)
    edges: list[datetime] = field(default_factory=list)
    categories: tuple[str, ...] = ALL_CATEGORIES
    purposes: tuple[str, ...] = ALL_PURPOSES
    regions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    partners: list[str] = field(default_factory=list)
    agreements: list[str] = field(default_factory=list)
    clock: datetime = BASE
    refill: str | None = None  # an emptied table, refilled at the start of the next round
    first_category: dict[str, str] = field(default_factory=dict)
    killed_one: bool = True

    # --- the policy ----------------------------------------------------------------------------

    def policy(self) -> str:
        rng = self.rng
        names = sorted(rng.sample(sorted(REGION_POOL), rng.randint(2, 4)))
        self.regions = {n: REGION_POOL[n] for n in names}
        if rng.random() < 0.15:
            dropped = rng.choice(("bookmarks", "reposts", "profile"))
            self.categories = tuple(c for c in ALL_CATEGORIES if c != dropped)
        lines = ["policy: generated", f"categories: {_yaml_list(self.categories)}"]
        lines += ["regions:", *(f"  {n}: {_yaml_list(list(c))}" for n, c in self.regions.items())]
        lines += self._hard_exclusions()
        lines.append("versions:")
        start = BASE + timedelta(days=rng.randint(-15, 4), hours=rng.choice((0, 0, 6)))
        for index in range(rng.choice((1, 2, 2, 3))):
            self.edges.append(start)
            lines += [f'  - id: "v{index + 1}"', f"    effective_from: {_when(start)}", "    rules:"]
            lines += self._rules(start, lines)
            start += timedelta(days=rng.randint(15, 45))
        text = "\n".join(lines) + "\n"
        assert not ambiguities(parse_policy(text)), text
        return text

    def _hard_exclusions(self) -> list[str]:
        rng = self.rng
        out = []
        if rng.random() < 0.4:
            out.append(f"  minimum_age: {rng.choice((16, 18, 21))}")
        if rng.random() < 0.3:
            out.append(f"  unknown_age: {rng.choice(('exclude', 'allow'))}")
        if rng.random() < 0.3:
            out.append(f"  protected_accounts: {rng.choice(('true', 'false'))}")
        if rng.random() < 0.3:
            states = [s for s in ("suspended", "deactivated", "deleted") if rng.random() < 0.6]
            out.append(f"  account_states: {_yaml_list(states)}")
        if rng.random() < 0.25:
            out.append(f"  deleted_content: {rng.choice(('true', 'false'))}")
        if rng.random() < 0.25:
            out.append(f"  non_public_content: {rng.choice(('true', 'false'))}")
        return ["hard_exclusions:", *out] if out else []

    def _rules(self, start: datetime, so_far: list[str]) -> list[str]:
        rng = self.rng
        rules: list[list[str]] = []
        first = [
            '      - region: "*"',
            *(
                [f"        categories: {_yaml_list(self._some(self.categories, 4))}"]
                if rng.random() < 0.15
                else []
            ),
            f"        mechanism: {rng.choices(('opt_out', 'opt_in'), (9, 1))[0]}",
        ]
        rules.append(first)
        for _ in range(rng.randint(0, 3)):
            for _attempt in range(6):
                rule = self._rule(start)
                text = "\n".join([*so_far, *(line for r in [*rules, rule] for line in r)]) + "\n"
                if not ambiguities(parse_policy(text)):
                    rules.append(rule)
                    break
        return [line for r in rules for line in r]

    def _rule(self, start: datetime) -> list[str]:
        rng = self.rng
        choice = rng.random()
        if choice < 0.3:
            region = '"*"'
        elif choice < 0.8:
            region = rng.choice(sorted(self.regions))
        else:
            region = _yaml_list(self._some(tuple(self.regions), 2))
        lines = [f"      - regions: {region}" if region.startswith("[") else f"      - region: {region}"]
        if rng.random() < 0.6:
            lines.append(f"        categories: {_yaml_list(self._some(self.categories, 2))}")
        if rng.random() < 0.5:
            lines.append(f"        purposes: {_yaml_list(self._some(self.purposes, 2))}")
        mechanism = rng.choices(("opt_out", "opt_in", "excluded"), (5, 2, 2))[0]
        lines.append(f"        mechanism: {mechanism}")
        if rng.random() < 0.35:
            edge = start + timedelta(days=rng.randint(3, 25), hours=rng.choice((0, 12)))
            self.edges.append(edge)
            lines.append(f"        {rng.choice(('from', 'until'))}: {_when(edge)}")
        return lines

    def _some(self, items: tuple[str, ...], most: int) -> list[str]:
        return sorted(self.rng.sample(list(items), self.rng.randint(1, min(most, len(items)))))

    # --- agreements ----------------------------------------------------------------------------

    def agreement_texts(self) -> list[str]:
        rng = self.rng
        texts = []
        count = rng.choice(self.size.agreements)
        used: dict[str, set[str]] = {}
        for index in range(count):
            categories = rng.sample(
                list(self.categories), min(len(self.categories), rng.choice(self.size.categories))
            )
            partner = f"p{index + 1}"
            if index and rng.random() < 0.3 and not set(categories) & used["p1"]:
                partner = "p1"  # a second share for one partner: no common category, so no overlap
            used.setdefault(partner, set()).update(categories)
            if partner not in self.partners:
                self.partners.append(partner)
            agreement_id = f"a{index + 1}-{partner}"
            self.agreements.append(agreement_id)
            self.first_category[agreement_id] = categories[0]
            purposes = rng.sample(list(self.purposes), rng.choice((1, 1, 2)))
            lines = [
                f"agreement: {agreement_id}",
                f"partner: {partner}",
                "status: active",
                "term: {start: 2089-06-01, end: 2091-12-31}",
                f"purposes: {_yaml_list(purposes)}",
                f"categories: {_yaml_list(categories)}",
            ]
            lines += self._agreement_regions()
            if rng.random() < 0.2:
                window = [f"from: {_when(BASE - timedelta(days=rng.randint(30, 250)))}"]
                if rng.random() < 0.6:
                    window.append(f"until: {_when(BASE + timedelta(days=rng.randint(5, 60)))}")
                lines.append("content_window: {" + ", ".join(window) + "}")
            lines.append("fields:")
            for category in categories:
                lines.append(f"  {category}: {_yaml_list(self._fields(category))}")
            lines += [
                'pricing: {model: per_query, amount: "0.01", currency: USD}',
                f"deletion_sla_hours: {rng.choice((1, 24, 72, 720))}",
            ]
            texts.append("\n".join(lines) + "\n")
        return texts

    def _agreement_regions(self) -> list[str]:
        rng = self.rng
        names = [*sorted(self.regions), "*"]
        choice = rng.random()
        if choice < 0.7:
            return []
        if choice < 0.8:
            return [f"regions: {{allowed: {_yaml_list(rng.sample(names, rng.randint(1, 2)))}}}"]
        return [f"regions: {{denied: {_yaml_list(rng.sample(names, 1))}}}"]

    def _fields(self, category: str) -> list[str]:
        rng = self.rng
        if category != "posts":
            return [f for f in FIELDS[category] if rng.random() < 0.6]
        chosen = ["text"] if rng.random() < 0.85 else []
        chosen += [f for f in ("created_at", "lang", "sentiment", "sentiment_label") if rng.random() < 0.5]
        if rng.random() < 0.2:
            chosen.append("pii_types")
        return chosen

    # --- the platform --------------------------------------------------------------------------

    def countries(self) -> list[str]:
        return [c for cs in self.regions.values() for c in cs] + list(UNLISTED)

    def new_user(self, user_id: int) -> UserRow:
        rng = self.rng
        choice = rng.random()
        birth: date | None
        if choice < 0.86:
            birth = date(rng.randint(1950, 2065), rng.randint(1, 12), rng.randint(1, 28))
        elif choice < 0.89:
            birth = date(rng.randint(2073, 2080), rng.randint(1, 12), rng.randint(1, 28))
        elif choice < 0.92:
            birth = None
        elif choice < 0.96:
            birth = date(2072, 2, 29)  # 18 on 2090-03-01
        else:
            age = rng.choice((16, 18, 21))
            birth = (BASE + timedelta(days=rng.randint(0, 90))).date().replace(year=2090 - age)
        state = rng.choices(("active", "protected", "suspended", "deactivated", "deleted"), (40, 1, 1, 1, 1))[
            0
        ]
        created = BASE + timedelta(days=rng.randint(-400, 40), hours=rng.randint(0, 23))
        return UserRow(user_id, f"user{user_id}", rng.choice(self.countries()), birth, state, created)

    def new_post(self, post_id: int) -> PostRow:
        rng = self.rng
        words = " ".join(rng.sample(WORDS, 3))
        deleted = BASE + timedelta(days=rng.randint(-20, 80)) if rng.random() < 0.12 else None
        return PostRow(
            post_id,
            rng.choice(sorted(self.users)),
            f"zq{_letters(self.seed)}x{_letters(post_id)} {words}",
            rng.choice(("en", "en", "fr", None)),
            BASE + timedelta(days=rng.randint(-300, 20), minutes=rng.randint(0, 1439)),
            rng.choices(("public", "followers"), (9, 1))[0],
            deleted,
        )

    def new_engagement(self, table: str, count: int) -> list[EngagementRow]:
        rng = self.rng
        out: list[EngagementRow] = []
        for _ in range(count * 3):
            pair = (rng.choice(sorted(self.users)), rng.choice(sorted(self.posts)))
            if pair in self.engagement[table] or any(
                r.user_id == pair[0] and r.post_id == pair[1] for r in out
            ):
                continue
            created = BASE + timedelta(days=rng.randint(-200, 60), minutes=rng.randint(0, 1439))
            deleted = BASE + timedelta(days=rng.randint(-10, 60)) if rng.random() < 0.05 else None
            out.append(EngagementRow(pair[0], pair[1], created, deleted))
            if len(out) == count:
                break
        return out

    def ingest(self, table: str, rows: list[Any]) -> None:
        if not rows:
            return
        for row in rows:
            if isinstance(row, UserRow):
                self.users[row.user_id] = row
            elif isinstance(row, PostRow):
                self.posts[row.post_id] = row
            else:
                self.engagement[table][(row.user_id, row.post_id)] = row
        self.steps.append(Ingest(table, tuple(rows)))

    # --- inputs during the world -----------------------------------------------------------------

    def next_build_at(self) -> datetime:
        """The next T: a while later, or exactly on a policy edge still ahead."""
        ahead = [e for e in self.edges if e > self.clock]
        if ahead and self.rng.random() < 0.35:
            return min(ahead)
        return self.clock + timedelta(days=self.rng.choice((0, 1, 3, 10)), hours=self.rng.randint(0, 12))

    def consent(self, upcoming: datetime) -> None:
        rng = self.rng
        changes = []
        for _ in range(rng.randint(1, 4)):
            user = rng.choice(sorted(self.users))
            key = rng.choice(
                (
                    "share_with_partners",
                    f"share.{rng.choice(self.categories)}",
                    f"share.{rng.choice(self.categories)}",
                    f"purpose.{rng.choice(ALL_PURPOSES)}",
                    f"block_partner.{rng.choice([*self.partners, 'nobody'])}",
                )
            )
            value = rng.random() < (0.8 if key.startswith("block_partner.") else 0.3)
            at = rng.choices(
                (
                    self.clock - timedelta(days=rng.randint(1, 30)),
                    self.clock,
                    upcoming,  # exactly at the next T: in effect for that build
                    upcoming + timedelta(microseconds=1),  # just after it: not yet
                    upcoming + timedelta(seconds=1),
                    rng.choice(self.edges),  # on a version or rule boundary
                    upcoming + timedelta(days=rng.randint(1, 20)),
                ),
                (2, 1, 4, 3, 1, 2, 1),
            )[0]
            changes.append(ConsentChange(user, key, value, at))
        self.steps.append(RecordConsent(tuple(changes)))

    def platform_events(self, upcoming: datetime) -> None:
        """A few events in random arrival order, sometimes with a late pair (see `_late_pair`)."""
        rng = self.rng
        events: list[PlatformEvent] = []
        for _ in range(rng.randint(1, 4)):
            event = self._event(upcoming, events)
            if event is not None:
                events.append(event)
        rng.shuffle(events)
        if rng.random() < 0.4:
            events += self._late_pair()  # kept in its arrival order: the later event first
        if not events:
            return
        if rng.random() < 0.5:
            self.steps.append(SubmitEvents(tuple(events)))
        else:
            self.steps += [SubmitEvents((e,)) for e in events]

    def _late_pair(self) -> list[PlatformEvent]:
        """Two account events of one user, the later one (in event time) first in arrival order."""
        rng = self.rng
        live = sorted(
            u
            for u, row in self.users.items()
            if u not in self.deleted_accounts and row.account_state != "deleted"
        )
        if not live:
            return []
        user = rng.choice(live)
        self.touched_users.add(user)
        first, second = rng.choice(
            (
                ("user_unprotect", "user_protect"),
                ("user_unsuspend", "user_suspend"),
                ("user_protect", "user_unprotect"),
            )
        )
        earlier = self.clock - timedelta(hours=rng.randint(2, 30))
        later = earlier + timedelta(hours=1)
        return [
            PlatformEvent(f"w{self.seed}-e{self._bump()}", second, user, later),
            PlatformEvent(f"w{self.seed}-e{self._bump()}", first, user, earlier),
        ]

    def _bump(self) -> int:
        self.events += 1
        return self.events

    def _event(self, upcoming: datetime, batch: list[PlatformEvent]) -> PlatformEvent | None:
        rng = self.rng
        live = sorted(
            u
            for u, row in self.users.items()
            if u not in self.deleted_accounts and row.account_state != "deleted"
        )
        if not live:
            return None
        at = rng.choice(
            (
                self.clock - timedelta(days=rng.randint(1, 20)),
                self.clock - timedelta(hours=rng.randint(1, 12)),
                self.clock,
                upcoming,
                upcoming + timedelta(days=rng.randint(1, 15)),
            )
        )
        self.events += 1
        event_id = f"w{self.seed}-e{self.events}"
        kind = rng.choices(("post", "engagement", "account", "country", "delete"), (3, 3, 4, 2, 1))[0]
        if kind == "post":
            mine = sorted(p for p, row in self.posts.items() if row.author_id in live)
            if not mine:
                return None
            post = self.posts[rng.choice(mine)]
            self.touched_posts.add(post.post_id)
            return PlatformEvent(event_id, "post_delete", post.author_id, at, post_id=post.post_id)
        if kind == "engagement":
            kind_name = rng.choice(sorted(EVENT_TABLES))
            table = EVENT_TABLES[kind_name]
            pairs = sorted(p for p in self.engagement[table] if p[0] in live)
            if not pairs:
                return None
            user, post_id = rng.choice(pairs)
            self.touched_pairs.add((table, user, post_id))
            return PlatformEvent(event_id, kind_name, user, at, post_id=post_id)
        user = rng.choice(live)
        self.touched_users.add(user)
        if kind == "country":
            return PlatformEvent(
                event_id, "user_country_change", user, at, country=rng.choice(self.countries())
            )
        if kind == "delete":
            if any(e.user_id == user for e in batch):
                return None
            self.deleted_accounts.add(user)
            return PlatformEvent(event_id, "user_delete", user, at)
        return PlatformEvent(event_id, rng.choice(ACCOUNT_EVENT_TYPES), user, at)

    def platform_changes(self) -> None:
        """New posts and engagement, edits of rows no event touched, or a table emptied."""
        rng = self.rng
        choice = rng.random()
        if choice < 0.35:
            first = max(self.posts) + 1
            self.ingest("posts", [self.new_post(p) for p in range(first, first + rng.randint(1, 4))])
            if rng.random() < 0.7:
                self.steps.append(Curate())
            self.ingest(
                rng.choice(ENGAGEMENT), self.new_engagement(rng.choice(ENGAGEMENT), rng.randint(1, 4))
            )
        elif choice < 0.55:
            editable = sorted(p for p in self.posts if p not in self.touched_posts)
            if editable:
                post = self.posts[rng.choice(editable)]
                edit = rng.choice(("visibility", "deleted", "text"))
                if edit == "visibility":
                    post = replace(post, visibility="followers" if post.visibility == "public" else "public")
                elif edit == "deleted":
                    post = replace(post, deleted_at=self.clock + timedelta(days=rng.randint(-3, 10)))
                else:
                    post = replace(post, text=post.text.split(" ")[0] + " " + " ".join(rng.sample(WORDS, 3)))
                self.ingest("posts", [post])
                self.steps.append(Curate())
        elif choice < 0.7:
            editable = sorted(
                u for u in self.users if u not in self.touched_users and u not in self.deleted_accounts
            )
            if editable:
                user = self.users[rng.choice(editable)]
                if rng.random() < 0.5:
                    user = replace(user, country=rng.choice(self.countries()))
                else:
                    user = replace(user, birth_date=rng.choice((None, date(2080, 6, 1), date(1990, 6, 1))))
                self.ingest("users", [user])
        elif choice < 0.85:
            self.empty_table()
        else:
            table = rng.choice(ENGAGEMENT)
            self.ingest(table, self.new_engagement(table, rng.randint(2, 5)))

    def empty_table(self) -> None:
        """Every row of an engagement table deleted (by ingest), then new ones later."""
        rng = self.rng
        table = rng.choice(ENGAGEMENT)
        rows = [r for k, r in self.engagement[table].items() if (table, *k) not in self.touched_pairs]
        if not rows:
            return
        self.notes.append(f"{table} emptied")
        self.refill = table
        when = self.clock - timedelta(hours=1)
        gone = [
            r if r.deleted_at is not None and r.deleted_at <= when else replace(r, deleted_at=when)
            for r in rows
        ]
        self.ingest(table, gone)

    # --- the world -------------------------------------------------------------------------------

    def world(self) -> World:
        rng = self.rng
        self.killed_one = rng.random() >= self.size.killed  # True: no build of this world is killed
        self.steps.append(ApplyPolicy(self.policy()))
        texts = self.agreement_texts()
        self.steps += [AddPartner(p) for p in self.partners]
        self.steps += [CreateAgreement(t) for t in texts]
        self.ingest("users", [self.new_user(u) for u in range(1, 1 + rng.randint(*self.size.users))])
        self.ingest("posts", [self.new_post(p) for p in range(101, 101 + rng.randint(*self.size.posts))])
        for table in ENGAGEMENT:
            self.ingest(table, self.new_engagement(table, rng.randint(*self.size.engagement)))
        if rng.random() < 0.9:
            self.steps.append(Curate())
        opt_ins = [
            ConsentChange(u, f"share.{category}", True, BASE - timedelta(days=rng.randint(1, 90)))
            for u in sorted(self.users)
            if rng.random() < 0.6
            for category in rng.sample(self.categories, 2)
        ]
        if opt_ins:
            self.steps.append(RecordConsent(tuple(opt_ins)))
        self.clock = BASE + timedelta(days=rng.randint(-2, 10))
        self.build_all(self.clock)
        for _ in range(rng.choice(self.size.rounds)):
            batch = rng.random() < 0.4
            upcoming = self.next_build_at()
            ahead = [e for e in self.edges if e > self.clock]
            if batch and ahead and rng.random() < 0.6:  # a batch after a boundary the release predates
                upcoming = min(ahead) + timedelta(hours=rng.choice((0, 6)))
            if self.refill is not None:
                self.ingest(self.refill, self.new_engagement(self.refill, rng.randint(2, 5)))
                self.refill = None
            for _ in range(rng.randint(*self.size.actions)):
                action = rng.choices(("consent", "events", "platform"), (4, 4, 3))[0]
                if action == "consent":
                    self.consent(upcoming)
                elif action == "events":
                    self.platform_events(upcoming)
                else:
                    self.platform_changes()
            self.clock = upcoming
            if batch:
                self.steps.append(RevocationBatch(self.clock))
            else:
                self.build_all(self.clock)
        self.clock = self.next_build_at()
        self.build_all(self.clock)
        read_format = "parquet" if self.seed % 8 == 0 else "delta"  # parquet answers cost ~4x the CPU
        return World(
            self.seed,
            rng.randbytes(32),
            tuple(self.partners),
            tuple(self.steps),
            read_format,
            tuple(self.notes),
        )

    def build_all(self, at: datetime) -> None:
        rng = self.rng
        order = list(self.agreements)
        rng.shuffle(order)
        for agreement_id in order:
            if not self.killed_one and rng.random() < 0.3:
                self.killed_one = True
                point = rng.choice(
                    (f"after_table:{self.first_category[agreement_id]}", "before_ledger", "after_ledger")
                )
                self.steps.append(KilledBuild(agreement_id, at, point))
            else:
                self.steps.append(Build(agreement_id, at))


def world(seed: int, size: Size | None = None) -> World:
    return Generator(random.Random(seed), seed, size or SMALL).world()
