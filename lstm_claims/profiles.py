"""The kit's Hypothesis profiles, by name (`--claims-profile`, `lstm-claims run --profile`).

They are plain settings objects, applied to the claim checks only: the kit registers no
global Hypothesis profile and loads none, so a user's own property tests in the same pytest
run keep their own settings (the plugin is inert outside the claim suite).

ci (the default): derandomized (each check's seed derives from its case id, so every run
  draws the same examples, alone or inside the whole suite), 30 examples, no database:
  the whole claim suite in about 2 minutes serially on an idle 2-core machine, about 70 s
  with `-n 2` (README, "Several cores").
thorough: random seeds, 20 times the examples, for nightly runs (measured on the same machine: about
  31 minutes serially, 14 with `-n 2`). The session's seed is
  printed in the report header and claims.json (`--claims-seed` replays it), and each
  check's seed derives from it and the case id.
"""
from hypothesis import HealthCheck, Phase, settings

from lstm_claims.names import DEFAULT_PROFILE, PROFILE_DERANDOMIZED  # noqa: E402

CI, THOROUGH = "ci", "thorough"

# Every phase but `explain`: after shrinking, Hypothesis's explain phase re-runs the failing check
# varying each drawn choice to say which could vary freely, and the checks draw tensors choice by
# choice: measured, a check whose every example failed spent 53 s of its 80 s there (L0's autocast
# check on tests.cells.broken:WrongDtypeUnderAutocast), 19 s shrinking. The minimal example is
# printed either way.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)

_common = dict(deadline=None, print_blob=False, database=None, phases=PHASES,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much])

PROFILES = {
    CI: settings(max_examples=30, derandomize=True, **_common),
    THOROUGH: settings(max_examples=600, derandomize=False, **_common),
}
assert {name: s.derandomize for name, s in PROFILES.items()} == PROFILE_DERANDOMIZED and DEFAULT_PROFILE in PROFILES


def profile_settings(name: str) -> settings:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; the kit's profiles are {', '.join(PROFILES)}") from None
