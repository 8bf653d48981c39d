"""Small word lists that kwargs sampling draws from when synthesising new instructions."""

from __future__ import annotations

# Everyday content words: likely to fit many topics, free of regex metacharacters.
KEYWORDS: tuple[str, ...] = (
    "river", "garden", "window", "history", "energy", "market", "science", "music",
    "journey", "planet", "balance", "harvest", "signal", "mirror", "lantern", "bridge",
    "courage", "puzzle", "village", "engine", "forest", "harbor", "memory", "pattern",
    "quality", "weather", "kitchen", "network", "season", "library", "ocean", "custom",
    "vision", "method", "surface", "friend", "future", "budget", "coffee", "winter",
    "message", "student", "camera", "island", "record", "storm", "silver", "morning",
)  # fmt: skip

# Words a response should leave out; common enough that avoiding them takes care.
FORBIDDEN_WORDS: tuple[str, ...] = (
    "very", "really", "good", "bad", "thing", "things", "important", "great", "people",
    "just", "also", "many", "simple", "easy", "nice", "big", "small", "new", "best",
    "always", "never", "help", "problem", "example",
)  # fmt: skip

# ISO 639-1 codes that langdetect can identify, with their English names.
LANGUAGES: dict[str, str] = {
    "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "de": "German", "es": "Spanish",
    "fa": "Persian", "fi": "Finnish", "fr": "French", "gu": "Gujarati", "hi": "Hindi",
    "it": "Italian", "ja": "Japanese", "kn": "Kannada", "ko": "Korean", "ml": "Malayalam",
    "mr": "Marathi", "ne": "Nepali", "nl": "Dutch", "pa": "Punjabi", "pl": "Polish",
    "pt": "Portuguese", "ru": "Russian", "sw": "Swahili", "ta": "Tamil", "te": "Telugu",
    "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese",
    "en": "English",
}  # fmt: skip

SECTION_SPLITTERS: tuple[str, ...] = ("Section", "SECTION", "Part", "PART", "Chapter")

POSTSCRIPT_MARKERS: tuple[str, ...] = ("P.S.", "P.P.S")

END_PHRASES: tuple[str, ...] = (
    "That wraps it up.",
    "Hope this was useful.",
    "That is all for now.",
    "Thanks for reading!",
    "Over to you now.",
    "I hope this helps.",
)

PARAGRAPH_FIRST_WORDS: tuple[str, ...] = (
    "first", "however", "finally", "today", "overall", "meanwhile", "next", "moreover",
    "instead", "consider",
)  # fmt: skip
