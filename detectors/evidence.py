"""The evidence of one risk decision: what an alert's ``evidence`` carries, typed, with a JSON Schema.

`detectors.risk.RiskAssessor` builds an `Evidence` for every window it assesses; the risk stage puts it on
the alert (`crisiswatch.contracts.records.Alert.evidence`), a silence marks it (``silence``), and the renderers
(`crisiswatch.alerting.render`, `crisiswatch.alerting.plain`), the web timeline and charts and the backtest
read its attributes. The keys (and so the JSON of an alert) are those the evidence has always had.

Every field has a default, so an alert written before a field existed (or by a test, with only the facts
it needs) still parses: a number the evidence does not carry is ``None``, and a renderer leaves out what
is ``None``; maps and lists are empty.

Pure: pydantic and the standard library only.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from crisiswatch.contracts.vocabulary import Severity


def _term_counts(value: Any) -> Any:
    """Crisis terms as ``{term: count}``; a list of terms (an early evidence shape) counts each once."""
    if isinstance(value, list):
        return {str(term): 1 for term in value}
    return value


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SpikeEvidence(_Part):
    """A detector's verdict as the alert shows it: this window's count against its expectation."""

    observed: float | None = Field(None, description="This window's count (distinct stories, or negative mentions).")
    expected: float | None = Field(None, description="What the brand's baseline expects of this window.")
    score: float | None = Field(None, description="Strength of the detector's evidence, -log10 p.")
    p_value: float | None = Field(None, ge=0, le=1)
    spike: bool | None = None
    detector_observed: float | None = Field(
        None, description="What the detector's test observed (a sum over several windows for a sustained rise)."
    )
    detector_expected: float | None = Field(None, description="What the detector's test expected of that.")


class VolumeEvidence(SpikeEvidence):
    """The volume verdict, with the damped ratio the risk uses."""

    ratio: float | None = Field(None, description="(stories + 1) / (expected + 1).")


class Components(_Part):
    """The risk components, each in [0, 1] (see `detectors.risk`)."""

    volume: float = 0.0
    reach: float = 0.0
    spread: float = 0.0
    acceleration: float = 0.0
    loudness: float = 0.0
    negativity: float = 0.0
    crisis_terms: float = 0.0
    badness: float = 0.0


class ScaleEvidence(_Part):
    """The crisis gate's negativity test at the scale that decided (`detectors.crisis.ScaleEvidence`)."""

    windows: int
    stories: int
    negative: float = Field(description="Expected negative stories (sum of probabilities).")
    usual: float
    score: float
    lift: float
    ratio: float


class CrisisEvidence(_Part):
    """The crisis gate's verdict (`detectors.crisis.CrisisVerdict`): what *critical* needs."""

    critical: bool = False
    candidate: bool = False
    watch: bool = False
    persisted: int = 0
    corroboration: list[str] = Field(default_factory=list)
    unusual_terms: dict[str, float] = Field(default_factory=dict)
    usual_negativity: float = 0.0
    scale: ScaleEvidence | None = None


class CitedMention(_Part):
    """A top mention the evidence cites (`detectors.closed.TopMention`; an older alert may lack some keys)."""

    id: str | None = None
    text: str = ""
    source: str | None = None
    reach: int = Field(0, ge=0)
    lang: str | None = None
    sentiment: str | None = None
    url: str | None = None


class SilenceMark(_Part):
    """The planned event's silence that covered the window (`crisiswatch.control.silences.Silence.mark`)."""

    id: str
    reason: str
    by: str | None = Field(None, description="Who planned it.")
    start: str | None = Field(None, description="ISO-8601.")
    end: str | None = Field(None, description="ISO-8601.")


class Evidence(_Part):
    """The numbers behind one window's risk decision (an alert's ``evidence``)."""

    mentions: int | None = None
    stories: int | None = Field(None, description="Distinct stories (near-duplicates folded).")
    negative: int | None = None
    negative_stories: int | None = None
    neutral: int | None = None
    positive: int | None = None
    negative_share: float | None = None
    expected_negative_share: float | None = Field(None, description="The brand's usual negative share.")
    reach: int | None = None
    usual_reach: float | None = Field(None, description="The brand's usual reach per window.")
    volume: VolumeEvidence | None = None
    negativity: SpikeEvidence | None = None
    languages: dict[str, int] = Field(default_factory=dict)
    sources: dict[str, int] = Field(default_factory=dict)
    crisis_terms: Annotated[dict[str, int], BeforeValidator(_term_counts)] = Field(default_factory=dict)
    acceleration: float | None = None
    previous_stories: float | None = None
    top_mentions: list[CitedMention] = Field(default_factory=list)
    components: Components | None = None
    gates: list[str] = Field(default_factory=list, description="Why the risk was capped, one line each.")
    risk: float | None = Field(None, ge=0, le=100)
    severity: Severity | None = None
    pause: bool | None = None
    window_start: float | None = Field(None, description="Epoch seconds.")
    window_end: float | None = Field(None, description="Epoch seconds.")
    crisis: CrisisEvidence | None = None
    would_pause: bool | None = Field(None, description="The policy would pause, were the brand's history mature.")
    history_hours: float | None = None
    silence: SilenceMark | None = Field(None, description="Set when a planned event's silence covered the window.")

    @property
    def share(self) -> float | None:
        """The negative share: as given, else ``negative / mentions`` when both are known."""
        if self.negative_share is not None:
            return self.negative_share
        if self.negative is not None and self.mentions:
            return self.negative / self.mentions
        return None

    @property
    def ratio(self) -> float | None:
        """Stories against the usual: the volume ratio, else observed / expected when both are known."""
        volume = self.volume
        if volume is None:
            return None
        if volume.ratio is not None:
            return volume.ratio
        if volume.observed is not None and volume.expected:
            return volume.observed / volume.expected
        return None
