"""Seeded text pools of the instruction domain: topics, request templates, sentence parts.

Everything here is written for this project. Every piece is free of commas (so the
no-comma instruction never needs rewriting), and no piece starts a sentence with a
one-letter word such as "A" or "I" (an all-capital token that the capital-word
frequency checker would count). Sentences are built as subject + predicate
(+ complement), so a filter can drop single pieces instead of whole sentences.
"""

from __future__ import annotations

from dataclasses import dataclass

TOPICS: tuple[str, ...] = (
    "urban beekeeping", "the history of lighthouses", "learning to play the cello",
    "night trains across Europe", "composting at home", "the craft of bookbinding",
    "amateur astronomy", "mountain hut etiquette", "sourdough baking", "community radio",
    "repairing old bicycles", "birdwatching in wetlands", "the economics of street food",
    "public libraries in small towns", "learning a second language as an adult",
    "designing a board game", "rainwater harvesting", "the rise of electric ferries",
    "chess clubs for teenagers", "restoring wooden boats", "urban tree planting",
    "the science of sleep", "volunteer firefighting", "handmade pottery",
    "the future of paper maps", "winter cycling", "keeping a field journal",
    "the story of the postal service", "saving seeds from a vegetable garden",
    "tide pools and their creatures", "starting a neighborhood choir",
    "the physics of rainbows", "caring for houseplants", "open-air cinemas",
    "the art of letter writing", "solar cooking", "the migration of eels",
    "ice skating on frozen lakes", "mapping hiking trails", "running a food cooperative",
    "the invention of the bicycle bell", "weaving on a small loom", "desert plants",
    "the first year of a startup", "lunar eclipses", "family recipes passed down",
    "quiet hobbies for busy parents", "the design of train stations",
)  # fmt: skip

# (kind, template); "{topic}" is replaced by the topic. Each request is one sentence.
REQUESTS: tuple[tuple[str, str], ...] = (
    ("essay", "Write an essay about {topic}."),
    ("letter", "Write a letter to a friend about {topic}."),
    ("product description", "Write a product description for a gadget built around {topic}."),
    ("story", "Write a short story about {topic}."),
    ("list", "Write a list of practical tips about {topic}."),
    ("blog post", "Write a blog post about {topic}."),
    ("speech", "Write a speech for a town meeting about {topic}."),
    ("review", "Write a review of a book about {topic}."),
    ("newsletter", "Write a newsletter article about {topic}."),
    ("explanation", "Explain {topic} to a curious teenager."),
    ("memo", "Write a company memo about {topic}."),
    ("diary entry", "Write a diary entry about a day spent on {topic}."),
)


@dataclass(frozen=True)
class LanguagePool:
    """Sentence parts and fixed phrases of one language."""

    code: str
    subjects: tuple[str, ...]  # may contain "{topic}" (English only)
    predicates: tuple[str, ...]
    complements: tuple[str, ...]
    conjunctions: tuple[str, ...]
    phrases: tuple[str, ...]  # noun phrases: bullets, highlights
    titles: tuple[str, ...]  # may contain "{topic}" (English only)
    placeholders: tuple[str, ...]
    postscripts: tuple[str, ...]
    placeholder_template: str  # "{items}" = the bracketed placeholders
    highlight_template: str  # "{items}" = the highlighted phrases
    caps_template: str  # "{items}" = words in capitals
    joiner: str  # joins listed items ("and")


ENGLISH = LanguagePool(
    code="en",
    subjects=(
        "{topic}", "the story of {topic}", "interest in {topic}", "our view of {topic}",
        "the practice of {topic}", "each part of {topic}", "this subject", "the whole field",
        "every beginner", "each season of work", "the local community", "daily practice",
    ),
    predicates=(
        "deserves a closer look", "changes with time", "rewards patient attention",
        "brings together skill and care", "asks for steady practice", "shapes daily routines",
        "draws curious minds", "grows slowly but surely", "connects old habits with fresh ideas",
        "offers quiet lessons", "depends on careful planning", "invites open questions",
        "leaves a lasting mark", "starts with small steps", "keeps evolving",
        "tells us something about ourselves",
    ),
    complements=(
        "in every season", "for young and old alike", "across several regions",
        "over the course of a year", "in towns and cities", "at home and at work",
        "with surprising results", "from one generation to the next", "without much fuss",
        "during the colder months", "around the world", "in our own neighborhood",
        "on a modest scale", "when nobody is watching",
    ),
    conjunctions=("and", "while", "so", "because"),
    phrases=(
        "clear plans for the first week", "the right tools close at hand",
        "time set aside for practice", "friends to share progress with", "notes on what worked",
        "quiet places to focus", "one modest goal per day", "ways to track progress",
        "patience with setbacks", "the habit of asking questions", "room for mistakes",
        "plenty of curiosity", "honest looks at the results", "reasons to keep going",
    ),
    titles=("{topic}", "thoughts on {topic}", "notes on {topic}", "inside {topic}"),
    placeholders=("name", "address", "date", "city", "phone number", "email", "company", "time"),
    postscripts=(
        "Thank you for reading this far.", "Write back if anything is unclear.",
        "More notes will follow soon.",
    ),
    placeholder_template="Fill in {items} before you share this.",
    highlight_template="Keep in mind {items}.",
    caps_template="Remember these words: {items}.",
    joiner="and",
)  # fmt: skip

SPANISH = LanguagePool(
    code="es",
    subjects=(
        "este tema", "la historia de este tema", "cada detalle", "nuestra comunidad",
        "el trabajo diario", "la práctica constante", "cada persona curiosa", "este asunto",
    ),
    predicates=(
        "merece una mirada atenta", "cambia con el paso del tiempo", "requiere paciencia y cuidado",
        "despierta mucho interés", "ofrece lecciones valiosas",
        "depende de una buena planificación", "une tradición y creatividad",
        "deja una huella duradera", "empieza con pasos pequeños", "sigue evolucionando",
    ),
    complements=(
        "en cada estación del año", "para jóvenes y mayores", "en muchas ciudades",
        "a lo largo de los años", "en casa y en el trabajo", "con resultados sorprendentes",
        "de una generación a otra", "sin prisa pero sin pausa",
    ),
    conjunctions=("y", "mientras"),
    phrases=(
        "un plan claro para la primera semana", "una lista corta de herramientas",
        "tiempo reservado para practicar", "notas sobre lo que funcionó",
        "un lugar tranquilo para concentrarse", "una meta pequeña cada día",
        "paciencia ante los obstáculos",
    ),
    titles=(
        "notas sobre este tema", "una mirada cercana", "ideas para empezar", "lecciones del camino",
    ),
    placeholders=("nombre", "dirección", "fecha", "ciudad", "teléfono"),
    postscripts=("Gracias por leer hasta aquí.", "Escríbeme si tienes preguntas."),
    placeholder_template="Completa {items} antes de enviarlo.",
    highlight_template="Recuerda {items}.",
    caps_template="Recuerda estas palabras: {items}.",
    joiner="y",
)  # fmt: skip

FRENCH = LanguagePool(
    code="fr",
    subjects=(
        "ce sujet", "l'histoire de ce sujet", "chaque détail", "notre communauté",
        "le travail quotidien", "la pratique régulière", "chaque personne curieuse",
        "cette question",
    ),
    predicates=(
        "mérite un regard attentif", "change avec le temps", "demande de la patience et du soin",
        "suscite beaucoup d'intérêt", "offre des leçons précieuses",
        "dépend d'une bonne préparation", "unit la tradition et la créativité",
        "laisse une trace durable", "commence par de petits pas", "continue d'évoluer",
    ),
    complements=(
        "à chaque saison de l'année", "pour les jeunes et les moins jeunes",
        "dans de nombreuses villes", "au fil des années", "à la maison comme au travail",
        "avec des résultats surprenants", "d'une génération à l'autre", "sans se presser",
    ),
    conjunctions=("et", "tandis que"),
    phrases=(
        "un plan clair pour la première semaine", "une courte liste d'outils",
        "du temps réservé à la pratique", "des notes sur ce qui a marché",
        "un endroit calme pour se concentrer", "un petit objectif chaque jour",
        "de la patience face aux obstacles",
    ),
    titles=("notes sur ce sujet", "un regard de près", "idées pour commencer", "leçons du chemin"),
    placeholders=("nom", "adresse", "date", "ville", "téléphone"),
    postscripts=("Merci de m'avoir lu jusqu'ici.", "Écris-moi si tu as des questions."),
    placeholder_template="Complète {items} avant de l'envoyer.",
    highlight_template="Retiens {items}.",
    caps_template="Retiens ces mots: {items}.",
    joiner="et",
)  # fmt: skip

GERMAN = LanguagePool(
    code="de",
    subjects=(
        "dieses Thema", "die Geschichte dieses Themas", "jedes Detail", "unsere Gemeinschaft",
        "die tägliche Arbeit", "die regelmäßige Übung", "jeder neugierige Mensch", "diese Frage",
    ),
    predicates=(
        "verdient einen genauen Blick", "verändert sich mit der Zeit",
        "verlangt Geduld und Sorgfalt", "weckt großes Interesse", "bietet wertvolle Lektionen",
        "braucht gute Planung", "verbindet Tradition und Kreativität",
        "hinterlässt bleibende Spuren", "beginnt mit kleinen Schritten",
        "entwickelt sich ständig",
    ),
    complements=(
        "in jeder Jahreszeit", "für Jung und Alt", "in vielen Städten", "im Laufe der Jahre",
        "zu Hause und bei der Arbeit", "mit überraschenden Ergebnissen",
        "von einer Generation zur nächsten", "ohne große Eile",
    ),
    conjunctions=("und", "denn"),
    phrases=(
        "ein klarer Plan für die erste Woche", "eine kurze Liste von Werkzeugen",
        "feste Zeit zum Üben", "Notizen über das was funktioniert hat",
        "ein ruhiger Ort zum Arbeiten", "ein kleines Ziel für jeden Tag",
        "Geduld bei Rückschlägen",
    ),
    titles=(
        "Notizen zu diesem Thema", "ein genauer Blick", "Ideen für den Anfang", "Lektionen vom Weg",
    ),
    placeholders=("Name", "Adresse", "Datum", "Stadt", "Telefon"),
    postscripts=("Danke fürs Lesen bis hierher.", "Schreib mir bei Fragen gern zurück."),
    placeholder_template="Ergänze {items} vor dem Versand.",
    highlight_template="Merke dir {items}.",
    caps_template="Merke dir diese Wörter: {items}.",
    joiner="und",
)  # fmt: skip

ITALIAN = LanguagePool(
    code="it",
    subjects=(
        "questo tema", "la storia di questo tema", "ogni dettaglio", "la nostra comunità",
        "il lavoro quotidiano", "la pratica costante", "ogni persona curiosa", "questa questione",
    ),
    predicates=(
        "merita uno sguardo attento", "cambia con il passare del tempo",
        "richiede pazienza e cura", "suscita molto interesse", "offre lezioni preziose",
        "dipende da una buona pianificazione", "unisce tradizione e creatività",
        "lascia un segno duraturo", "comincia con piccoli passi", "continua a evolversi",
    ),
    complements=(
        "in ogni stagione dell'anno", "per giovani e anziani", "in molte città",
        "nel corso degli anni", "a casa e al lavoro", "con risultati sorprendenti",
        "da una generazione all'altra", "senza fretta",
    ),
    conjunctions=("e", "mentre"),
    phrases=(
        "un piano chiaro per la prima settimana", "una breve lista di strumenti",
        "tempo dedicato alla pratica", "appunti su ciò che ha funzionato",
        "un posto tranquillo per concentrarsi", "un piccolo obiettivo ogni giorno",
        "pazienza davanti agli ostacoli",
    ),
    titles=(
        "appunti su questo tema", "uno sguardo da vicino", "idee per cominciare",
        "lezioni del cammino",
    ),
    placeholders=("nome", "indirizzo", "data", "città", "telefono"),
    postscripts=("Grazie per aver letto fin qui.", "Scrivimi se hai domande."),
    placeholder_template="Completa {items} prima di inviarlo.",
    highlight_template="Ricorda {items}.",
    caps_template="Ricorda queste parole: {items}.",
    joiner="e",
)  # fmt: skip

PORTUGUESE = LanguagePool(
    code="pt",
    subjects=(
        "este tema", "esta história", "cada detalhe", "nossa comunidade",
        "todo trabalho diário", "uma prática constante", "cada pessoa curiosa", "esta questão",
    ),
    predicates=(
        "merece um olhar atento", "muda com o passar do tempo", "exige paciência e cuidado",
        "desperta muito interesse", "oferece lições valiosas", "depende de um bom planejamento",
        "une tradição e criatividade", "deixa uma marca duradoura", "começa com pequenos passos",
        "continua a evoluir",
    ),
    complements=(
        "em cada estação do ano", "para jovens e idosos", "em muitas cidades",
        "ao longo dos anos", "em casa e no trabalho", "com resultados surpreendentes",
        "de uma geração para outra", "sem pressa",
    ),
    conjunctions=("e", "enquanto"),
    phrases=(
        "um plano claro para a primeira semana", "uma lista curta de ferramentas",
        "tempo reservado para praticar", "notas sobre o que funcionou",
        "um lugar tranquilo para se concentrar", "uma pequena meta por dia",
        "paciência diante dos obstáculos",
    ),
    titles=(
        "notas sobre este tema", "um olhar de perto", "ideias para começar", "lições do caminho",
    ),
    placeholders=("nome", "endereço", "data", "cidade", "telefone"),
    postscripts=("Obrigado por ler até aqui.", "Escreva-me se tiver perguntas."),
    placeholder_template="Preencha {items} antes de enviar.",
    highlight_template="Lembre-se de {items}.",
    caps_template="Lembre-se destas palavras: {items}.",
    joiner="e",
)  # fmt: skip

POOLS: dict[str, LanguagePool] = {
    pool.code: pool for pool in (ENGLISH, SPANISH, FRENCH, GERMAN, ITALIAN, PORTUGUESE)
}
# Languages the expert can write in; a language instruction is only drawn among these.
SUPPORTED_LANGUAGES: tuple[str, ...] = tuple(code for code in POOLS if code != "en")

# Words to mention a keyword in a sentence of its own ("{k}" = the keyword).
KEYWORD_SENTENCES: tuple[str, ...] = (
    "The word {k} comes to mind here.", "Think of the {k} for a moment.",
    "Every {k} tells its own story.", "We return to the {k} once more.",
    "Nothing here works without the {k}.",
)  # fmt: skip
KEYWORD_LIST_SENTENCE = "This piece touches on {items}."
LETTER_SENTENCE = "Words such as {items} come to mind."
CAPS_WORDS: tuple[str, ...] = (
    "CARE", "FOCUS", "PATIENCE", "CRAFT", "SKILL", "TIME", "PRACTICE", "DETAIL", "RHYTHM",
    "TRUST", "CLARITY", "STEADY", "CALM", "COURAGE", "WONDER",
)  # fmt: skip

# English words rich in each letter, used to reach a letter-frequency minimum.
LETTER_WORDS: dict[str, tuple[str, ...]] = {
    "a": ("banana", "canal", "papaya"), "b": ("bubble", "bamboo", "baby"),
    "c": ("circus", "cactus", "concert"), "d": ("middle", "dodo", "divided"),
    "e": ("breeze", "evening", "eleven"), "f": ("fluff", "fifty", "fifteen"),
    "g": ("giggle", "baggage", "gig"), "h": ("hush", "hitchhike", "health"),
    "i": ("insight", "civic", "infinite"), "j": ("jam", "jaunt", "jujitsu"),
    "k": ("kayak", "knock", "kiosk"), "l": ("lullaby", "lily", "ladle"),
    "m": ("mammal", "minimum", "momentum"), "n": ("noon", "banner", "nonstop"),
    "o": ("motto", "cocoon", "onion"), "p": ("pepper", "puppy", "paper"),
    "q": ("quiz", "quaint", "quay"), "r": ("rural", "error", "rarer"),
    "s": ("success", "stress", "seas"), "t": ("tattoo", "totem", "tent"),
    "u": ("unusual", "ukulele", "tutu"), "v": ("valve", "vivid", "revive"),
    "w": ("willow", "powwow", "wow"), "x": ("xylophone", "axe", "box"),
    "y": ("yearly", "yummy", "yoyo"), "z": ("zigzag", "jazz", "pizza"),
}  # fmt: skip
