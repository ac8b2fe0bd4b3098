# ruff: noqa: RUF001  (the data is deliberately multilingual)
"""Deterministic Hotjar survey data for the simulator.

Everything here is derived from ``seed``: the same arguments always build the same
sites, surveys, questions and responses (ids included).  Each response is serialised
to JSON once, when it is made; the HTTP layer only joins those bytes.

Shape choices the API reference leaves open (documented here so tap authors know):

* Survey lists are ordered newest first by ``created_time`` (ties by id, descending).
* Responses are ordered newest first by ``created_time`` compared as instants; ties
  (several responses in the same instant, possibly written with different precisions)
  are ordered by ``id`` descending.
* A ``multiple-option`` answer is the selected choice texts, in the survey's choice
  order, joined with ``", "`` (choice texts never contain ``", "``).
* Sites whose plan has no sentiment analysis: the ``sentiment`` key is absent from
  every answer (non-empty site number 1, 4, 7, ...: the second, fifth, ... site).
  Elsewhere it is present: ``positive``/``negative``/``neutral``/``null`` on text
  answers of surveys with ``sentiment_analysis_enabled``, else ``null``.
* ``created_time`` is RFC 3339 in the forms the API mixes: mostly ``...:51.473Z``,
  sometimes ``...:51Z``, ``...:51.473123Z`` or ``...:51.473+00:00``.  Ties written
  with different precisions (``...:51Z`` and ``...:51.000Z``) are included, some
  straddling page boundaries at limit 100 and at small limits.
* Questions: the first survey of every non-empty site has all eleven question types.
  Question objects are written "full" (``choices``/``labels``/``image_url`` present,
  ``null`` when not applicable, like the list sample) or "sparse" (those keys absent,
  like the per-type samples); the first survey of a site is full, the second sparse,
  the rest random (per survey, or mixed per question).
* Some responses carry an answer whose ``question_id`` is not in the survey (a
  deleted question); incomplete responses (``is_complete: false``) have a truncated,
  possibly empty, ``answers`` list; optional questions are sometimes skipped.
"""

from __future__ import annotations

import datetime as _dt
import json
import random
from bisect import bisect_left
from typing import Any

__all__ = ["QUESTION_TYPES", "Dataset", "SiteData", "SurveyData", "format_instant"]

QUESTION_TYPES = (
    "reaction",
    "long-text",
    "short-text",
    "single-option",
    "multiple-option",
    "email",
    "rating-1-5",
    "rating-1-7",
    "nps",
    "statement",
    "thank-you",
)
_ANSWERABLE = tuple(t for t in QUESTION_TYPES if t not in ("statement", "thank-you"))
# Order of the "all types" survey: reads like a real survey.
_ALL_TYPES_ORDER = (
    "statement",
    "nps",
    "reaction",
    "rating-1-5",
    "rating-1-7",
    "single-option",
    "multiple-option",
    "short-text",
    "long-text",
    "email",
    "thank-you",
)
_TEXT_TYPES = ("short-text", "long-text")
_LABELLED = ("rating-1-5", "rating-1-7", "nps", "reaction")
_OPTION = ("single-option", "multiple-option")

_EPOCH = _dt.datetime(1970, 1, 1)
_US = 1_000_000
_DAY_MS = 86_400_000
# The dataset's "now": responses spread over the two years before it.
_END_MS = int((_dt.datetime(2025, 1, 31, 12, 0, 0) - _EPOCH).total_seconds()) * 1000
_START_MS = _END_MS - 730 * _DAY_MS

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _dumps(obj: Any) -> bytes:
    return _JSON.encode(obj).encode("utf-8")


def format_instant(us: int, style: str) -> str:
    """Write an instant (integer microseconds since the epoch, UTC) in an RFC 3339 form.

    Styles: ``ms`` ``...:51.473Z``; ``s`` ``...:51Z``; ``us`` ``...:51.473123Z``;
    ``ms+`` ``...:51.473+00:00``; ``s+`` ``...:51+00:00``.  The caller guarantees the
    style can represent the instant exactly (e.g. ``s`` only for whole seconds).
    """
    d = _EPOCH + _dt.timedelta(microseconds=us)
    if style == "ms":
        return d.isoformat(timespec="milliseconds") + "Z"
    if style == "s":
        return d.isoformat(timespec="seconds") + "Z"
    if style == "us":
        return d.isoformat(timespec="microseconds") + "Z"
    if style == "ms+":
        return d.isoformat(timespec="milliseconds") + "+00:00"
    if style == "s+":
        return d.isoformat(timespec="seconds") + "+00:00"
    raise ValueError(style)


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


# --------------------------------------------------------------------------- pools

_SURVEY_NAMES = (
    "Exit intent — pricing page",
    "NPS Q3 📈",
    "Checkout feedback",
    "Feedback über den Warenkorb",
    "Опрос удовлетворённости",
    "顧客満足度調査",
    "Enquête de satisfaction « Été »",
    "Έρευνα ικανοποίησης",
    "استطلاع رأي العملاء",
    "Onboarding survey",
    "Why did you cancel?",
    'Product "Beta" feedback',
    "Ankieta: zażółć gęślą jaźń",
    "满意度调查 2024",
)

_TEXTS = {
    "reaction": ("How would you rate your experience?", "How do you feel about this page?"),
    "long-text": (
        "What do you like in the new layout?",
        "What do you think about our API?",
        "Was können wir verbessern?",
        "Что нам стоит улучшить?",
    ),
    "short-text": ("Do you like our new layout?", "One word for our product?", "¿Qué buscabas hoy?"),
    "single-option": ("Would you use our site again?", "Did you find what you were looking for?"),
    "multiple-option": ("Tell us what you like more", "Which features do you use?"),
    "email": (
        "Please enter your email address in case you want us to contact you",
        "Your e-mail (optional)",
    ),
    "rating-1-5": ("From 1 to 5 how much do you like our service?",),
    "rating-1-7": ("Rate your experience from 1 to 7.",),
    "nps": ("How likely are you to recommend us to a friend or colleague?",),
    "statement": ("This Survey will take you 5 minutes", "Merci de votre aide — ça prend 1 minute."),
    "thank-you": ("Thank you very much for your responses!", "Danke! 🙏"),
}
_LABELS = {
    "reaction": (("Not good at all", "Excellent!"), ("😡", "😍")),
    "rating-1-5": (("I hate it", "I love it"),),
    "rating-1-7": (("Worst experience ever.", "Amazing!"), ("Sehr schlecht", "Sehr gut")),
    "nps": (("Not likely at all.", "Absolutely!"), ("Peu probable", "Très probable")),
}
_CHOICES = {
    "single-option": (
        (("Yes", False), ("No", False), ("I don't know", False)),
        (("Oui", False), ("Non", False), ("Autre", True)),
        (("Да", False), ("Нет", False)),
    ),
    "multiple-option": (
        (("The User Experience", False), ("The features", False), ("Pricing", False), ("Other", True)),
        (("Suche", False), ("Filter & Sortierung", False), ("Wunschliste", False)),
        (("速度", False), ("デザイン", False), ("サポート", True)),
    ),
}

_SHORT = (
    "Love it!",
    "Très bien, merci",
    "Das Design gefällt mir sehr",
    "Не нашёл кнопку оплаты",
    "Πολύ καλό",
    "很好用",
    "使いやすいです",
    "سهل الاستخدام",
    "👍👍",
    "Great 🚀",
    "Nope",
    "Ça dépend…",
    "¿Dónde está el carrito?",
    "Świetna strona",
    "Zu teuer",
    "ok",
    "Price is too high",
    'Quote "this"',
    "back\\slash",
    "",
)
_LONG = (
    "I use it every day and the new layout is much clearer.",
    "La page de paiement s'est bloquée deux fois — j'ai dû recommencer.",
    "Ich hätte gern eine Übersicht über alle Bestellungen. Die Größenangaben fehlen oft.",
    "Поиск работает медленно, особенно на телефоне.",
    "Η εφαρμογή είναι γρήγορη αλλά λείπουν φίλτρα.",
    "价格有点贵，但是质量很好。",
    "検索結果が多すぎて見つけにくいです。",
    "الموقع رائع لكن التحميل بطيء أحيانًا",
    'Line one\nLine two with "quotes" and a\ttab',
    "Emoji test 😀🎉🔥 — works? 👩‍👩‍👧",
    "<b>not html</b> & ampersands; 100% sure",
    "Zażółć gęślą jaźń. Příliš žluťoučký kůň.",
    "Separator test\u2028between lines",
)
_COMMENTS = ("I use it everyday.", "Bitte schneller!", "Мне нравится", "Voir ci-dessus", "🙂", "N/A")
_TAGS = ("todo", "positive", "bug", "pricing", "ux", "follow-up", "🔥 hot", "à revoir")
_BROWSERS = (
    ("Chrome", "Windows", "desktop"),
    ("Chrome", "Mac OS X", "desktop"),
    ("Firefox", "Linux", "desktop"),
    ("Edge", "Windows", "desktop"),
    ("Safari", "Mac OS X", "desktop"),
    ("Mobile Safari UI/WKWebView", "iOS", "mobile"),
    ("Mobile Safari", "iOS", "mobile"),
    ("Chrome Mobile", "Android", "mobile"),
    ("Samsung Internet", "Android", "mobile"),
    ("Mobile Safari", "iOS", "tablet"),
    ("Chrome", "Chrome OS", "desktop"),
    ("Chrome Mobile", "Android", "tablet"),
)
_SIZES = {
    "desktop": ((1920, 1080), (1440, 900), (1366, 768), (2560, 1440), (1024, 768)),
    "mobile": ((390, 844), (375, 667), (412, 915), (360, 800)),
    "tablet": ((768, 1024), (820, 1180), (1024, 1366)),
}
_COUNTRIES = ("mt", "de", "fr", "us", "gb", "jp", "br", "in", "ru", "gr", "eg", "cn", "pl", "es", "it", "nl")
_HOSTS = ("https://www.example.com", "https://shop.example.com", "https://example.org", "https://app.example.io")
_PATHS = (
    "/",
    "/pricing",
    "/checkout?step=2",
    "/de/kasse",
    "/blog/2024/10/hello-world",
    "/search?q=caf%C3%A9",
    "/account#settings",
)
# "mary.jane3@example.com" contains "jane3@example.com": an address that merely contains
# another is a different person (hotjar-user-lookup's warehouse search must tell them apart).
_EMAIL_LOCAL = ("jane", "john.doe", "anna.mueller", "jean+news", "k_tanaka", "olga", "mary.jane")
# Numbers after the local part: few enough that addresses repeat across surveys and sites.
_EMAIL_NUMBERS = 40
# Identified users (the Identify API's user id): few enough that a user answers several
# surveys, on several sites; the same id on another site is another person.
_USER_IDS = 400
_EMAIL_DOMAIN = ("example.com", "example.org", "mail.example.de", "example.co.jp")
_PERSON = ("Zoë Łukasiewicz", "Ярослава", "José", "王芳", "Ahmed", "Ελένη", "Sam")


def person_email(user_id: str) -> str:
    """The address an identified user's Identify call sends as the `email` attribute.

    In the same space as answers to email questions, so one address can be both; some
    are written with capitals or spaces around them, as hand-typed addresses are.
    """
    k = int(user_id) - 1_000_000
    address = f"{_EMAIL_LOCAL[k % len(_EMAIL_LOCAL)]}{k % _EMAIL_NUMBERS}@{_EMAIL_DOMAIN[k % len(_EMAIL_DOMAIN)]}"
    if k % 5 == 1:
        return address.capitalize()
    if k % 5 == 2:
        return f" {address.upper()} "
    return address


def _attr_value(rng: random.Random, name: str) -> Any:
    if name == "customer_type":
        return rng.choice(("enterprise", "smb", "free"))
    if name == "plan":
        return rng.choice(("basic", "plus", "business", "scale"))
    if name == "seats":
        return rng.randrange(1, 5000)
    if name == "lifetime_value":
        return round(rng.uniform(0, 25000), 2)
    if name == "score":
        return rng.choice((0.5, 4.25, 9.75, -1.5))
    if name == "is_admin":
        return rng.random() < 0.3
    if name == "signup_date":
        return format_instant((_START_MS - rng.randrange(0, 900) * _DAY_MS) * 1000, "s")
    if name == "last_login":
        return format_instant((_END_MS - rng.randrange(0, 90 * _DAY_MS)) * 1000, rng.choice(("ms", "ms+")))
    if name == "user_id":
        # One draw as before (the rest of the data stays the same), mapped onto the pool.
        return str(1_000_000 + rng.randrange(10**6, 10**9) % _USER_IDS)
    if name == "name":
        return rng.choice(_PERSON)
    return None


_ATTR_NAMES = (
    "customer_type",
    "plan",
    "seats",
    "lifetime_value",
    "score",
    "is_admin",
    "signup_date",
    "last_login",
    "user_id",
    "name",
)


# --------------------------------------------------------------------------- model


class SurveyData:
    """One survey and its responses.

    ``keys`` and ``bodies`` are parallel lists in ascending (oldest first) order of
    ``(created_time in µs, id)``; the API serves them reversed.  New responses are
    only ever appended (they are newer than everything), so a slice ``[a:b]`` never
    changes once it exists: page bodies can be cached by slice bounds and ``gen``,
    which a deletion of responses bumps.
    """

    __slots__ = (
        "answerable",
        "bodies",
        "created_us",
        "deleted",
        "gen",
        "has_sentiment",
        "id",
        "keys",
        "obj",
        "question_ids",
        "questions",
        "sentiment_enabled",
        "site_id",
        "uuid",
        "with_q_bytes",
        "without_q_bytes",
    )

    site_id: int
    id: str
    uuid: str
    created_us: int
    obj: dict[str, Any]
    questions: list[dict[str, Any]]
    answerable: list[tuple[str, str, bool, tuple[tuple[str, bool], ...]]]
    question_ids: set[str]
    has_sentiment: bool
    sentiment_enabled: bool
    with_q_bytes: bytes
    without_q_bytes: bytes

    def __init__(self) -> None:
        self.keys: list[tuple[int, str]] = []
        self.bodies: list[bytes] = []
        self.deleted = False
        self.gen = 0  # bumped when responses are deleted: cached pages are stale then


class SiteData:
    __slots__ = ("gen", "has_sentiment", "keys", "site_id", "surveys")

    def __init__(self, site_id: int, has_sentiment: bool) -> None:
        self.site_id = site_id
        self.has_sentiment = has_sentiment
        self.surveys: list[SurveyData] = []  # ascending by (created_us, id)
        self.keys: list[tuple[int, str]] = []
        self.gen = 0

    def rebuild(self) -> None:
        self.surveys = [s for s in self.surveys if not s.deleted]
        self.surveys.sort(key=lambda s: (s.created_us, s.id))
        self.keys = [(s.created_us, s.id) for s in self.surveys]
        self.gen += 1


def _forced_tie_groups(n: int) -> list[tuple[int, int]]:
    """Index ranges (newest-first positions) that must share one instant.

    8..11 straddles page boundaries for limits 2, 3, 5, 9, 10, 11; 48..51 for 7, 10,
    25, 50; k*100-2..k*100+1 for 100 (and 20, 25, 50).
    """
    groups = [(8, 11), (48, 51)]
    k = 100
    while k + 1 < n + 100:
        groups.append((k - 2, k + 1))
        k += 100
    return [(a, min(b, n - 1)) for a, b in groups if a + 1 < n]


class Dataset:
    """All sites, surveys and responses of one simulated Hotjar organisation."""

    def __init__(
        self,
        seed: int = 0,
        sites: int = 3,
        surveys_per_site: int = 4,
        responses_per_survey: int | tuple[int, int] = 120,
        empty_sites: int = 1,
        empty_surveys: int = 1,
        extra_fields: bool = False,
    ) -> None:
        # extra_fields: add fields the reference does not document (an API may
        # grow them in v1), at the top level and nested, to surveys and responses.
        self.extra_fields = extra_fields
        if isinstance(responses_per_survey, (list, tuple)):
            lo, hi = (int(x) for x in responses_per_survey)
            if lo < 0 or hi < lo:
                raise ValueError("responses_per_survey range must be (min, max) with 0 <= min <= max")
            rps = (lo, hi)
        else:
            n = int(responses_per_survey)
            if n < 0:
                raise ValueError("responses_per_survey must be >= 0")
            rps = (n, n)
        for name, value in (
            ("sites", sites),
            ("surveys_per_site", surveys_per_site),
            ("empty_sites", empty_sites),
            ("empty_surveys", empty_surveys),
        ):
            if int(value) < 0:
                raise ValueError(f"{name} must be >= 0")
        self.seed = seed
        rng = random.Random(f"hotjar-sim:{seed}")
        ids = rng.sample(range(1_000_000, 10_000_000), sites + empty_sites)
        self.site_ids: list[int] = list(ids)
        self.empty_site_ids: list[int] = ids[sites:]
        self.sites: dict[int, SiteData] = {}
        self.by_id: dict[tuple[int, str], SurveyData] = {}
        max_us = _END_MS * 1000
        for si, site_id in enumerate(ids):
            site = SiteData(site_id, has_sentiment=(si % 3 != 1))
            self.sites[site_id] = site
            if si >= sites:
                continue
            for vi in range(surveys_per_site):
                srng = random.Random(f"hotjar-sim:{seed}:{si}:{vi}")
                n = srng.randint(*rps)
                if vi >= surveys_per_site - empty_surveys:
                    n = 0
                sv = self._make_survey(srng, site, vi)
                self._fill(srng, sv, n)
                if sv.keys:
                    max_us = max(max_us, sv.keys[-1][0])
                site.surveys.append(sv)
                self.by_id[(site_id, sv.id)] = sv
            site.rebuild()
        # The simulated clock: only moves forward; new responses are after it.
        self.clock_us = max_us
        self._add_rng = random.Random(f"hotjar-sim:{seed}:additions")

    # ------------------------------------------------------------------ surveys

    def _make_survey(self, rng: random.Random, site: SiteData, index: int) -> SurveyData:
        sv = SurveyData()
        sv.site_id = site.site_id
        sv.uuid = _uuid(rng)
        sv.id = f"survey_{sv.uuid}"
        created_ms = _START_MS - rng.randrange(1, 60) * _DAY_MS - rng.randrange(_DAY_MS)
        if index >= 3 and rng.random() < 0.5:
            created_ms = _START_MS + rng.randrange(0, 500) * _DAY_MS + rng.randrange(_DAY_MS)
        c_style = "ms" if rng.random() < 0.8 else "s"
        if c_style == "s":
            created_ms -= created_ms % 1000
        sv.created_us = created_ms * 1000
        updated_ms = created_ms + rng.randrange(0, (_END_MS - created_ms))
        sv.has_sentiment = site.has_sentiment
        sv.sentiment_enabled = site.has_sentiment and rng.random() < 0.7
        if index == 0:
            style = "full"
        elif index == 1:
            style = "sparse"
        else:
            style = rng.choice(("full", "sparse", "mixed"))
        sv.questions = self._make_questions(rng, sv.uuid, index == 0, style)
        sv.question_ids = {q["id"] for q in sv.questions}
        sv.answerable = []
        for q in sv.questions:
            t = q["type"]
            if t in ("statement", "thank-you"):
                continue
            choices = tuple((c["text"], c["allow_comment"]) for c in (q.get("choices") or ()))
            sv.answerable.append((q["id"], t, q["is_required"], choices))
        url = f"/v1/sites/{site.site_id}/surveys/{sv.id}"
        obj = {
            "created_time": format_instant(sv.created_us, c_style),
            "id": sv.id,
            "is_enabled": rng.random() < 0.6,
            "name": rng.choice(_SURVEY_NAMES),
            "responses_url": url + "/responses",
            "type": rng.choice(("link", "full_screen", "popover")),
            "updated_time": format_instant(updated_ms * 1000, "ms"),
            "url": url,
        }
        if self.extra_fields:
            obj["targeting_rules"] = {"devices": ["desktop", "mobile"], "percentage": 100}
        sv.obj = obj
        sv.without_q_bytes = _dumps({**obj, "sentiment_analysis_enabled": sv.sentiment_enabled})
        sv.with_q_bytes = _dumps({**obj, "questions": sv.questions, "sentiment_analysis_enabled": sv.sentiment_enabled})
        return sv

    @staticmethod
    def _make_questions(rng: random.Random, survey_uuid: str, all_types: bool, style: str) -> list[dict]:
        if all_types:
            types = list(_ALL_TYPES_ORDER)
        else:
            types = rng.sample(_ANSWERABLE, rng.randint(1, 6))
            if rng.random() < 0.3:
                types.insert(0, "statement")
            if rng.random() < 0.8:
                types.append("thank-you")
        seen: set[str] = set()
        out = []
        for t in types:
            while True:
                qid = f"question_{survey_uuid}_{rng.getrandbits(32):08x}"
                if qid not in seen:
                    seen.add(qid)
                    break
            required = True if t in ("statement", "thank-you") else rng.random() < 0.55
            text = rng.choice(_TEXTS[t])
            choices = None
            if t in _OPTION:
                choices = [{"text": c, "allow_comment": ac} for c, ac in rng.choice(_CHOICES[t])]
            labels = None
            if t in _LABELLED:
                low, high = rng.choice(_LABELS[t])
                labels = {"low_label": low, "high_label": high}
            image_url = None
            if rng.random() < 0.15:
                image_url = f"https://static.hotjar.com/survey-images/{rng.getrandbits(64):016x}.png"
            full = style == "full" or (style == "mixed" and rng.random() < 0.5)
            if full:
                q = {
                    "choices": choices,
                    "id": qid,
                    "image_url": image_url,
                    "is_required": required,
                    "labels": labels,
                    "text": text,
                    "type": t,
                }
            else:
                q = {"id": qid, "type": t, "text": text, "is_required": required}
                if labels is not None:
                    q["labels"] = labels
                if choices is not None:
                    q["choices"] = choices
                if image_url is not None:
                    q["image_url"] = image_url
            out.append(q)
        return out

    # ---------------------------------------------------------------- responses

    def _fill(self, rng: random.Random, sv: SurveyData, n: int) -> None:
        if n == 0:
            return
        lo = max(sv.created_us // 1000 + 3_600_000, _START_MS)
        ms = rng.sample(range(lo, _END_MS), n)
        inst: list[list] = []
        rnd = rng.random
        for m in ms:
            r = rnd()
            if r < 0.78:
                inst.append([m * 1000, "ms"])
            elif r < 0.86:
                inst.append([(m - m % 1000) * 1000, "s"])
            elif r < 0.93:
                inst.append([m * 1000 + rng.randrange(1, 1000), "us"])
            else:
                inst.append([m * 1000, "ms+"])
        inst.sort(reverse=True)
        groups = _forced_tie_groups(n)
        taken: set[int] = set()
        for a, b in groups:
            taken.update(range(a - 1, b + 2))
        # Near ties: "...:53.287Z" just before "...:53Z" (string order is not time order).
        near = [a for a in (19, 69) if a + 1 < n]
        for a in near:
            taken.update(range(a - 1, a + 3))
        i = 0
        while i < n - 1:
            if i not in taken and i + 1 < n and rnd() < 0.01:
                near.append(i)
                taken.update(range(i - 1, i + 3))
                i += 2
                continue
            if i not in taken and rnd() < 0.015:
                b = min(n - 1, i + rng.randint(1, 2))
                if not any(j in taken for j in range(i, b + 2)):
                    groups.append((i, b))
                    taken.update(range(i - 1, b + 2))
                    i = b + 1
                    continue
            i += 1
        for a, b in groups:
            top = inst[a][0]
            below = inst[b + 1][0] if b + 1 < n else -1
            whole = top - top % _US
            styles: tuple[str, ...]
            if whole > below:
                t, styles = whole, ("s", "ms", "us", "s+", "ms+")
            else:
                t = top - top % 1000
                styles = ("ms", "us", "ms+") if t > below else ("us",)
                if t <= below:
                    t = top
            off = rng.randrange(5)
            for k, j in enumerate(range(a, b + 1)):
                inst[j] = [t, styles[(k + off) % len(styles)]]
        for a in near:
            top = inst[a][0]
            whole = top - top % _US
            below = inst[a + 2][0] if a + 2 < n else -1
            if whole > below:
                inst[a] = [whole + rng.randrange(1, 1000) * 1000, "ms"]
                inst[a + 1] = [whole, "s"]
        keyed = []
        for t, style in inst:
            rid = f"response_{_uuid(rng)}"
            keyed.append((t, rid, style))
        keyed.sort()
        keys = sv.keys
        bodies = sv.bodies
        for t, rid, style in keyed:
            keys.append((t, rid))
            bodies.append(_dumps(self._response(rng, sv, rid, format_instant(t, style))))

    def _response(self, rng: random.Random, sv: SurveyData, rid: str, created: str) -> dict:
        rnd = rng.random
        choice = rng.choice
        has_sent = sv.has_sentiment
        sent_on = sv.sentiment_enabled
        complete = rnd() >= 0.1
        qs = sv.answerable
        if not complete:
            qs = qs[: rng.randrange(len(qs))] if qs else qs
        answers = []
        for qid, t, required, choices in qs:
            if not required and rnd() < 0.25:
                continue
            comment = None
            sentiment = None
            if t == "nps":
                a = str(rng.randrange(11))
            elif t == "rating-1-5" or t == "reaction":
                a = str(rng.randrange(1, 6))
            elif t == "rating-1-7":
                a = str(rng.randrange(1, 8))
            elif t == "single-option":
                text, allow = choice(choices)
                a = text
                if allow and rnd() < 0.6:
                    comment = choice(_COMMENTS)
            elif t == "multiple-option":
                picked = [c for c in choices if rnd() < 0.5] or [choice(choices)]
                a = ", ".join(c[0] for c in picked)
                if any(c[1] for c in picked) and rnd() < 0.6:
                    comment = choice(_COMMENTS)
            elif t == "email":
                a = f"{choice(_EMAIL_LOCAL)}{rng.randrange(1000) % _EMAIL_NUMBERS}@{choice(_EMAIL_DOMAIN)}"
            elif t == "short-text":
                a = choice(_SHORT)
            else:  # long-text
                a = choice(_LONG)
                if rnd() < 0.3:
                    a = a + " " + choice(_LONG)
            if t in _TEXT_TYPES and sent_on:
                r = rnd()
                sentiment = "positive" if r < 0.35 else "negative" if r < 0.6 else "neutral" if r < 0.85 else None
            if comment is None and rnd() < 0.04:
                comment = choice(_COMMENTS)
            tags = [] if rnd() < 0.8 else [{"name": n} for n in rng.sample(_TAGS, rng.randint(1, 2))]
            ans = {"answer": a, "comment": comment, "question_id": qid, "tags": tags}
            if has_sent:
                ans["sentiment"] = sentiment
            answers.append(ans)
        if rnd() < 0.03:
            while True:
                ghost = f"question_{sv.uuid}_{rng.getrandbits(32):08x}"
                if ghost not in sv.question_ids:
                    break
            ans = {"answer": choice(_SHORT + _LONG), "comment": None, "question_id": ghost, "tags": []}
            if has_sent:
                ans["sentiment"] = None
            answers.insert(rng.randrange(len(answers) + 1), ans)
        browser, os_name, device = choice(_BROWSERS)
        r = rnd()
        window: dict[str, int | None]
        if r < 0.04:
            window = {"height": None, "width": None}
        elif r < 0.06:
            window = {"height": None, "width": choice(_SIZES[device])[0]}
        else:
            w, h = choice(_SIZES[device])
            window = {"height": h, "width": w}
        attrs: list[dict[str, Any]] = []
        if rnd() >= 0.3:
            attrs = [{"name": n, "value": _attr_value(rng, n)} for n in rng.sample(_ATTR_NAMES, rng.randint(1, 5))]
            # An identified user's Identify call sends their address too (no draw: the
            # rest of the data stays the same).
            attrs += [{"name": "email", "value": person_email(a["value"])} for a in attrs if a["name"] == "user_id"]
        extra = {}
        if self.extra_fields:
            extra = {"language": choice(["en", "fr", "ja"]), "device_pixel_ratio": 2.0}
            for a in answers:
                a["answer_kind"] = "text"
        return {
            **extra,
            "answers": answers,
            "browser": browser,
            "country": choice(_COUNTRIES),
            "created_time": created,
            "device": device,
            "hotjar_user_id": _uuid(rng),
            "id": rid,
            "is_complete": complete,
            "os": os_name,
            "recording_url": (
                f"https://insights.hotjar.com/r?site={sv.site_id}&recording={rng.getrandbits(40)}"
                if rnd() < 0.4
                else None
            ),
            "response_origin_url": choice(_HOSTS) + choice(_PATHS),
            "user_attributes": attrs,
            "window_size": window,
        }

    # ------------------------------------------------------------------ control

    def survey(self, site_id: int, survey_id: str) -> SurveyData | None:
        sv = self.by_id.get((site_id, survey_id))
        return None if sv is None or sv.deleted else sv

    def add_responses(self, site_id: int, survey_id: str, n: int) -> list[bytes]:
        """Append ``n`` responses newer than anything that exists; newest first."""
        sv = self.survey(site_id, survey_id)
        if sv is None:
            raise KeyError(f"no survey {survey_id!r} on site {site_id}")
        rng = self._add_rng
        out = []
        for _ in range(int(n)):
            t = self.clock_us + rng.randint(1, 90_000) * 1000
            r = rng.random()
            if r < 0.1:
                t = t - t % _US + _US
                style = "s"
            elif r < 0.15:
                style = "ms+"
            else:
                style = "ms"
            self.clock_us = t
            rid = f"response_{_uuid(rng)}"
            body = _dumps(self._response(rng, sv, rid, format_instant(t, style)))
            sv.keys.append((t, rid))
            sv.bodies.append(body)
            out.append(body)
        out.reverse()
        return out

    def delete_survey(self, site_id: int, survey_id: str) -> None:
        sv = self.survey(site_id, survey_id)
        if sv is None:
            raise KeyError(f"no survey {survey_id!r} on site {site_id}")
        sv.deleted = True
        self.sites[site_id].rebuild()

    def delete_responses(self, site_id: int, survey_id: str, response_ids: list[str]) -> int:
        """Delete these responses of a survey (as a person or an erasure would); returns how many were there."""
        sv = self.survey(site_id, survey_id)
        if sv is None:
            raise KeyError(f"no survey {survey_id!r} on site {site_id}")
        gone = set(response_ids)
        kept = [(key, body) for key, body in zip(sv.keys, sv.bodies, strict=True) if key[1] not in gone]
        deleted = len(sv.keys) - len(kept)
        sv.keys = [key for key, _ in kept]
        sv.bodies = [body for _, body in kept]
        sv.gen += 1
        return deleted

    def delete_question(self, site_id: int, survey_id: str, question_id: str) -> None:
        """Remove a question from a survey; answers already given to it stay in their responses."""
        sv = self.survey(site_id, survey_id)
        if sv is None or question_id not in sv.question_ids:
            raise KeyError(f"no question {question_id!r} in survey {survey_id!r} of site {site_id}")
        sv.questions = [q for q in sv.questions if q["id"] != question_id]
        sv.question_ids.discard(question_id)
        sv.answerable = [a for a in sv.answerable if a[0] != question_id]
        extra = {"sentiment_analysis_enabled": sv.sentiment_enabled}
        sv.without_q_bytes = _dumps({**sv.obj, **extra})
        sv.with_q_bytes = _dumps({**sv.obj, "questions": sv.questions, **extra})
        self.sites[site_id].rebuild()

    def position(self, keys: list[tuple[int, str]], key: tuple[int, str]) -> int:
        """Index in an ascending key list of the first key not before ``key``."""
        return bisect_left(keys, key)
