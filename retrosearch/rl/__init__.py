"""Search-augmented RL (R1-Searcher, R1-Searcher++, DeepMMSearch-R1) on the shared engine and tree."""
