"""Word lists and templates of the synthetic sample catalogue (see ``generate.py``).

Every latent topic has its own vocabulary: title adjectives and nouns, lowercase keywords used in
descriptions and in the users' free-text statements of interest, and item formats. Generic
words shared by all topics add noise to the text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """Vocabulary of one latent topic; ``name`` is the item category."""

    name: str
    adjectives: tuple[str, ...]
    nouns: tuple[str, ...]
    keywords: tuple[str, ...]
    formats: tuple[str, ...]


def _topic(name: str, adjectives: str, nouns: str, keywords: str, formats: str) -> Topic:
    """Builds a topic from comma-separated word lists."""

    def split(words: str) -> tuple[str, ...]:
        return tuple(word.strip() for word in words.split(",") if word.strip())

    return Topic(name, split(adjectives), split(nouns), split(keywords), split(formats))


TOPICS: tuple[Topic, ...] = (
    _topic(
        "space exploration",
        "Cosmic, Orbital, Interstellar, Lunar, Martian, Starlit, Galactic, Celestial, Solar, "
        "Deep-Space",
        "Rockets, Mars, Orbit, Nebula, Moon Landing, Space Station, Telescope, Astronaut, Comet, "
        "Galaxy, Launch Pad, Satellite, Jupiter, Saturn Rings, Apollo, Voyager",
        "stargazing, rockets, astronauts, planets, telescopes, black holes, moon missions, "
        "space stations, orbital mechanics, mars rovers, distant galaxies, satellites, comets, "
        "launch vehicles",
        "documentary, illustrated guide, history, podcast series",
    ),
    _topic(
        "Italian cooking",
        "Rustic, Tuscan, Sicilian, Roman, Neapolitan, Homemade, Slow-Cooked, Golden, Simple, "
        "Sunday",
        "Pasta, Risotto, Pizza, Lasagna, Gnocchi, Focaccia, Tiramisu, Olive Oil, Basil, Espresso, "
        "Ravioli, Polenta, Trattoria, Parmesan, Ragù, Gelato",
        "fresh pasta, risotto, wood-fired pizza, tomato sauce, olive oil, regional recipes, "
        "homemade gnocchi, italian desserts, parmesan, slow-cooked ragù, espresso, "
        "family dinners, herbs like basil, antipasti",
        "cookbook, recipe collection, cooking show, food memoir",
    ),
    _topic(
        "detective mystery",
        "Silent, Crimson, Midnight, Hidden, Vanishing, Poisoned, Locked, Shadowed, Fatal, "
        "Foggy",
        "Detective, Alibi, Inspector, Witness, Manor, Clue, Suspect, Murder, Locked Room, "
        "Fingerprint, Confession, Scotland Yard, Private Eye, Ransom Note, Cold Case, Verdict",
        "detectives, whodunits, murder mysteries, clues and red herrings, police procedurals, "
        "locked-room puzzles, private investigators, unreliable witnesses, cold cases, "
        "crime scenes, suspects, courtroom twists, poison plots, secret motives",
        "novel, mystery thriller, crime story, audio drama",
    ),
    _topic(
        "gardening",
        "Blooming, Green, Organic, Cottage, Backyard, Seasonal, Wild, Potted, Lush, Heirloom",
        "Garden, Roses, Tomatoes, Compost, Seedlings, Greenhouse, Herb Bed, Orchard, Tulips, "
        "Perennials, Raised Beds, Soil, Vegetable Patch, Pruning Shears, Hedges, Sunflowers",
        "vegetable gardens, composting, growing tomatoes, pruning roses, healthy soil, "
        "seed starting, raised beds, perennial borders, pollinators, greenhouses, "
        "organic pest control, heirloom seeds, flower bulbs, watering",
        "gardening guide, seasonal handbook, garden diary, how-to series",
    ),
    _topic(
        "jazz",
        "Smoky, Blue, Swinging, Cool, Mellow, Late-Night, Improvised, Soulful, Brassy, Velvet",
        "Saxophone, Trumpet, Big Band, Jam Session, Harlem, Bebop, Piano Trio, Blue Note, Swing, "
        "Club, Double Bass, Standards, Scat, Improvisation, New Orleans, Quartet",
        "jazz standards, saxophone solos, bebop, swing bands, improvisation, jazz clubs, "
        "trumpet players, piano trios, blue notes, new orleans brass, jam sessions, "
        "vinyl records, jazz history, scat singing",
        "music biography, listening guide, album history, radio series",
    ),
    _topic(
        "mountain hiking",
        "Alpine, Rugged, High, Misty, Rocky, Wild, Remote, Lonely, Windswept, Steep",
        "Trail, Summit, Ridge, Peak, Glacier, Backpack, Switchbacks, Mountain Hut, Pass, Basecamp, "
        "Alps, Trekking Poles, Valley, Cairn, Timberline, Headlamp",
        "hiking trails, summit climbs, backpacking, alpine huts, trekking routes, trail maps, "
        "mountain weather, hiking boots, wild camping, ridge walks, glaciers, altitude, "
        "multi-day treks, navigation",
        "trail guide, travel memoir, route atlas, adventure film",
    ),
    _topic(
        "personal finance",
        "Frugal, Smart, Wealthy, Debt-Free, Practical, Steady, Compound, Early, Thrifty, Secure",
        "Budget, Savings, Retirement, Index Funds, Mortgage, Paycheck, Credit Score, Portfolio, "
        "Emergency Fund, Taxes, Dividends, Money, Pension, Side Hustle, Net Worth, Piggy Bank",
        "budgeting, saving money, retirement planning, index funds, paying off debt, "
        "credit scores, mortgages, investing, emergency funds, tax tips, dividends, "
        "financial independence, compound interest, household spending",
        "money guide, workbook, finance podcast, practical handbook",
    ),
    _topic(
        "ancient history",
        "Ancient, Imperial, Lost, Bronze Age, Classical, Forgotten, Pharaoh's, Spartan, Legendary, "
        "Sacred",
        "Rome, Pharaohs, Pyramids, Empire, Legion, Gladiators, Athens, Sparta, Babylon, Temple, "
        "Caesar, Scrolls, Colosseum, Acropolis, Mesopotamia, Carthage",
        "roman emperors, egyptian pharaohs, pyramids, greek city-states, gladiators, "
        "ancient empires, archaeology, bronze age relics, mesopotamia, legions, "
        "temples and ruins, ancient scrolls, classical philosophers, lost civilizations",
        "history book, documentary, lecture series, illustrated chronicle",
    ),
    _topic(
        "machine learning",
        "Neural, Deep, Practical, Probabilistic, Scalable, Supervised, Applied, Statistical, "
        "Intelligent, Gradient",
        "Neural Networks, Algorithms, Transformers, Data, Python, Models, Classifiers, Embeddings, "
        "Gradient Descent, Datasets, Tensors, Regression, Clustering, Features, Predictions, "
        "Decision Trees",
        "neural networks, deep learning, training data, python code, transformers, "
        "gradient descent, model evaluation, classification, embeddings, recommender systems, "
        "feature engineering, statistics, clustering, language models",
        "textbook, online course, tutorial series, technical handbook",
    ),
    _topic(
        "wildlife",
        "Wild, Savage, Migrating, Endangered, Untamed, Northern, Tropical, Nocturnal, Arctic, "
        "Hidden",
        "Wolves, Elephants, Savanna, Lions, Eagles, Rainforest, Whales, Bears, Migration, "
        "Safari, Owls, Tigers, Coral Reef, Foxes, Penguins, Wetlands",
        "animal behaviour, bird watching, safaris, endangered species, wolves and bears, "
        "migrating herds, rainforests, conservation, whales, nature photography, "
        "big cats, wetland birds, animal tracks, ecosystems",
        "nature documentary, field guide, wildlife diary, photo book",
    ),
    _topic(
        "fantasy quests",
        "Enchanted, Dark, Forgotten, Cursed, Elven, Golden, Shadow, Dragonborn, Mystic, Iron",
        "Dragon, Sword, Kingdom, Wizard, Quest, Crown, Prophecy, Sorceress, Dungeon, Elves, "
        "Throne, Amulet, Citadel, Knight, Spellbook, Realm",
        "dragons, wizards, epic quests, sword and sorcery, magic spells, elves and dwarves, "
        "ancient prophecies, enchanted forests, dungeons, heroic knights, dark lords, "
        "magical artifacts, fantasy kingdoms, world building",
        "fantasy novel, epic saga, adventure series, graphic novel",
    ),
    _topic(
        "woodworking",
        "Handmade, Rustic, Hand-Cut, Oak, Crafted, Joined, Sanded, Carved, Workshop, Reclaimed",
        "Workbench, Chisel, Dovetail, Lathe, Timber, Hand Plane, Cabinet, Joinery, Sawdust, "
        "Mallet, Chair, Wood Finish, Walnut, Table Saw, Shelf, Birdhouse",
        "woodworking projects, hand tools, dovetail joints, wood turning, furniture making, "
        "sanding and finishing, hardwoods, workshop setup, carving, chisels, "
        "measuring and cutting, reclaimed timber, table saws, cabinet making",
        "project book, workshop manual, video course, craft guide",
    ),
    _topic(
        "photography",
        "Golden-Hour, Candid, Monochrome, Wide-Angle, Vivid, Analog, Framed, Exposed, Soft-Focus, "
        "Street",
        "Camera, Lens, Portrait, Darkroom, Shutter, Aperture, Landscape, Film Roll, Tripod, "
        "Light, Snapshot, Composition, Studio, Negative, Viewfinder, Exposure",
        "camera settings, portrait lighting, landscape photography, film cameras, lenses, "
        "composition rules, photo editing, street photography, darkroom printing, "
        "shutter speed, aperture, golden hour light, tripods, black and white photos",
        "photo guide, photography course, portfolio book, camera handbook",
    ),
    _topic(
        "ocean sailing",
        "Salty, Stormy, Coastal, Windward, Nautical, Blue-Water, Tidal, Open-Sea, Seafaring, "
        "Trade-Wind",
        "Sailboat, Harbor, Anchor, Voyage, Lighthouse, Regatta, Mainsail, Compass, Tides, Yacht, "
        "Keel, Horizon, Atlantic, Knots, Crew, Helm",
        "sailing voyages, ocean crossings, knots and rigging, navigation by stars, yachts, "
        "harbors, tides and currents, storms at sea, regattas, sailboat maintenance, "
        "lighthouses, life aboard, trade winds, coastal cruising",
        "sailing memoir, seamanship manual, voyage log, sea adventure",
    ),
    _topic(
        "board games",
        "Clever, Classic, Cooperative, Strategic, Lucky, Tabletop, Competitive, Wooden, Family, "
        "Tricky",
        "Dice, Chessboard, Meeples, Card Deck, Game Night, Opening Gambit, Tokens, Rulebook, "
        "Checkmate, Puzzle Box, Scoreboard, Pawns, Game Table, Expansion, Trading Cards, Victory",
        "board games, chess openings, card games, game nights, strategy games, dice rolling, "
        "cooperative play, deck building, tabletop campaigns, game design, puzzles, "
        "worker placement, party games, tournament play",
        "game guide, rulebook companion, strategy primer, reviews collection",
    ),
    _topic(
        "yoga and mindfulness",
        "Calm, Mindful, Gentle, Peaceful, Breathing, Still, Restful, Balanced, Quiet, Morning",
        "Yoga Mat, Meditation, Breath, Lotus, Sun Salutation, Retreat, Stillness, Mantra, "
        "Posture, Balance, Inner Peace, Stretching, Sunrise, Daily Practice, Mindfulness, Serenity",
        "yoga poses, meditation, breathing exercises, mindfulness, stress relief, "
        "morning routines, stretching, sleep habits, gratitude journaling, retreats, "
        "flexibility, guided relaxation, self-care, inner calm",
        "practice guide, audio course, wellness book, daily workbook",
    ),
)

GENERIC_TITLE_WORDS: tuple[str, ...] = (
    "Guide",
    "Handbook",
    "Essentials",
    "Stories",
    "Notes",
    "Secrets",
    "Companion",
    "Basics",
    "Journal",
    "Chronicles",
)
"""Words used across every topic (noise in titles)."""

GENERIC_QUALITIES: tuple[str, ...] = (
    "warm",
    "vivid",
    "practical",
    "lively",
    "thoughtful",
    "accessible",
    "surprising",
    "beautifully written",
    "fast-paced",
    "detailed",
)

TITLE_TEMPLATES: tuple[str, ...] = (
    "{adj} {noun}",
    "The {adj} {noun}",
    "{noun} and {noun2}",
    "The {noun} {generic}",
    "{adj} {noun}: {generic} for Beginners",
    "Secrets of the {adj} {noun}",
    "{adj} {noun} {generic}",
    "Beyond the {noun}",
    "{noun}, {noun2} and Other {generic}",
    "A Year of {adj} {noun}",
)

OPENING_TEMPLATES: tuple[str, ...] = (
    "A {quality} {format} about {kw1} and {kw2}.",
    "This {quality} {format} explores {kw1}.",
    "A {quality} {format} on {kw1}, {kw2} and {kw3}.",
    "In this {format}, {kw1} and {kw2} come together.",
    "A {format} for readers who love {kw1}.",
)

FOLLOW_UP_TEMPLATES: tuple[str, ...] = (
    "Perfect for anyone curious about {kw1}.",
    "Includes practical notes on {kw1} and {kw2}.",
    "Along the way it touches on {kw1}.",
    "Features {kw1} and a fresh look at {kw2}.",
    "Expect plenty of {kw1}.",
)

GENERIC_SENTENCES: tuple[str, ...] = (
    "Suitable for beginners and experts alike.",
    "Written in a clear and friendly style.",
    "A favourite with book clubs.",
    "Short chapters make it easy to dip into.",
)

NOISE_SENTENCE = "There is even a short detour into {kw}."
"""Mentions a keyword of another topic (noise in descriptions)."""

USER_TEXT_TEMPLATES: tuple[str, ...] = (
    "looking for something about {kw1} and {kw2}",
    "i'm into {kw1}, {kw2} and {kw3}",
    "anything on {kw1}; also curious about {kw2}",
    "big fan of {kw1}",
    "recommend me more {kw1} please",
    "interested in {kw1} and {kw2}",
)
