"""The kit's names that the pytest plugin needs before a claim session starts: plain constants, no imports.

The plugin is loaded into every pytest run of an environment where the kit is installed; it
reads these to declare its options and validate them, and imports torch, Hypothesis and the
claim records only when a run collects the claim suite (lstm_claims/plugin.py: _load_kit).
The modules that own each name import it from here (one definition).
"""
CLAIM_IDS = ("L0", "L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8", "L9",
             "G1", "G2", "G3", "G4", "V1", "V2", "V3", "R1", "R2")
DEVICES = ("cpu", "cuda")
DTYPE_NAMES = ("float64", "float32", "bfloat16", "float16")
DEFAULT_IMPL = "lstm_claims.reference.reference_cell:ReferenceLSTMCell"
# The kit's Hypothesis profiles (lstm_claims/profiles.py) and whether each is derandomized.
PROFILE_DERANDOMIZED = {"ci": True, "thorough": False}
DEFAULT_PROFILE = "ci"
