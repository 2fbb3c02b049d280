"""Bay LEDs: what each bay state looks like (pattern.py) and the drivers that show it."""
