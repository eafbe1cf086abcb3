"""Charts drawn on the server as SVG (templates/insights/_chart.html): no script, nothing from
a CDN, nothing for the CSP to allow, and readable without sight (a title, a description and the
same figures as a table beside each chart). This module only does the geometry: where each
point, bar and tick goes in the drawing's coordinates. The template formats every value in the
viewer's language."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

WIDTH = 640
HEIGHT = 220
LEFT = 72  # room for the tick labels
RIGHT = 12
TOP = 12
BOTTOM = 28  # room for the month labels
TICKS = 4

Number = Decimal | int


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    value: Number


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: Number


@dataclass(frozen=True)
class Series:
    label: str
    css: str  # the class that colours it (static/css/app.css, .chart .series-<css>)
    points: list[Point]
    bars: list[Bar]

    @property
    def path(self) -> str:
        return " ".join(f"{point.x:.1f},{point.y:.1f}" for point in self.points)


@dataclass(frozen=True)
class Tick:
    y: float
    value: Number


@dataclass(frozen=True)
class Chart:
    months: list[tuple[float, date]]  # (x of the label, month)
    ticks: list[Tick]
    series: list[Series]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    baseline: int = HEIGHT - BOTTOM

    @property
    def rows(self) -> list[tuple[date, list[Number]]]:
        """The figures as a table: each month with its value in each series."""
        columns = [
            [point.value for point in series.points] or [bar.value for bar in series.bars]
            for series in self.series
        ]
        return [
            (month, [column[index] for column in columns])
            for index, (_x, month) in enumerate(self.months)
        ]


def nice_step(largest: Number, ticks: int = TICKS) -> Decimal:
    """A round step (1, 2, 2.5 or 5 times a power of ten) so that `ticks` steps cover
    `largest`."""
    if largest <= 0:
        return Decimal(1)
    raw = Decimal(largest) / ticks
    power = Decimal(10) ** math.floor(math.log10(raw))
    for factor in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        if power * factor >= raw:
            step = power * factor
            break
    return step if step >= 1 else Decimal(1)


def _scale(values: Sequence[Sequence[Number]]) -> tuple[Decimal, list[Tick]]:
    largest = max((value for row in values for value in row), default=0)
    step = nice_step(largest)
    top = step * TICKS
    height = HEIGHT - TOP - BOTTOM
    ticks = [
        Tick(y=float(HEIGHT - BOTTOM - height * index / TICKS), value=_tidy(step * index))
        for index in range(TICKS + 1)
    ]
    return top, ticks


def _tidy(value: Decimal) -> Number:
    return int(value) if value == value.to_integral_value() else value


def _y(value: Number, top: Decimal) -> float:
    height = HEIGHT - TOP - BOTTOM
    return float(HEIGHT - BOTTOM - height * Decimal(value) / top)


def _slots(months: Sequence[date]) -> tuple[float, list[float]]:
    slot = (WIDTH - LEFT - RIGHT) / max(len(months), 1)
    return slot, [LEFT + slot * index + slot / 2 for index in range(len(months))]


Drawn = Sequence[tuple[str, str, Sequence[Number]]]  # (label, css, a value per month)


def line_chart(months: Sequence[date], series: Drawn) -> Chart:
    """One line per series over the months."""
    top, ticks = _scale([values for _label, _css, values in series])
    _slot, centres = _slots(months)
    drawn = [
        Series(
            label=label,
            css=css,
            points=[
                Point(x=x, y=_y(value, top), value=value)
                for x, value in zip(centres, values, strict=True)
            ],
            bars=[],
        )
        for label, css, values in series
    ]
    return Chart(months=list(zip(centres, months, strict=True)), ticks=ticks, series=drawn)


def bar_chart(months: Sequence[date], series: Drawn) -> Chart:
    """Bars side by side for each month, one per series. Negative values (a month of more
    credit notes than invoices) are drawn as nothing."""
    top, ticks = _scale([[max(value, 0) for value in values] for _l, _c, values in series])
    slot, centres = _slots(months)
    width = slot * 0.8 / max(len(series), 1)
    baseline = HEIGHT - BOTTOM
    drawn = []
    for index, (label, css, values) in enumerate(series):
        bars = []
        for position, value in enumerate(values):
            x = LEFT + slot * position + slot * 0.1 + width * index
            y = _y(max(value, 0), top)
            bars.append(Bar(x=x, y=y, width=width, height=baseline - y, value=value))
        drawn.append(Series(label=label, css=css, points=[], bars=bars))
    return Chart(months=list(zip(centres, months, strict=True)), ticks=ticks, series=drawn)
