"""The synthetic publisher behind `b2p sample`: its catalogue and the slots and ads it served.

Everything here is plain in-memory objects. `ingest.sample.files` turns them into log rows and
`ingest.sample.truth` computes the marts from them, so the ground truth never goes through the CSVs.

Realism that is deliberate (and guaranteed by the showcase transactions, whatever the seed):
every time_position_class in several spellings, paid and unpaid sales types in several spellings,
unsold slots, slots without max_slot_duration, overflowing slots, ads without a duration, orphan
ads (the slotImpression beacon was lost), live content without a series, traffic without a site,
ids missing from the dimension snapshots, and slots at 23:59 whose ads land on the next day.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MS_PER_SECOND = 1000
MS_PER_MINUTE = 60_000
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000

NETWORK_ID = 516_410

# Turns a raw event time into the one the logs will carry (whole seconds in some hours).
Quantize = Callable[[int], int]


@dataclass(frozen=True)
class Site:
    site_id: int
    name: str
    in_dimension: bool  # False: the ids occur in the logs but the API does not know them yet


@dataclass(frozen=True)
class SiteSection:
    site_section_id: int
    name: str
    site_id: int
    in_dimension: bool


@dataclass(frozen=True)
class Series:
    series_id: int
    name: str
    in_dimension: bool


@dataclass(frozen=True)
class VideoAsset:
    video_asset_id: int
    site_id: int | None
    site_section_id: int | None
    series_id: int | None  # None for live content
    live: bool


@dataclass(frozen=True)
class Creative:
    """An ad of the ad server: what a slot can be filled with."""

    ad_id: int
    creative_id: int
    duration: float | None  # display ads often have none
    sales_type: str | None  # as the ad server spells it, None = empty
    placement: str  # "video", "overlay" or "display"

    @property
    def placement_id(self) -> int:
        return placement_id_for(self.sales_type, self.placement)


@dataclass(frozen=True)
class Visitor:
    """Free-text columns the contract does not know; the same for every event of a request."""

    user_agent: str
    custom_visitor_field: str
    ad_server_node: str


@dataclass(frozen=True)
class Ad:
    ad_id: int
    creative_id: int
    event_time_ms: int  # the defaultImpression
    ad_duration: float | None
    sales_type: str | None
    placement_id: int  # the FreeWheel placement (line item) it was booked on
    # quartiles, completes and clicks: logged, never counted
    followups: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Slot:
    transaction_id: str
    slot_id: str
    event_time_ms: int  # the slotImpression
    time_position_class: str  # as logged (any case)
    site_id: int | None
    site_section_id: int | None
    series_id: int | None
    video_asset_id: int
    max_slot_duration: float | None
    ads: tuple[Ad, ...]
    visitor: Visitor
    logged: bool  # False: no slotImpression was logged, so its ads are orphans


@dataclass(frozen=True)
class Catalogue:
    sites: tuple[Site, ...]
    site_sections: tuple[SiteSection, ...]
    series: tuple[Series, ...]
    videos: tuple[VideoAsset, ...]
    creatives: tuple[Creative, ...]

    def creatives_for(self, placement: str) -> tuple[Creative, ...]:
        return tuple(c for c in self.creatives if c.placement == placement)


SITES: tuple[Site, ...] = (
    Site(31001, "Bones & Peaches TV", True),
    Site(31002, "Cuisine & Vins, Édition Spéciale", True),
    Site(31003, 'The "Late" Network', True),
    Site(31004, "Ñandú Deportes", True),
    Site(31005, "Beta Player", False),
)
SITE_SECTIONS: tuple[SiteSection, ...] = (
    SiteSection(41001, "Home", 31001, True),
    SiteSection(41002, "Drama, Thrillers", 31001, True),
    SiteSection(41003, "News — Live", 31001, True),
    SiteSection(41004, "Recettes", 31002, True),
    SiteSection(41005, "Vins & Fromages", 31002, True),
    SiteSection(41006, 'Episodes "Full"', 31003, True),
    SiteSection(41007, "Clips", 31003, True),
    SiteSection(41008, "Fútbol", 31004, True),
    SiteSection(41009, "Béisbol en vivo", 31004, True),
    SiteSection(41010, "Beta Lab", 31005, True),
    SiteSection(41011, "Apéro (new)", 31002, False),
)
SERIES: tuple[Series, ...] = (
    Series(51001, "The Bone Collector's Kitchen", True),
    Series(51002, "Peaches, Cream & Crime", True),
    Series(51003, "Cuisine & Vins, Édition Spéciale", True),
    Series(51004, 'Le "Grand" Fromage', True),
    Series(51005, "Late Night, Later", True),
    Series(51006, "Copa Ñandú", True),
    Series(51007, "Pitch & Paella", True),
    Series(51008, "Zürich Nights", True),
    Series(51009, "Untitled Pilot", False),
)
# Sections that stream live channels (no series) and the series each site's VOD draws from.
LIVE_SECTIONS = (41003, 41009)
SERIES_BY_SITE: dict[int, tuple[int, ...]] = {
    31001: (51001, 51002, 51005),
    31002: (51003, 51004),
    31003: (51005, 51008, 51002),
    31004: (51006, 51007),
    31005: (51009,),
}
# How often each section is visited; the ones missing from the dimensions are rare.
SECTION_WEIGHTS: dict[int, int] = {
    41001: 12,
    41002: 14,
    41003: 8,
    41004: 10,
    41005: 6,
    41006: 12,
    41007: 9,
    41008: 10,
    41009: 5,
    41010: 1,
    41011: 2,
}

# time_position_class as different ad servers and SDKs log it; the canonical upper case dominates.
CLASS_SPELLINGS: dict[str, tuple[str, ...]] = {
    "PREROLL": ("preroll", "PreRoll"),
    "MIDROLL": ("midroll", "MidRoll"),
    "PAUSE_MIDROLL": ("pause_midroll", "Pause_Midroll"),
    "POSTROLL": ("postroll", "PostRoll"),
    "OVERLAY": ("overlay", "Overlay "),
    "DISPLAY": ("display", "Display"),
    "INTERSTITIAL": ("interstitial",),  # not in the slot-type map: slot_type 'other'
}
PAID_SALES_TYPES = ("GUARANTEED", "PREFERRED_DEAL", "OPEN_MARKET", "Open_Market", "guaranteed")
UNPAID_SALES_TYPES: tuple[str | None, ...] = (
    "HOUSE",
    "House",
    "PROMO",
    "promo",
    "FILLER",
    "Filler ",
    "DEFAULT",
    None,
)
VIDEO_DURATIONS = (6.0, 15.0, 15.0, 15.5, 20.0, 30.0, 30.0, 30.0, 60.0)

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (SMART-TV; Linux; Tizen 8.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/8.0 TV Safari/537.36",
    "Roku/DVP-14.0 (14.0.4.5005-46)",
    'AppleCoreMedia/1.0.0.21K79 (Apple TV; U; CPU OS 17_2 like Mac OS X; fr_fr) "tvOS"',
    "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UQ1A.240105.004)",
)
VISITOR_NOTES = (
    "",
    "",
    "",
    "seg=sports;tier=free",
    "genre=drama, comedy",
    'note="vip", consent=yes',
    "campaign=fall\nsource=newsletter",
    "Ümlaut & friends, größe=L",
)


# The placement (line item) a creative is booked on: one per kind of sale and ad format. House,
# promo, filler and default ads run on the publisher's own placements (61xxxx), which a
# publisher lists as house placements.
_PLACEMENT_BASE: dict[str, int] = {
    "GUARANTEED": 620_001,
    "PREFERRED_DEAL": 620_002,
    "OPEN_MARKET": 630_001,
    "HOUSE": 610_001,
    "PROMO": 610_002,
    "FILLER": 610_003,
    "DEFAULT": 610_004,
    "": 640_001,
}
AD_FORMATS = ("video", "overlay", "display")


def placement_id_for(sales_type: str | None, ad_format: str) -> int:
    family = (sales_type or "").strip().upper()
    return _PLACEMENT_BASE[family] + 100 * AD_FORMATS.index(ad_format)


def build_catalogue(rng: random.Random) -> Catalogue:
    return Catalogue(
        sites=SITES,
        site_sections=SITE_SECTIONS,
        series=SERIES,
        videos=build_videos(rng),
        creatives=build_creatives(rng),
    )


def build_videos(rng: random.Random) -> tuple[VideoAsset, ...]:
    sections = {s.site_section_id: s for s in SITE_SECTIONS}
    videos: list[VideoAsset] = []
    next_id = 7_100_001
    for section_id, weight in SECTION_WEIGHTS.items():
        site_id = sections[section_id].site_id
        for _ in range(weight):
            live = section_id in LIVE_SECTIONS
            series_id = None if live else rng.choice(SERIES_BY_SITE[site_id])
            videos.append(VideoAsset(next_id, site_id, section_id, series_id, live))
            next_id += 1
    # Embeds on third-party pages arrive without site or section.
    videos.append(VideoAsset(next_id, None, None, 51002, False))
    videos.append(VideoAsset(next_id + 1, None, None, None, True))
    return tuple(videos)


def build_creatives(rng: random.Random) -> tuple[Creative, ...]:
    creatives: list[Creative] = []
    next_ad = 880_001
    # Every sales-type spelling gets video ads of several lengths, so each one shows up.
    for sales_type in PAID_SALES_TYPES + PAID_SALES_TYPES + UNPAID_SALES_TYPES:
        # a 30-second ad for each, so the long midnight break can be filled from any of them
        for duration in (30.0, *rng.sample(VIDEO_DURATIONS, 2)):
            creatives.append(
                Creative(next_ad, next_ad * 10 + 1, duration, sales_type, placement="video")
            )
            next_ad += 1
    for sales_type in ("GUARANTEED", "OPEN_MARKET", "HOUSE", "PREFERRED_DEAL"):
        for duration in (6.0, 10.0):
            creatives.append(Creative(next_ad, next_ad * 10 + 1, duration, sales_type, "overlay"))
            next_ad += 1
    for sales_type in ("GUARANTEED", "OPEN_MARKET", "PROMO", None):
        for duration in (None, 10.0):
            creatives.append(Creative(next_ad, next_ad * 10 + 1, duration, sales_type, "display"))
            next_ad += 1
    return tuple(creatives)


# ---------------------------------------------------------------------------------------------
# slots and ads


@dataclass(frozen=True)
class SlotSpec:
    """What a slot should be before it is filled with ads."""

    slot_id: str
    canonical_class: str
    offset_ms: int  # from the start of the request
    max_slot_duration: float | None


CAPACITY_CHOICES: dict[str, tuple[float | None, ...]] = {
    "PREROLL": (30.0, 30.0, 60.0, 60.0, 90.0, None),
    "MIDROLL": (60.0, 90.0, 120.0, 120.0, 180.0, None),
    "PAUSE_MIDROLL": (15.0, 30.0, None),
    "POSTROLL": (30.0, 60.0, None),
    "OVERLAY": (10.0, 15.0, 15.0),
    "DISPLAY": (10.0, 10.0, None),
    "INTERSTITIAL": (15.0, None),
}
PLACEMENT_OF_CLASS = {"OVERLAY": "overlay", "DISPLAY": "display"}
MAX_ADS = {"video": 8, "overlay": 2, "display": 2}


def spell_class(rng: random.Random, canonical: str) -> str:
    if rng.random() < 0.88:
        return canonical
    return rng.choice(CLASS_SPELLINGS[canonical])


def request_layout(rng: random.Random, video: VideoAsset) -> list[SlotSpec]:
    """The breaks one video view asks for, with their times relative to its start."""
    specs: list[tuple[str, str, int]] = []
    if not video.live or rng.random() < 0.5:
        specs.append(("pre_1", "PREROLL", rng.randint(150, 1500)))
    cursor = 0
    for n in range(rng.choice((0, 1, 1, 2, 2, 3))):
        cursor += rng.randint(4 * MS_PER_MINUTE, 12 * MS_PER_MINUTE)
        specs.append((f"mid_{n + 1}", "MIDROLL", cursor))
    if not video.live and rng.random() < 0.12:
        specs.append(("pause_1", "PAUSE_MIDROLL", rng.randint(MS_PER_MINUTE, 20 * MS_PER_MINUTE)))
    if not video.live and rng.random() < 0.35:
        specs.append(("post_1", "POSTROLL", cursor + rng.randint(3, 15) * MS_PER_MINUTE))
    if rng.random() < 0.3:
        specs.append(("ovl_1", "OVERLAY", rng.randint(2 * MS_PER_MINUTE, 8 * MS_PER_MINUTE)))
    if rng.random() < 0.35:
        specs.append(("disp_300x250", "DISPLAY", rng.randint(50, 400)))
    if rng.random() < 0.01:
        specs.append(("int_1", "INTERSTITIAL", rng.randint(MS_PER_MINUTE, 5 * MS_PER_MINUTE)))
    return [
        SlotSpec(slot_id, cls, offset, rng.choice(CAPACITY_CHOICES[cls]))
        for slot_id, cls, offset in specs
    ]


def choose_creatives(
    rng: random.Random, pool: Sequence[Creative], capacity: float | None, max_ads: int
) -> list[Creative]:
    """Fill a break: sometimes unsold, usually within capacity, sometimes overflowing it."""
    if rng.random() < 0.1:
        return []
    limit = capacity if capacity is not None else rng.choice((15.0, 30.0, 60.0, 90.0))
    picked: list[Creative] = []
    used = 0.0
    while len(picked) < max_ads:
        fitting = [c for c in pool if used + (c.duration or 0.0) <= limit]
        if not fitting:
            break
        creative = rng.choice(fitting)
        picked.append(creative)
        used += creative.duration or 0.0
        if rng.random() < 0.25:
            break
    if capacity is not None and picked and rng.random() < 0.05:
        picked.append(rng.choice(pool))  # the ad server overbooked the break
    return picked


def play_ads(
    rng: random.Random, creatives: Sequence[Creative], slot_time_ms: int, quantize: Quantize
) -> tuple[Ad, ...]:
    """Ads play back to back; each starts at least a second after the previous one, so no two
    defaultImpressions of a slot can become identical when times are cut to whole seconds."""
    cursor = slot_time_ms + rng.randint(100, 900)
    ads: list[Ad] = []
    for creative in creatives:
        duration_ms = round((creative.duration or 0.0) * MS_PER_SECOND)
        ads.append(
            Ad(
                ad_id=creative.ad_id,
                creative_id=creative.creative_id,
                event_time_ms=quantize(cursor),
                ad_duration=creative.duration,
                sales_type=creative.sales_type,
                placement_id=creative.placement_id,
                followups=followups(rng, creative, cursor, duration_ms, quantize),
            )
        )
        cursor += max(MS_PER_SECOND, duration_ms) + rng.randint(150, 900)
    return tuple(ads)


def followups(
    rng: random.Random, creative: Creative, start_ms: int, duration_ms: int, quantize: Quantize
) -> tuple[tuple[str, int], ...]:
    events: list[tuple[str, int]] = []
    if creative.placement == "video" and rng.random() < 0.6:
        for name, share in (
            ("firstQuartile", 0.25),
            ("midPoint", 0.5),
            ("thirdQuartile", 0.75),
            ("complete", 1.0),
        ):
            events.append((name, quantize(start_ms + round(duration_ms * share) + 40)))
            if rng.random() < 0.05:
                break  # the viewer left
    if rng.random() < 0.03:
        events.append(("click", quantize(start_ms + rng.randint(500, max(600, duration_ms)))))
    return tuple(events)


def build_slot(
    rng: random.Random,
    catalogue: Catalogue,
    transaction_id: str,
    video: VideoAsset,
    visitor: Visitor,
    spec: SlotSpec,
    start_ms: int,
    quantize: Quantize,
    *,
    time_position_class: str | None = None,
    creatives: Sequence[Creative] | None = None,
    logged: bool | None = None,
) -> Slot:
    placement = PLACEMENT_OF_CLASS.get(spec.canonical_class, "video")
    if creatives is None:
        pool = catalogue.creatives_for(placement)
        creatives = choose_creatives(rng, pool, spec.max_slot_duration, MAX_ADS[placement])
    slot_time = start_ms + spec.offset_ms
    ads = play_ads(rng, creatives, slot_time, quantize)
    if logged is None:
        logged = not (ads and rng.random() < 0.004)  # a lost slotImpression beacon
    return Slot(
        transaction_id=transaction_id,
        slot_id=spec.slot_id,
        event_time_ms=quantize(slot_time),
        time_position_class=time_position_class or spell_class(rng, spec.canonical_class),
        site_id=video.site_id,
        site_section_id=video.site_section_id,
        series_id=video.series_id,
        video_asset_id=video.video_asset_id,
        max_slot_duration=spec.max_slot_duration,
        ads=ads,
        visitor=visitor,
        logged=logged,
    )


class TransactionIds:
    """Unique FreeWheel-like transaction ids (a redraw on the unlikely collision)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._seen: set[str] = set()

    def new(self, start_ms: int) -> str:
        while True:
            candidate = f"{start_ms // MS_PER_SECOND}-{self._rng.getrandbits(64):016x}"
            if candidate not in self._seen:
                self._seen.add(candidate)
                return candidate


def new_visitor(rng: random.Random) -> Visitor:
    return Visitor(
        user_agent=rng.choice(USER_AGENTS),
        custom_visitor_field=rng.choice(VISITOR_NOTES),
        ad_server_node=f"ads-{rng.choice(('fra', 'iad', 'sfo'))}-{rng.randint(1, 12):02d}",
    )


def weighted_video(rng: random.Random, catalogue: Catalogue) -> VideoAsset:
    if rng.random() < 0.01:
        return rng.choice([v for v in catalogue.videos if v.site_id is None])
    return rng.choice([v for v in catalogue.videos if v.site_id is not None])


def random_request(
    rng: random.Random,
    catalogue: Catalogue,
    ids: TransactionIds,
    start_ms: int,
    quantize: Quantize,
) -> list[Slot]:
    video = weighted_video(rng, catalogue)
    transaction_id = ids.new(start_ms)
    visitor = new_visitor(rng)
    return [
        build_slot(rng, catalogue, transaction_id, video, visitor, spec, start_ms, quantize)
        for spec in request_layout(rng, video)
    ]


def generate_slots(
    rng: random.Random,
    catalogue: Catalogue,
    start_ms: int,
    days: int,
    slots_per_hour: int,
    quantize: Quantize,
) -> list[Slot]:
    """Every slot (logged or not) of `days` days of traffic from `start_ms` (a UTC midnight)."""
    ids = TransactionIds(rng)
    slots: list[Slot] = showcase_requests(rng, catalogue, ids, start_ms, quantize)
    for hour in range(days * 24):
        hour_start = start_ms + hour * MS_PER_HOUR
        made = 0
        while made < slots_per_hour:
            request_start = hour_start + rng.randrange(MS_PER_HOUR)
            request = random_request(rng, catalogue, ids, request_start, quantize)
            slots.extend(request)
            made += len(request)
    for day in range(days):
        slots.extend(midnight_break(rng, catalogue, ids, start_ms + day * MS_PER_DAY, quantize))
    return slots


def midnight_break(
    rng: random.Random,
    catalogue: Catalogue,
    ids: TransactionIds,
    day_start_ms: int,
    quantize: Quantize,
) -> list[Slot]:
    """A long live break starting at 23:59:xx: its slotImpression is in the day's last file and
    its ads in the next day's first one."""
    start = day_start_ms + MS_PER_DAY - MS_PER_MINUTE + rng.randint(5_000, 40_000)
    video = rng.choice([v for v in catalogue.videos if v.live and v.site_id is not None])
    thirty = [c for c in catalogue.creatives_for("video") if c.duration == 30.0]
    spec = SlotSpec("mid_1", "MIDROLL", 0, 150.0)
    creatives = [rng.choice(thirty) for _ in range(4)]
    slot = build_slot(
        rng,
        catalogue,
        ids.new(start),
        video,
        new_visitor(rng),
        spec,
        start,
        quantize,
        time_position_class="MIDROLL",
        creatives=creatives,
        logged=True,
    )
    return [slot]


def showcase_requests(
    rng: random.Random,
    catalogue: Catalogue,
    ids: TransactionIds,
    start_ms: int,
    quantize: Quantize,
) -> list[Slot]:
    """Requests in the first minutes that carry every variant at least once, so a small or
    unlucky sample still exercises every rule (each one is also common in the random traffic)."""
    videos = {v.site_section_id: v for v in catalogue.videos if v.site_section_id is not None}
    unknown_site = videos[41010]  # site 31005 and series 51009 are unknown to the dimensions
    unknown_section = videos[41011]
    live = next(v for v in catalogue.videos if v.live and v.site_id is not None)
    no_site = next(v for v in catalogue.videos if v.site_id is None)
    visitor = Visitor(
        user_agent=USER_AGENTS[3],
        custom_visitor_field='Quoted "VIP", multi-line\nsecond line, with comma',
        ad_server_node="ads-fra-01",
    )
    video_pool = catalogue.creatives_for("video")
    slots: list[Slot] = []

    def add(
        video: VideoAsset,
        spec: SlotSpec,
        offset_ms: int,
        time_position_class: str | None = None,
        creatives: Sequence[Creative] | None = None,
        logged: bool | None = None,
    ) -> None:
        start = start_ms + offset_ms
        slot = build_slot(
            rng,
            catalogue,
            ids.new(start),
            video,
            visitor,
            spec,
            start,
            quantize,
            time_position_class=time_position_class,
            creatives=creatives,
            logged=logged,
        )
        slots.append(slot)

    # every spelling of every class, each with a normal random fill
    for n, (canonical, spellings) in enumerate(CLASS_SPELLINGS.items()):
        for m, spelling in enumerate((canonical, *spellings)):
            spec = SlotSpec(f"show_{n}_{m}", canonical, 0, rng.choice(CAPACITY_CHOICES[canonical]))
            add(unknown_site, spec, 60_000 + n * 7_000 + m * 1_000, time_position_class=spelling)
    # one ad of every sales-type spelling, in a break without max_slot_duration
    every_sales_type: dict[str | None, Creative] = {}
    for creative in video_pool:
        every_sales_type.setdefault(creative.sales_type, creative)
    add(
        unknown_section,
        SlotSpec("mid_1", "MIDROLL", 0, None),
        120_000,
        time_position_class="MIDROLL",
        creatives=list(every_sales_type.values()),
        logged=True,
    )
    longest_paid = max(
        (c for c in video_pool if c.sales_type == "GUARANTEED"), key=lambda c: c.duration or 0.0
    )
    overbooked = [longest_paid] * (int(60.0 // (longest_paid.duration or 1.0)) + 1)
    # unsold, overflowing, orphaned, live and site-less breaks
    add(live, SlotSpec("pre_1", "PREROLL", 0, 30.0), 130_000, creatives=[], logged=True)
    add(live, SlotSpec("mid_1", "MIDROLL", 0, 60.0), 140_000, creatives=overbooked, logged=True)
    add(
        live, SlotSpec("mid_2", "MIDROLL", 0, 60.0), 150_000, creatives=[longest_paid], logged=False
    )
    add(no_site, SlotSpec("pre_1", "PREROLL", 0, 30.0), 160_000, logged=True)
    add(
        no_site,
        SlotSpec("disp_300x250", "DISPLAY", 0, None),
        170_000,
        creatives=[c for c in catalogue.creatives_for("display") if c.duration is None][:2],
        logged=True,
    )
    return slots
