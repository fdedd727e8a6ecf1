"""Cells the kit is tested against: correct implementations and a catalogue of realistic bugs."""
